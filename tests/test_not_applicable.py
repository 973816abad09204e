"""Items a detector cannot read for a legitimate reason are "not applicable", not errors (issue 10,
section 2), and the run's watermark tests are decided together (section 3: --fdr)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from provguard.pipeline.config import RunConfig
from provguard.pipeline.run import redecide, run_filter
from provguard.pipeline.sources import open_source
from provguard.watermark.image import create_image_watermark, sd


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def folder(tmp_path_factory, photos_512):
    root = tmp_path_factory.mktemp("thumbs")
    marked = create_image_watermark("sd").embed([photos_512[2]], payload="sdxl")[0]
    files = {"thumb.png": _png(photos_512[0][:100, :120].copy()),   # 12,000 px < 65,536: SD cannot read it
             "photo.png": _png(photos_512[1][:320, :320].copy()),
             "marked.png": _png(marked),
             "broken.png": b"\x89PNG\r\n\x1a\n not really"}
    for name, data in files.items():
        (root / name).write_bytes(data)
    return root


def _run(root: Path, out: Path, **kw):
    source = open_source(str(root), "auto", "text", None)
    spec = {**source.spec(), "root": str(root)}
    return run_filter(RunConfig(source=spec, watermarks=["sd"], workers=0), out, **kw)


def _rows(out: Path) -> dict[str, dict]:
    return {r["key"]: r for r in pq.read_table(out / "manifest.parquet").drop_columns(["path_raw"]).to_pylist()}


@pytest.fixture(scope="module")
def finished(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    return out, _run(folder, out, fdr=0.01)


def test_small_image_is_not_applicable_not_an_error(finished):
    out, result = finished
    rows = _rows(out)
    thumb = rows["thumb.png"]
    assert thumb["error"] is None and thumb["decision"] == "keep"
    assert not any("not-applicable" in r for r in thumb["reasons"])
    assert thumb["sd-watermark.reason"] == "watermark:sd:not-applicable" and thumb["sd-watermark.p_value"] is None
    assert rows["broken.png"]["error"] is not None
    assert result.counts["error"] == 1 and result.exit_code == 1  # the broken file, not the thumbnail
    assert result.counts["not_applicable"] == {"sd-watermark": 1}
    assert result.card["counts"]["not_applicable"] == {"sd-watermark": 1}
    summary_line = next(line for line in result.summary.splitlines() if line.startswith("sd-watermark"))
    assert summary_line.split() == ["sd-watermark", "1"]
    assert "not applicable (detector)" in result.summary
    assert [json.loads(e)["key"] for e in (out / "errors.jsonl").read_text().splitlines()] == ["broken.png"]


def test_thumbnails_alone_exit_zero(folder, tmp_path):
    root = tmp_path / "only"
    root.mkdir()
    (root / "thumb.png").write_bytes((folder / "thumb.png").read_bytes())
    result = _run(root, tmp_path / "run")
    assert result.exit_code == 0 and result.counts.get("error") == 0
    assert result.counts["not_applicable"] == {"sd-watermark": 1}


def test_run_card_records_the_fdr_cutoff_and_the_null(finished):
    out, result = finished
    rows = _rows(out)
    p = sorted(r["sd-watermark.p_value"] for r in rows.values() if r["sd-watermark.p_value"] is not None)
    assert len(p) == 2  # photo and marked; the thumbnail is no test, the broken file never decoded
    # Benjamini-Hochberg by hand: the largest k with p_(k) <= k q / m
    k = max([j for j in range(1, 3) if p[j - 1] <= j * 0.01 / 2], default=0)
    tests = result.card["watermark_tests"]
    assert tests["mode"] == "fdr" and tests["tests"] == 2 and tests["rejected"] == k == 1
    assert tests["cutoff"] == pytest.approx(min(1e-3, k * 0.01 / 2))
    assert tests["expected_false_discoveries"] == pytest.approx(2 * tests["cutoff"])
    assert rows["marked.png"]["decision"] == "reject" and rows["photo.png"]["decision"] == "keep"
    assert result.card["sd_null"]["views"] == sd.load_null_table()["n"]
    assert result.card["sd_null"]["empirical_resolution"] == pytest.approx(1 / (sd.load_null_table()["n"] + 1))
    from provguard.pipeline.report import write_report

    page = write_report(out).read_text()
    assert "expected false discoveries" in result.summary and "expected false discoveries" in page
    assert "not applicable (detector)" in page


def test_decide_can_switch_back_to_per_item(finished, tmp_path):
    import shutil

    out, _ = finished
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    again = redecide(copy, fdr=None, target_fpr=0.5)
    assert again.card["watermark_tests"]["mode"] == "per-item" and again.card["watermark_tests"]["cutoff"] == 0.5
    assert again.card["decision"]["fdr"] is None
    kept = redecide(copy)  # "keep": the run's own setting, now per-item
    assert kept.card["watermark_tests"]["mode"] == "per-item"
