"""Does the default probe gain from more seeded training views, neighbouring blocks, a different C,
family-balanced sample weights or an ensemble of per-block probes? Leave-one-source-repository-out
on genimage-train, the protocol of ``benchmarks.probe_selection`` (format-fair and degraded views of
every held-out image), on the fp32 CLIP ViT-B/16 tower's late class tokens with up to eight seeded
training views per image.

Reads ``../shared/data/genimage-train`` (or ``--corpus DIR``); says so and exits 2 when it is absent.
Writes ``benchmarks/results/probe_views.md``. The first run embeds 668 images x 11 views through the
fp32 tower (92 min on 2 cores; cached by :func:`provguard.detectors.corpus_features.corpus_features`).

Run: ``.venv/bin/python -m benchmarks.probe_views``
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from provguard.detectors import cross_validation as CV
from provguard.detectors.backbones import create_backbone
from provguard.detectors.corpus_features import EVAL_VIEWS, corpus_features, train_view_names
from provguard.detectors.default_probe import BACKBONE
from provguard.detectors.probe import LinearProbe
from benchmarks.probe_selection import corpus_cli, select_features

RESULTS = Path(__file__).resolve().parent / "results"
CMD = "`.venv/bin/python -m benchmarks.probe_views`"
LAYERS = "pre+cls8+cls9+cls10+cls11+cls12+patch10"
MAX_VIEWS = 8
# (label, layers, training views, C)
RECIPES = [("cls10, 2 views, C=10 (the first shipped recipe)", ["cls10"], 2, 10.0),
           ("cls10, 4 views, C=10", ["cls10"], 4, 10.0),
           ("cls10, 8 views, C=10", ["cls10"], 8, 10.0),
           ("cls10, 8 views, C=3", ["cls10"], 8, 3.0),
           ("cls10, 8 views, C=30", ["cls10"], 8, 30.0),
           ("cls10, 8 views, C=100", ["cls10"], 8, 100.0),
           ("cls9, 8 views, C=10", ["cls9"], 8, 10.0),
           ("cls11, 8 views, C=10", ["cls11"], 8, 10.0),
           ("cls9+cls10+cls11, 8 views, C=10", ["cls9", "cls10", "cls11"], 8, 10.0),
           ("cls8+cls10+cls12, 8 views, C=10", ["cls8", "cls10", "cls12"], 8, 10.0),
           ("cls10 + patch-token mean 10, 8 views, C=10", ["cls10", "patch10"], 8, 10.0),
           ("cls10 + pre, 8 views, C=10", ["cls10", "pre"], 8, 10.0)]
# the corpus README's advice for its skewed family counts: weigh by (source repository, class) cell
WEIGHTED = [("cls10, 8 views, C=10, every (repository, class) cell weighs the same", 1.0),
            ("cls10, 8 views, C=10, weights 1/sqrt(cell size)", 0.5)]
ENSEMBLES = [("mean of the cls9, cls10, cls11 probes' scores, 8 views", ["cls9", "cls10", "cls11"]),
             ("mean of the cls8 ... cls12 probes' scores, 8 views", ["cls8", "cls9", "cls10", "cls11", "cls12"])]


def oof(feats, y, groups, layers: list[str], views: int, C: float, power: float | None = None) -> dict[str, np.ndarray]:
    """Out-of-fold decision values ``{eval view: (N,)}`` of a logistic probe on ``layers``; with ``power``,
    weighted by :func:`~provguard.detectors.cross_validation.group_balanced_weights` instead of
    balanced classes."""
    def select(v):
        return select_features(feats, layers, v)
    weigh = None if power is None else (lambda g, lab: CV.group_balanced_weights(g, lab, power))
    return CV.oof_scores([select(v) for v in train_view_names(views)], y, groups, {v: select(v) for v in EVAL_VIEWS},
                         lambda: LinearProbe(kind="logistic", C=C, class_weight="balanced" if power is None else None),
                         weigh=weigh)


def row(name: str, scores: dict[str, np.ndarray], y: np.ndarray) -> str:
    f, d = CV.summary(scores["fair"], y), CV.summary(scores["degraded"], y)
    return (f"| {name} | {f['auc']:.3f} [{f['auc_ci'][0]:.3f}, {f['auc_ci'][1]:.3f}] | "
            f"{f['tpr']:.3f} [{f['tpr_ci'][0]:.3f}, {f['tpr_ci'][1]:.3f}] | {d['auc']:.3f} | {f['auc'] - d['auc']:.3f} |")


def main(argv=None) -> int:
    corpus = corpus_cli(__doc__, argv)
    if corpus is None:
        return 2
    images, y, groups = corpus
    feats = corpus_features(images, create_backbone(BACKBONE, layer=LAYERS, device="cpu"), MAX_VIEWS, batch_size=8)
    md = [f"# Training views, C, neighbouring blocks, sample weights, ensembles: fp32 CLIP ViT-B/16, logistic probe ({len(images)} images, "
          f"{len(set(groups))} leave-one-source-out folds)", "", f"Command: {CMD}", "",
          "| recipe | AUC format-fair [95% CI] | TPR@1% FPR format-fair [95% CI] | AUC fair + 0.5x + JPEG q75 | AUC drop |",
          "|---|---|---|---|---|"]
    for name, layers, views, C in RECIPES:
        md.append(row(name, oof(feats, y, groups, layers, views, C), y))
        print(md[-1], flush=True)
    for name, power in WEIGHTED:
        md.append(row(name, oof(feats, y, groups, ["cls10"], MAX_VIEWS, 10.0, power), y))
        print(md[-1], flush=True)
    for name, layers in ENSEMBLES:
        per = [oof(feats, y, groups, [p], MAX_VIEWS, 10.0) for p in layers]
        md.append(row(name, {v: np.mean([s[v] for s in per], axis=0) for v in EVAL_VIEWS}, y))
        print(md[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "probe_views.md").write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
