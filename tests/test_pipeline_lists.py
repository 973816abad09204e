"""The act stage's lists and copies, read back from disk: ``kept.txt``, ``rejected.jsonl`` and
``errors.jsonl`` hold exactly the rows of each kind, and ``copy-kept`` copies every kept file (never a
rejected one, never a line of a shared jsonl, never over an existing file) under its relative path."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from provguard.errors import ProvguardError
from provguard.pipeline import actions
from provguard.pipeline.rundir import RunDir


def _row(root: Path, rel: str, decision: str, error=None, verdict=None, reasons=(), score=None) -> dict:
    path = os.path.join(os.fsencode(root), os.fsencode(rel))
    sha = hashlib.sha256(Path(os.fsdecode(path)).read_bytes()).hexdigest() if os.path.exists(path) else None
    return {"key": rel, "path": os.fsdecode(path), "path_raw": path, "sha256": sha, "decision": decision,
            "verdict": verdict or {"keep": "real", "reject": "synthetic", "error": "error"}[decision],
            "reasons": list(reasons), "score": score, "error": error}


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "src"
    files = {"a.png": b"A", "deep/dir/b.png": b"BB", "c.png": b"CCC", "d.png": b"", "docs.jsonl": b"{}\n{}\n"}
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    rows = [_row(src, "a.png", "keep"), _row(src, "deep/dir/b.png", "keep"),
            _row(src, "c.png", "reject", reasons=["wm:yes"], score=0.99),
            _row(src, "d.png", "error", error="cannot decode", reasons=["error:unreadable"]),
            _row(src, "docs.jsonl#line=2", "keep")]
    rows[-1]["path_raw"] = os.path.join(os.fsencode(src), b"docs.jsonl")
    return src, files, rows


def test_lists_hold_exactly_the_rows_of_each_kind(tree, tmp_path):
    src, _, rows = tree
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    actions.write_lists(run, rows)
    assert run.kept.read_text() == "a.png\ndeep/dir/b.png\ndocs.jsonl#line=2\n"
    assert [json.loads(x) for x in run.rejected.read_text().splitlines()] == [
        {"key": "c.png", "path": str(src / "c.png"), "verdict": "synthetic", "reasons": ["wm:yes"], "score": 0.99}]
    assert [json.loads(x) for x in run.errors.read_text().splitlines()] == [
        {"key": "d.png", "path": str(src / "d.png"), "error": "cannot decode"}]
    actions.write_lists(run, [])
    assert run.kept.read_text() == run.rejected.read_text() == run.errors.read_text() == ""


def test_copy_kept_copies_kept_files_under_their_relative_paths(tree, tmp_path):
    src, files, rows = tree
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    out = actions.copy_kept(run, rows, str(src))
    assert out == {"copied": 2, "already_there": 0}
    copied = sorted(str(p.relative_to(run.root / "kept")) for p in (run.root / "kept").rglob("*") if p.is_file())
    assert copied == ["a.png", "deep/dir/b.png"]
    assert (run.root / "kept" / "deep/dir/b.png").read_bytes() == files["deep/dir/b.png"]
    assert {p.name for p in src.rglob("*") if p.is_file()} == {"a.png", "b.png", "c.png", "d.png", "docs.jsonl"}
    # again: nothing is overwritten, even a file that now differs
    (run.root / "kept" / "a.png").write_bytes(b"changed")
    assert actions.copy_kept(run, rows, str(src)) == {"copied": 0, "already_there": 2}
    assert (run.root / "kept" / "a.png").read_bytes() == b"changed"


def test_copy_kept_to_a_chosen_folder_and_refuses_rows_outside_the_source(tree, tmp_path):
    src, files, rows = tree
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    dest = tmp_path / "elsewhere"
    assert actions.copy_kept(run, rows, str(src), str(dest)) == {"copied": 2, "already_there": 0}
    assert (dest / "a.png").read_bytes() == b"A" and not (run.root / "kept").exists()
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"x")
    bad = _row(tmp_path, "outside.png", "keep")
    with pytest.raises(ProvguardError, match="points outside the source folder"):
        actions.copy_kept(run, rows + [bad], str(src), str(tmp_path / "third"))
    assert not (tmp_path / "third").exists()  # refused before copying anything
