"""`provguard watermark embed/detect`: JSON schema, exit codes, keys, per-file errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from provguard.cli import main

SECRET = "cli-secret-key-123"


@pytest.fixture(scope="module")
def folder(tmp_path_factory, photos_512):
    root = tmp_path_factory.mktemp("in")
    (root / "sub").mkdir()
    Image.fromarray(photos_512[0]).save(root / "a.png")
    Image.fromarray(photos_512[1]).save(root / "sub" / "b.jpg", quality=95)
    return root


def _run(args, **kw):
    return CliRunner().invoke(main, args, catch_exceptions=False, **kw)


def test_version_and_help_with_examples():
    assert _run(["--version"]).output.startswith("provguard, version")
    for cmd in (["watermark", "embed"], ["watermark", "detect"], ["watermark"], []):
        out = _run([*cmd, "--help"]).output
        assert "Example" in out, cmd


def test_embed_then_detect_round_trip(folder, tmp_path):
    out = tmp_path / "marked"
    res = _run(["watermark", "embed", "--method", "provguard", "--key", SECRET, "--payload", "0xbeef",
                str(folder), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    records = json.loads(res.output)
    assert {r["output"].split("marked/")[1] for r in records} == {"a.png", "sub/b.jpg"}
    assert all(r["psnr_db"] >= 40 for r in records)
    assert SECRET not in res.output
    res = _run(["watermark", "detect", "--method", "all", "--key", SECRET, str(out), "--json"])
    assert res.exit_code == 0
    records = json.loads(res.output)
    assert len(records) == 4  # 2 files x (sd, provguard)
    for r in records:
        assert {"path", "method", "detected", "p_value", "bits_matched", "bits_total", "payload", "error"} <= set(r)
    pg = [r for r in records if r["method"] == "provguard"]
    assert all(r["detected"] and r["payload"] == "00000000beef" for r in pg)
    assert not any(r["detected"] for r in records if r["method"] == "sd")
    assert SECRET not in res.output


def test_keys_from_env_and_file(folder, tmp_path, monkeypatch):
    keyfile = tmp_path / "k.txt"
    keyfile.write_text(SECRET + "\n")
    out = tmp_path / "m"
    assert _run(["watermark", "embed", "--method", "provguard", "--key-file", str(keyfile),
                 str(folder / "a.png"), "--out", str(out)]).exit_code == 0
    monkeypatch.setenv("PROVGUARD_KEY", SECRET)
    res = _run(["watermark", "detect", "--method", "provguard", str(out), "--json"])
    assert json.loads(res.output)[0]["detected"] is True
    monkeypatch.delenv("PROVGUARD_KEY")
    res = _run(["watermark", "detect", "--method", "provguard", str(out)])
    assert res.exit_code == 3 and "needs a secret key" in res.output


def test_bad_inputs_become_per_file_errors(folder, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "zero.png").write_bytes(b"")
    (bad / "fake.jpg").write_text("not an image")
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(bad / "tiny.png")
    Image.open(folder / "a.png").save(bad / "good.png")
    res = _run(["watermark", "detect", "--method", "sd", str(bad), "--json"])
    assert res.exit_code == 1
    records = {r["path"].split("/")[-1]: r for r in json.loads(res.output)}
    assert "empty" in records["zero.png"]["error"]
    assert "not an image" in records["fake.jpg"]["error"]
    assert records["tiny.png"]["error"] is None and "256x256" in records["tiny.png"]["not_applicable"]
    assert records["good.png"]["error"] is None and records["good.png"]["detected"] is False


def test_embed_never_overwrites(folder, tmp_path):
    res = _run(["watermark", "embed", "--method", "sd", str(folder / "a.png"), "--out", str(folder)])
    assert res.exit_code == 1 and "overwrite the input" in res.output
    out = tmp_path / "o"
    assert _run(["watermark", "embed", "--method", "sd", str(folder / "a.png"), "--out", str(out)]).exit_code == 0
    res = _run(["watermark", "embed", "--method", "sd", str(folder / "a.png"), "--out", str(out)])
    assert res.exit_code == 1 and "--overwrite" in res.output


def test_usage_errors(folder):
    res = _run(["watermark", "detect", "--fpr", "2", str(folder)])
    assert res.exit_code == 2 and "error: --fpr must be in (0, 1), got 2.0" in res.output
    assert _run(["watermark", "detect", "/no/such/path"]).exit_code == 2
    res = _run(["watermark", "embed", "--method", "provguard", "--key", "k", "--payload", "zz", str(folder), "--out", "x"])
    assert res.exit_code == 2 and "error: --payload 'zz' is not hexadecimal" in res.output
