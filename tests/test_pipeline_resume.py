"""A run killed with SIGKILL mid-way and resumed gives the same manifest as an uninterrupted run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from tests.pipeline_corpus import TEST_KEY, png_bytes, tree_digest


def _cmd(src, run, key_file):
    return [sys.executable, "-c", "from provguard.cli import main; main()", "filter", str(src), "--out", str(run),
            "--watermark", "provguard", "--key-file", str(key_file), "--text-watermark", "none", "--workers", "0",
            "--shard-size", "3", "--batch-size", "3", "--json"]


def test_kill_9_then_resume_equals_uninterrupted(photo_items, tmp_path):
    from provguard.imaging.photoset import tiles
    from provguard.watermark.image import create_image_watermark

    photos = tiles(photo_items[:6], 256, per_image=3)[:18]
    marked = create_image_watermark("provguard", key=TEST_KEY).embed(photos[::3], payload=1)
    src = tmp_path / "src"
    src.mkdir()
    for i, img in enumerate(photos):
        (src / f"img_{i:02d}.png").write_bytes(png_bytes(img))
    for i, img in enumerate(marked):
        (src / f"marked_{i:02d}.png").write_bytes(png_bytes(img))
    key_file = tmp_path / "k.txt"
    key_file.write_bytes(TEST_KEY)
    before = tree_digest(src)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}

    full = tmp_path / "full"
    subprocess.run(_cmd(src, full, key_file), check=True, capture_output=True, env=env, timeout=300)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(src, killed, key_file), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 240
    while time.time() < deadline and len(list((killed / "shards").glob("*.done"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.fail("the run finished before it could be killed; make the corpus larger")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((killed / "shards").glob("*.done")))
    assert 2 <= done < 8 and not (killed / "manifest.parquet").exists()

    r = subprocess.run(_cmd(src, killed, key_file), capture_output=True, env=env, timeout=300, text=True)
    assert r.returncode == 0, r.stderr
    a = pq.read_table(full / "manifest.parquet")
    b = pq.read_table(killed / "manifest.parquet")
    assert b.column("index").to_pylist() == list(range(24))
    assert len(set(b.column("key").to_pylist())) == 24
    assert a.to_pylist() == b.to_pylist()
    assert (full / "kept.txt").read_text() == (killed / "kept.txt").read_text()
    assert (full / "rejected.jsonl").read_text() == (killed / "rejected.jsonl").read_text()
    assert sum(1 for line in (killed / "rejected.jsonl").read_text().splitlines()) == 6
    assert tree_digest(src) == before
