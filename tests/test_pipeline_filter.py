"""Whole-pipeline tests for `provguard filter`, `decide`, `restore`, `report` on a folder source."""
from __future__ import annotations

import json
import os
import shutil

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from provguard.cli import main
from tests.pipeline_corpus import TEST_KEY, build_bad, build_good, tree_digest


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, photo_items):
    from provguard.imaging.photoset import tiles

    photos = tiles(photo_items[:6], 256)
    root = tmp_path_factory.mktemp("scraped")
    truth = build_good(root, photos)
    errors = build_bad(root, photos[5])
    key_file = tmp_path_factory.mktemp("key") / "k.txt"
    key_file.write_bytes(TEST_KEY)
    return root, truth, errors, key_file


def _filter(*args):
    result = CliRunner().invoke(main, ["filter", *map(str, args), "--watermark", "provguard", "--text-watermark", "none",
                                       "--workers", "0", "--json"])
    return result


def _rows(run):
    return {r["key"]: r for r in pq.read_table(run / "manifest.parquet").drop_columns(["path_raw"]).to_pylist()}


@pytest.fixture(scope="module")
def finished(corpus, tmp_path_factory):
    root, truth, errors, key_file = corpus
    before = tree_digest(root)
    run = tmp_path_factory.mktemp("runs") / "run"
    result = _filter(root, "--out", run, "--key-file", key_file, "--shard-size", "8")
    assert tree_digest(root) == before, "the report action must not touch the source"
    return run, result


def test_filter_verdicts_manifest_and_json(corpus, finished):
    root, truth, errors, _ = corpus
    run, result = finished
    assert result.exit_code == 1, result.output  # some items had errors
    payload = json.loads(result.stdout)
    assert payload["run_dir"] == str(run) and payload["manifest"] == str(run / "manifest.parquet")
    rows = _rows(run)
    for col in ("path", "sha256", "verdict", "reasons", "error", "decision", "provguard-watermark.p_value"):
        assert col in pq.read_schema(run / "manifest.parquet").names
    for rel in ("gen/wm_c.png", "gen/wm_d.png"):
        assert rows[rel]["verdict"] == "synthetic" and rows[rel]["reasons"][0] == "watermark:provguard:detected"
        assert rows[rel]["provguard-watermark.p_value"] < 1e-3
    assert rows["gen/a1111.png"]["reasons"][0] == "png-text:automatic1111"
    for rel in ("real/a.jpg", "real/b.png", "text/prose.txt", "text/rows.jsonl#line=2"):
        assert rows[rel]["decision"] == "keep" and rows[rel]["error"] is None
    for rel in errors:
        assert rows[rel]["error"], rel
        assert rows[rel]["verdict"] == "error"
    for rel in ("bad/cmyk.jpg", "bad/grey16.png"):
        assert rows[rel]["error"] is None, rows[rel]["error"]
    assert any(k.startswith("bad/latin1-\\xe9t\\xe9") for k in rows)
    assert payload["counts"]["verdict"]["synthetic"] == 3
    assert payload["counts"]["error"] == len(errors)
    # lists: kept keys, rejected with reasons, one error line per error row
    kept = (run / "kept.txt").read_text().split("\n")
    assert "real/a.jpg" in kept and "gen/wm_c.png" not in kept
    rejected = [json.loads(line) for line in (run / "rejected.jsonl").read_text().splitlines()]
    assert {r["key"] for r in rejected} == {"gen/wm_c.png", "gen/wm_d.png", "gen/a1111.png"}
    assert all(r["reasons"] for r in rejected)
    assert len((run / "errors.jsonl").read_text().splitlines()) == len(errors)
    card = json.loads((run / "run.json").read_text())
    assert card["counts"]["decision"]["reject"] == 3 and card["source"]["fingerprint"]
    assert card["config_fingerprint"] == json.loads((run / "config.json").read_text())["fingerprint"]
    assert str(TEST_KEY.decode()) not in (run / "config.json").read_text() + (run / "run.json").read_text()


def test_report_is_self_contained(finished):
    run, _ = finished
    r = CliRunner().invoke(main, ["report", str(run)])
    assert r.exit_code == 0
    page = (run / "report.html").read_text()
    assert "<svg" in page and "data:image/jpeg;base64," in page and "watermark:provguard:detected" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "<script" not in page


def test_decide_rewrites_from_stored_scores_without_models(finished, monkeypatch, tmp_path):
    run, _ = finished
    work = tmp_path / "run"
    shutil.copytree(run, work)
    import provguard.watermark.image as wi

    monkeypatch.setattr(wi, "create_image_watermark", lambda *a, **k: pytest.fail("decide must not build detectors"))
    p = {r: _rows(work)[r]["provguard-watermark.p_value"] for r in ("gen/wm_c.png", "gen/wm_d.png")}
    strict = min(p.values()) * 1.0000001  # a target FPR between the two p-values
    assert strict < max(p.values())
    r = CliRunner().invoke(main, ["decide", str(work), "--target-fpr", repr(strict), "--json"])
    assert r.exit_code == 0, r.output
    rows = _rows(work)
    low = min(p, key=p.get)
    high = max(p, key=p.get)
    assert rows[low]["decision"] == "reject" and rows[high]["decision"] == "keep"
    assert rows[high]["verdict"] == "uncertain"
    assert json.loads((work / "run.json").read_text())["thresholds"]["watermark_alpha"] == pytest.approx(strict)
    # and back: same as the original run
    CliRunner().invoke(main, ["decide", str(work), "--target-fpr", "0.001"])
    assert {k: v["decision"] for k, v in _rows(work).items()} == {k: v["decision"] for k, v in _rows(run).items()}
    # reject-uncertain moves every uncertain item to the rejected list
    CliRunner().invoke(main, ["decide", str(work), "--reject-uncertain"])
    assert all(v["decision"] == "reject" for v in _rows(work).values() if v["verdict"] == "uncertain")


def test_move_rejected_then_restore_is_byte_identical(corpus, tmp_path):
    root0, _, _, key_file = corpus
    root = tmp_path / "src"
    shutil.copytree(root0, root, symlinks=True)
    before = tree_digest(root)
    run = tmp_path / "run"
    r = _filter(root, "--out", run, "--key-file", key_file, "--action", "move-rejected")
    assert r.exit_code == 1, r.output
    assert json.loads(r.stdout)["action"]["moved"] == 3
    assert not (root / "gen/wm_c.png").exists() and (run / "quarantine/gen/wm_c.png").exists()
    assert tree_digest(root) != before
    html = CliRunner().invoke(main, ["report", str(run)])
    assert html.exit_code == 0 and "data:image/jpeg" in (run / "report.html").read_text()  # thumbnails from quarantine
    r = CliRunner().invoke(main, ["restore", str(run), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["restored"] == 3
    assert tree_digest(root) == before
    assert CliRunner().invoke(main, ["restore", str(run), "--json"]).exit_code == 0  # idempotent


def test_restore_refuses_a_journal_pointing_outside(corpus, tmp_path):
    root0, _, _, key_file = corpus
    root = tmp_path / "src"
    shutil.copytree(root0 / "gen", root / "gen")
    run = tmp_path / "run"
    _filter(root, "--out", run, "--key-file", key_file, "--action", "move-rejected")
    lines = [json.loads(x) for x in (run / "journal.jsonl").read_text().splitlines()]
    lines[0]["quarantine_hex"] = os.fsencode("../../../outside.png").hex()
    (run / "journal.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    quarantined = sorted(p.name for p in (run / "quarantine").rglob("*.png"))
    r = CliRunner().invoke(main, ["restore", str(run)])
    assert r.exit_code == 3 and "outside" in r.output
    assert sorted(p.name for p in (run / "quarantine").rglob("*.png")) == quarantined  # nothing moved


def test_copy_kept(corpus, tmp_path):
    root, _, _, key_file = corpus
    run = tmp_path / "run"
    _filter(root / "real", "--out", run, "--key-file", key_file, "--action", "copy-kept")
    assert (run / "kept/a.jpg").read_bytes() == (root / "real/a.jpg").read_bytes()


def test_existing_run_dir_with_different_config_is_refused(corpus, finished, tmp_path):
    root, _, _, key_file = corpus
    run, _ = finished
    before = (run / "manifest.parquet").read_bytes()
    r = _filter(root, "--out", run, "--key-file", key_file, "--shard-size", "8", "--target-fpr", "0.01")
    assert r.exit_code == 3 and "different configuration" in r.output and "target_fpr" in r.output
    other_key = tmp_path / "other.txt"
    other_key.write_bytes(b"another key")
    r = _filter(root, "--out", run, "--key-file", other_key, "--shard-size", "8")
    assert r.exit_code == 3 and "key_digest" in r.output
    assert (run / "manifest.parquet").read_bytes() == before


def test_missing_source_and_missing_text_field(tmp_path):
    r = _filter(tmp_path / "nope", "--out", tmp_path / "run")
    assert r.exit_code == 2 and "no such file or folder" in r.output
    (tmp_path / "d").mkdir()
    (tmp_path / "d/x.jsonl").write_text('{"body": "hello"}\n{"body": "again"}\n')
    r = _filter(tmp_path / "d", "--out", tmp_path / "run2", "--text-field", "content")
    assert r.exit_code == 1
    rows = _rows(tmp_path / "run2")
    assert all("no field 'content'" in v["error"] for v in rows.values()) and len(rows) == 2
    r = _filter(tmp_path / "d", "--out", tmp_path / "run3", "--text-field", "body")
    assert r.exit_code == 0 and all(v["error"] is None for v in _rows(tmp_path / "run3").values())


def test_worker_pool_gives_the_same_manifest(corpus, finished, tmp_path):
    root, _, _, key_file = corpus
    run, _ = finished
    r = CliRunner().invoke(main, ["filter", str(root), "--out", str(tmp_path / "run"), "--key-file", str(key_file),
                                  "--watermark", "provguard", "--text-watermark", "none", "--workers", "2",
                                  "--shard-size", "8", "--json"])
    assert r.exit_code == 1, r.output
    a = pq.read_table(run / "manifest.parquet").to_pylist()
    b = pq.read_table(tmp_path / "run/manifest.parquet").to_pylist()
    assert a == b
