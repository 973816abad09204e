"""Library errors name parameters; the command line spells them as its own flags."""
import click
import pytest
from click.testing import CliRunner

from provguard.cli import main
from provguard.cli.common import command_flags
from provguard.errors import BadArgument
from provguard.watermark.image.keyed import payload_to_bits


def test_placeholders_are_spelled_as_parameters_or_flags():
    err = BadArgument("{name} must be > 0; or lower {n_real}/{n_synth} (got {'a': 1} and {1})", "lam")
    assert str(err) == "lam must be > 0; or lower n_real/n_synth (got {'a': 1} and {1})"
    assert err.message_for({"lam": "--lambda", "n_real": "--n-real"}) == \
        "--lambda must be > 0; or lower --n-real/n_synth (got {'a': 1} and {1})"
    assert BadArgument("{name} is wrong").message_for({"name": "--x"}) == "--x is wrong"  # no parameter: as written


def test_command_flags_are_read_from_the_command():
    @click.command()
    @click.option("--lambda", "lam", type=float)
    @click.option("-T", "--generations", type=int)
    @click.option("--json", "as_json", is_flag=True)
    @click.argument("source")
    def cmd(lam, generations, as_json, source):
        """A command with a renamed option, a short and a long flag, a boolean flag and an argument."""

    assert command_flags(cmd) == {"lam": "--lambda", "generations": "--generations", "as_json": "--json",
                                  "source": "SOURCE"}


def test_a_library_error_names_the_parameter_and_the_cli_the_flag(tmp_path):
    with pytest.raises(BadArgument) as info:
        payload_to_bits("zz")
    assert str(info.value) == "payload 'zz' is not hexadecimal: pass e.g. 0xC0FFEE (at most 48 bits)"
    res = CliRunner().invoke(main, ["simulate", "--lambda", "0", "--filter-recall", "0.5"])
    assert res.exit_code == 2 and "error: --lambda must be > 0 (got 0.0)" in res.output
    res = CliRunner().invoke(main, ["simulate", "--filter-at-fpr", "0.01"])
    assert res.exit_code == 2 and "error: --filter-at-fpr only applies with --filter-from" in res.output


def test_key_and_run_directory_errors_name_parameters_and_flags(tmp_path, monkeypatch):
    from provguard.errors import KeyMaterialError
    from provguard.keys import resolve_key

    monkeypatch.delenv("PROVGUARD_KEY", raising=False)
    with pytest.raises(KeyMaterialError) as info:
        resolve_key(None, None)
    assert str(info.value) == "this method needs a secret key: pass key KEY, key_file PATH or set $PROVGUARD_KEY"
    (tmp_path / "in").mkdir()
    res = CliRunner().invoke(main, ["watermark", "detect", "--method", "provguard", str(tmp_path / "in")])
    assert res.exit_code == 3 and "pass --key KEY, --key-file PATH or set $PROVGUARD_KEY" in res.output
    (tmp_path / "in" / "a.txt").write_text("some text")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    res = CliRunner().invoke(main, ["filter", str(tmp_path / "in"), "--out", str(tmp_path / "busy"), "--probe", "none"])
    assert res.exit_code == 3 and "is not a provguard run directory; choose another --out" in res.output
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine" and len(list((tmp_path / "busy").iterdir())) == 1
