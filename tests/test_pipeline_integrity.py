"""Resume and quarantine from the inside: finished shards kept byte for byte, bad shards redone, the
quarantine's edge cases (changed files, reappeared files, a crash between "planned" and "moved",
moves across file systems), and properties over any tree (hypothesis): move-rejected then restore
gives the tree back byte for byte; deciding is idempotent."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provguard.cli import main
from provguard.pipeline import actions
from provguard.pipeline.rundir import RunDir
from tests.pipeline_corpus import TEST_KEY, png_bytes, tree_digest


# ---------------------------------------------------------------------------------------------- corpus
@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory, photo_items):
    """Eight 128x128 photo crops, three of them keyed-marked: 11 items, shards of 3 (4 shards)."""
    from provguard.imaging.photoset import tiles
    from provguard.watermark.image import create_image_watermark

    photos = tiles(photo_items[:4], 128, per_image=2)[:8]
    marked = create_image_watermark("provguard", key=TEST_KEY, target_psnr=36).embed(photos[:3], payload=3)
    root = tmp_path_factory.mktemp("small")
    for i, img in enumerate(photos):
        (root / f"real_{i}.png").write_bytes(png_bytes(img))
    for i, img in enumerate(marked):
        (root / f"marked_{i}.png").write_bytes(png_bytes(img))
    key_file = tmp_path_factory.mktemp("key") / "k.txt"
    key_file.write_bytes(TEST_KEY)
    return root, key_file


def _filter(src, run, key_file, *extra):
    r = CliRunner().invoke(main, ["filter", str(src), "--out", str(run), "--watermark", "provguard", "--key-file",
                                  str(key_file), "--text-watermark", "none", "--probe", "none", "--workers", "0",
                                  "--shard-size", "3", "--json", *map(str, extra)])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def finished_run(small_corpus, tmp_path_factory):
    root, key_file = small_corpus
    run = tmp_path_factory.mktemp("runs") / "run"
    _filter(root, run, key_file)
    return run


def _snapshot(run: Path) -> dict[str, tuple[bytes, int, int]]:
    """name -> (bytes, inode, mtime_ns) of every shard file and marker."""
    return {p.name: (p.read_bytes(), p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted((run / "shards").iterdir())}


# ---------------------------------------------------------------------------------------------- resume
def test_resume_keeps_finished_shards_and_redoes_bad_ones(small_corpus, finished_run, tmp_path):
    root, key_file = small_corpus
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = _snapshot(run)
    assert sorted(before) == [f"shard-{s:05d}.{ext}" for s in range(4) for ext in ("done", "parquet")]
    manifest = pq.read_table(finished_run / "manifest.parquet").to_pylist()
    # shard 1: never finished (no marker); shard 2: data file corrupted (SHA-256 no longer matches);
    # shard 3: marker written under another configuration (fingerprint differs). Shard 0 is fine.
    (run / "shards/shard-00001.done").unlink()
    data2 = run / "shards/shard-00002.parquet"
    data2.write_bytes(data2.read_bytes()[:-9] + b"corrupted")
    marker3 = run / "shards/shard-00003.done"
    m = json.loads(marker3.read_text())
    marker3.write_text(json.dumps({**m, "fingerprint": "0" * 64}))
    (run / "manifest.parquet").unlink()

    _filter(root, run, key_file)
    after = _snapshot(run)
    for name in ("shard-00000.parquet", "shard-00000.done"):
        assert after[name] == before[name], f"{name} was rewritten although its shard was finished"
    for s in (1, 2, 3):
        data, marker = run / f"shards/shard-{s:05d}.parquet", json.loads((run / f"shards/shard-{s:05d}.done").read_text())
        assert marker["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
        assert marker["fingerprint"] == json.loads((run / "config.json").read_text())["fingerprint"]
        assert after[data.name][1:] != (before[data.name][1], before[data.name][2]), f"shard {s} was not redone"
        assert pq.read_table(data).to_pylist() == pq.read_table(finished_run / f"shards/shard-{s:05d}.parquet").to_pylist()
    assert pq.read_table(run / "manifest.parquet").to_pylist() == manifest


def test_resume_of_a_finished_run_touches_no_shard(small_corpus, finished_run, tmp_path):
    root, key_file = small_corpus
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = _snapshot(run)
    _filter(root, run, key_file)
    assert _snapshot(run) == before


# ---------------------------------------------------------------------------------------------- quarantine
def _sha(path) -> str:
    return hashlib.sha256(Path(os.fsdecode(path)).read_bytes()).hexdigest()


def _rows(root: Path, reject: list[str], keep: tuple[str, ...] = ()) -> list[dict]:
    """Manifest-like rows for files under ``root`` (relative names), as ``finalize`` hands them over."""
    rows = []
    for rel, decision in [(r, "reject") for r in reject] + [(k, "keep") for k in keep]:
        path = os.path.join(os.fsencode(root), os.fsencode(rel))
        rows.append({"key": rel, "path": os.fsdecode(path), "path_raw": path, "sha256": _sha(path),
                     "decision": decision, "verdict": "synthetic" if decision == "reject" else "real",
                     "reasons": ["test:reject"] if decision == "reject" else [], "score": 1.0, "error": None})
    return rows


def _tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def _journal_ops(run: RunDir) -> list[tuple[str, str]]:
    return [(e["key"], e["op"]) for e in actions.Journal(run.journal).entries()]


def test_file_changed_since_scoring_stays_put(tmp_path):
    src, run = tmp_path / "src", RunDir(tmp_path / "run")
    _tree(src, {"a.png": b"A" * 10, "b.png": b"B" * 10})
    run.root.mkdir()
    rows = _rows(src, ["a.png", "b.png"])
    (src / "a.png").write_bytes(b"edited after scoring")
    out = actions.move_rejected(run, rows, str(src))
    assert out == {"moved": 1, "changed_since_scoring": 1, "already_moved": 0}
    assert (src / "a.png").read_bytes() == b"edited after scoring" and not (run.quarantine / "a.png").exists()
    assert (run.quarantine / "b.png").read_bytes() == b"B" * 10 and not (src / "b.png").exists()
    assert _journal_ops(run) == [("b.png", "planned"), ("b.png", "moved")]
    # moving again is a no-op for what already moved
    assert actions.move_rejected(run, rows, str(src))["already_moved"] == 1


def test_restore_refuses_to_overwrite_a_file_that_reappeared(tmp_path):
    src, run = tmp_path / "src", RunDir(tmp_path / "run")
    _tree(src, {"d/a.png": b"original"})
    run.root.mkdir()
    actions.move_rejected(run, _rows(src, ["d/a.png"]), str(src))
    (src / "d/a.png").write_bytes(b"a new file with the same name")
    out = actions.restore(run, str(src))
    assert out == {"restored": 0, "missing": 0, "blocked_by_existing_file": 1}
    assert (src / "d/a.png").read_bytes() == b"a new file with the same name"
    assert (run.quarantine / "d/a.png").read_bytes() == b"original"  # still safe in the quarantine
    (src / "d/a.png").unlink()
    assert actions.restore(run, str(src))["restored"] == 1
    assert (src / "d/a.png").read_bytes() == b"original"


def test_crash_after_planned_before_the_move(tmp_path):
    """The journal says 'planned' but the process died before the rename: the file never left."""
    src, run = tmp_path / "src", RunDir(tmp_path / "run")
    _tree(src, {"a.png": b"AAA", "b.png": b"BBB"})
    run.root.mkdir()
    rows = _rows(src, ["a.png", "b.png"])
    entry = {"key": "a.png", "src_hex": os.fsencode(str(src / "a.png")).hex(), "quarantine_hex": b"a.png".hex(),
             "sha256": rows[0]["sha256"], "reasons": rows[0]["reasons"], "op": "planned"}
    actions.Journal(run.journal).append(entry)
    # restore in that state: nothing to move back, nothing lost, the entry is closed
    assert actions.restore(run, str(src)) == {"restored": 0, "missing": 0, "blocked_by_existing_file": 0}
    assert (src / "a.png").read_bytes() == b"AAA"
    # and a new move-rejected run picks the planned file up again
    before = tree_digest(src)
    assert actions.move_rejected(run, rows, str(src))["moved"] == 2
    assert actions.restore(run, str(src))["restored"] == 2
    assert tree_digest(src) == before


def test_crash_after_the_move_before_moved_is_journalled(tmp_path):
    """The rename happened but 'moved' was never written: restore still brings the file back."""
    src, run = tmp_path / "src", RunDir(tmp_path / "run")
    _tree(src, {"x/a.png": b"AAA"})
    run.root.mkdir()
    before = tree_digest(src)
    rows = _rows(src, ["x/a.png"])
    journal = actions.Journal(run.journal)
    real_append = journal.append
    calls = []

    def dying_append(self, entry):
        calls.append(entry["op"])
        if entry["op"] == "moved":
            raise KeyboardInterrupt("killed between the move and its confirmation")
        real_append(entry)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(actions.Journal, "append", dying_append)
        with pytest.raises(KeyboardInterrupt):
            actions.move_rejected(run, rows, str(src))
    assert calls == ["planned", "moved"] and not (src / "x/a.png").exists()
    assert _journal_ops(run) == [("x/a.png", "planned")]
    # a re-run does not lose or duplicate it (the source is gone: counted as changed, left alone)
    assert actions.move_rejected(run, rows, str(src))["moved"] == 0
    assert actions.restore(run, str(src))["restored"] == 1
    assert tree_digest(src) == before


def test_move_falls_back_to_copy_verify_unlink_across_devices(tmp_path, monkeypatch):
    """os.rename raising EXDEV (another file system) takes the copy path; nothing is half-moved."""
    src, run = tmp_path / "src", RunDir(tmp_path / "run")
    _tree(src, {"a.png": b"A" * 5000, "sub/b.png": b""})
    run.root.mkdir()
    before = tree_digest(src)
    real_rename = os.rename
    renames = []

    def cross_device(a, b):
        if not bytes(b).endswith(b".partial") and not os.fsencode(a).endswith(b".partial"):
            renames.append(a)
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(a, b)

    monkeypatch.setattr(actions.os, "rename", cross_device)
    assert actions.move_rejected(run, _rows(src, ["a.png", "sub/b.png"]), str(src))["moved"] == 2
    assert len(renames) == 2 and not (src / "a.png").exists()
    assert (run.quarantine / "a.png").read_bytes() == b"A" * 5000
    assert not list(run.quarantine.rglob("*.partial"))
    assert actions.restore(run, str(src))["restored"] == 2
    assert tree_digest(src) == before


def test_move_across_real_file_systems(tmp_path):
    """Source on tmpfs (/dev/shm), run directory on the test disk: a real cross-device move and back."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another file system than the test directory")
    with tempfile.TemporaryDirectory(dir=shm) as d:
        src, run = Path(d) / "src", RunDir(tmp_path / "run")
        _tree(src, {"a.png": os.urandom(3000), "deep/er/b.png": b"b", "keep.png": b"k"})
        run.root.mkdir()
        before = tree_digest(src)
        out = actions.move_rejected(run, _rows(src, ["a.png", "deep/er/b.png"], keep=("keep.png",)), str(src))
        assert out["moved"] == 2 and (run.quarantine / "deep/er/b.png").read_bytes() == b"b"
        assert os.stat(run.quarantine / "a.png").st_dev != os.stat(src).st_dev
        assert actions.restore(run, str(src))["restored"] == 2
        assert tree_digest(src) == before
        assert not list(Path(d).rglob("*.partial")) and not list(run.quarantine.rglob("*.partial"))


# ---------------------------------------------------------------------------------------------- properties
_NAME = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1, max_size=12) \
    .filter(lambda s: s not in (".", "..") and len(s.encode()) < 200 and "#line=" not in s)
_TREE = st.dictionaries(st.lists(_NAME, min_size=1, max_size=5).map(tuple), st.binary(max_size=64), min_size=1,
                        max_size=8)


def _valid(tree: dict[tuple, bytes]) -> dict[str, bytes]:
    """Drop paths that would need a name to be both a file and a folder."""
    files = {}
    for parts in sorted(tree, key=len):
        if any(parts[:i] in {tuple(f.split("/")) for f in files} for i in range(1, len(parts))):
            continue
        if any(tuple(f.split("/"))[:len(parts)] == parts for f in files):
            continue
        files["/".join(parts)] = tree[parts]
    return files


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_TREE, picks=st.lists(st.booleans(), min_size=8, max_size=8))
def test_move_rejected_then_restore_gives_back_any_tree(tree, picks):
    files = _valid(tree)
    with tempfile.TemporaryDirectory() as d:
        src, run = Path(d) / "src", RunDir(Path(d) / "run")
        _tree(src, files)
        run.root.mkdir()
        before = tree_digest(src)
        names = sorted(files)
        rejected = [n for n, pick in zip(names, picks) if pick] or names[:1]
        out = actions.move_rejected(run, _rows(src, rejected, keep=tuple(n for n in names if n not in rejected)),
                                    str(src))
        assert out["moved"] == len(rejected)
        for n in rejected:
            assert not (src / n).exists() and (run.quarantine / n).read_bytes() == files[n]
        assert actions.restore(run, str(src))["restored"] == len(rejected)
        assert tree_digest(src) == before
        assert actions.restore(run, str(src))["restored"] == 0  # idempotent


_FPR = st.sampled_from([1e-12, 1e-9, 1e-6, 1e-3, 0.05, 0.5])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(first=_FPR, second=_FPR, uncertain=st.booleans())
def test_decide_is_idempotent(finished_run, first, second, uncertain):
    """Deciding twice under one policy changes nothing; deciding under B then again under A gives A's result."""
    with tempfile.TemporaryDirectory() as d:
        run = Path(d) / "run"
        shutil.copytree(finished_run, run)
        flags = ["--reject-uncertain"] if uncertain else []

        def decide(fpr):
            r = CliRunner().invoke(main, ["decide", str(run), "--target-fpr", repr(fpr), *flags])
            assert r.exit_code in (0, 1), r.output
            return {name: (run / name).read_bytes() for name in ("kept.txt", "rejected.jsonl", "errors.jsonl")}, \
                pq.read_table(run / "manifest.parquet").to_pylist()

        a = decide(first)
        assert decide(first) == a
        decide(second)
        assert decide(first) == a
        keys = {r["key"] for r in a[1]}
        rejected = {json.loads(line)["key"] for line in a[0]["rejected.jsonl"].decode().splitlines()}
        assert rejected <= keys and all(r["decision"] == ("reject" if r["key"] in rejected else r["decision"])
                                        for r in a[1])
