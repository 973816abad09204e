"""Does the default probe lose generator traces to the resize? The fp32 CLIP tower on 224 px crops taken
at native resolution (no downscaling; images under 224 px are upsampled) against the shipped resize +
centre-crop preprocessing, leave-one-source-repository-out on genimage-train, format-fair protocol.

Native crops are what UniversalFakeDetect-style detectors feed at test time: a resize smooths away the
high-frequency traces of the generator's upsampler. The views are those of the selection study
(two seeded training augmentations, format-fair, degraded); the training views are augmented as
before and then cropped natively.

Reads ``../shared/data/genimage-train`` (or ``--corpus DIR``); says so and exits 2 when it is absent.
Writes ``benchmarks/results/native_crops.md``. The first run embeds 668 images x 4 views through the
fp32 tower (about 35 min on 2 shared cores; cached under ``cache_dir()/corpus/native-*.npz``).

Run: ``.venv/bin/python -m benchmarks.native_crops``
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
from PIL import Image

from provguard.detectors import cross_validation as CV
from provguard.detectors.backbones import cache_dir, create_backbone, join_parts
from provguard.detectors.corpus import corpus_sha256
from provguard.detectors.corpus_features import corpus_features, image_views
from provguard.detectors.default_probe import BACKBONE, STUDY_LAYERS
from provguard.detectors.preprocessing import CLIP, normalise
from provguard.detectors.probe import LinearProbe
from provguard.imaging.io import decode_image
from benchmarks.probe_selection import corpus_cli

RESULTS = Path(__file__).resolve().parent / "results"
CMD = "`.venv/bin/python -m benchmarks.native_crops`"
LAYERS = "proj+pre+" + "+".join(f"cls{i}" for i in range(4, 13))
VIEWS = ("train0", "train1", "fair", "degraded")
TRAIN, EVAL = ("train0", "train1"), ("fair", "degraded")


def native_crop(rgb: np.ndarray, size: int = 224) -> np.ndarray:
    """Centre ``size`` x ``size`` crop of ``uint8 (H, W, 3)`` at native resolution (bicubic upsampling of
    the short side to ``size`` first when it is smaller)."""
    h, w = rgb.shape[:2]
    if min(h, w) < size:
        scale = size / min(h, w)
        rgb = np.asarray(Image.fromarray(rgb).resize((max(size, round(w * scale)), max(size, round(h * scale))),
                                                     Image.Resampling.BICUBIC))
        h, w = rgb.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return rgb[top:top + size, left:left + size]


def native_features(images, tower) -> dict[str, dict[str, np.ndarray]]:
    """``{view: {layer: (N, D)}}`` of native crops, cached on disk."""
    key = hashlib.sha256(f"{corpus_sha256(images)}|{tower.id}|{tower.weights_hash}|{tower.layer}|{VIEWS}".encode())
    path = cache_dir() / "corpus" / f"native-{key.hexdigest()[:24]}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {v: {p: z[f"{v}/{p}"] for p in tower.parts} for v in VIEWS}
    rows = {v: {p: [] for p in tower.parts} for v in VIEWS}
    t0 = time.time()
    for k, im in enumerate(images):
        views = image_views(decode_image(im.path), im.sha256, 2, 0)
        parts = tower.embed_parts(normalise(np.stack([native_crop(views[v]) for v in VIEWS]), CLIP))
        for p, arr in parts.items():
            for i, v in enumerate(VIEWS):
                rows[v][p].append(arr[i])
        if k % 50 == 0:
            print(f"{k}/{len(images)} images, {time.time() - t0:.0f} s", flush=True)
    out = {v: {p: np.stack(a) for p, a in d.items()} for v, d in rows.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.npz")
    np.savez(tmp, **{f"{v}/{p}": a for v, d in out.items() for p, a in d.items()})
    tmp.replace(path)
    return out


def main(argv=None) -> int:
    corpus = corpus_cli(__doc__, argv)
    if corpus is None:
        return 2
    images, y, groups = corpus
    native = native_features(images, create_backbone(BACKBONE, layer=LAYERS, device="cpu"))
    resized = corpus_features(images, create_backbone(BACKBONE, layer=STUDY_LAYERS, device="cpu"), batch_size=8)

    def scores(select):
        return CV.oof_scores([select(v) for v in TRAIN], y, groups, {v: select(v) for v in EVAL},
                             lambda: LinearProbe(kind="logistic", C=10.0))

    candidates = {f"resized {L} (shipped preprocessing)" if L == "cls10" else f"resized {L}":
                  (lambda v, L=L: resized[v][L]) for L in ("cls10", "proj")}
    candidates.update({f"native {L}": (lambda v, L=L: native[v][L]) for L in ("cls8", "cls9", "cls10", "cls11", "cls12", "pre", "proj")})
    candidates["native cls4-12"] = lambda v: join_parts([native[v][f"cls{i}"] for i in range(4, 13)])
    candidates["native cls10 + resized cls10 (two forward passes)"] = lambda v: join_parts([native[v]["cls10"], resized[v]["cls10"]])
    out = {name: scores(sel) for name, sel in candidates.items()}
    out["late fusion: mean of native cls9 and resized cls10 scores (two passes)"] = {
        v: (out["native cls9"][v] + out["resized cls10 (shipped preprocessing)"][v]) / 2 for v in EVAL}
    md = [f"# Native-resolution crops vs resize, fp32 CLIP ViT-B/16, logistic C=10 ({len(images)} images, "
          f"{len(set(groups))} leave-one-source-out folds)", "", f"Command: {CMD}", "",
          "| features | AUC format-fair [95% CI] | TPR@1% FPR format-fair [95% CI] | AUC fair + 0.5x + JPEG q75 |",
          "|---|---|---|---|"]
    for name, s in out.items():
        f, d = CV.summary(s["fair"], y), CV.summary(s["degraded"], y)
        md.append(f"| {name} | {f['auc']:.3f} [{f['auc_ci'][0]:.3f}, {f['auc_ci'][1]:.3f}] | "
                  f"{f['tpr']:.3f} [{f['tpr_ci'][0]:.3f}, {f['tpr_ci'][1]:.3f}] | {d['auc']:.3f} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "native_crops.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
