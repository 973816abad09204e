"""SD watermark decisions at web scale, before and after the large null (issue 10): false positives per
million clean views, and TPR on marks made by invisible-watermark through the generators' pixel paths.

* **before**: the 7,200-view null shipped earlier (``results/sd_null_before.json``: conformal p-values
  only, resolution 1/7,201) and the per-item rule ``p <= 1e-3``.
* **after**: the packaged null (``watermark/data/sd_null.json``: >= 100,000 views, geometric tail) and
  the run-wide Benjamini-Hochberg cutoff at the default FDR (:data:`provguard.pipeline.fdr.DEFAULT_FDR`).

Clean views are held out. Before: the views of split-1 photos (the old table was built on split 0).
After: each split's views scored against the tail fitted on the other split's photos (two-fold, from
``results/sd_null_counts.json``). Per-view p-values are ``3 * min over payloads`` (Bonferroni); the
counts keep one histogram per payload, so a view is counted once per payload that reaches the cutoff:
an upper bound on false positives.

Under BH a run of ``m`` clean items rejects anything only when some p-value is <= ``q / m`` (so the
expected number of false rejections is at most ``q`` per run); a lone mark in a run of ``m`` items
needs the same ``p <= q / m``, a lower bound on BH's TPR (``k`` marks share ``k q / m``).

Run: ``python -m benchmarks.sd_decisions`` (writes ``results/sd_decisions.{json,md}``; ~2 CPU-minutes).
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from provguard.imaging.photos import require_photos
from provguard.imaging.photoset import split_of, tiles
from provguard.pipeline.fdr import DEFAULT_FDR
from provguard.watermark.image import sd
from provguard.watermark.image.sd_null import PayloadNull

RESULTS = Path(__file__).resolve().parent / "results"
ALPHA_BEFORE = 1e-3
RUN_SIZES = (10_000, 1_000_000, 10_000_000)
PATHS = {"compvis/sd1": ("compvis", "sd1"), "compvis/sd2": ("compvis", "sd2"),
         "stability/sdxl": ("stability", "sdxl"), "diffusers/sdxl": ("diffusers", "sdxl")}
CONDITIONS = ("png", "jpeg q90 4:4:4", "jpeg q95 4:2:0")


def oracle_embed(rgb: np.ndarray, path: str, bits: np.ndarray) -> np.ndarray:
    """Mark uint8 RGB with invisible-watermark's ``dwtDct`` the way each generator's code calls it."""
    from imwatermark import WatermarkEncoder

    enc = WatermarkEncoder()
    enc.set_watermark("bits", [int(b) for b in bits])
    if path == "compvis":  # uint8, RGB -> BGR -> encode -> RGB
        return enc.encode(np.ascontiguousarray(rgb[:, :, ::-1]), "dwtDct")[:, :, ::-1].copy()
    if path == "stability":  # float32 255*x, BGR, clamp, astype(uint8) truncates
        out = enc.encode(np.ascontiguousarray(rgb[:, :, ::-1].astype(np.float32)), "dwtDct")[:, :, ::-1]
        return np.clip(out, 0, 255).astype(np.uint8)
    out = enc.encode(rgb.astype(np.float32), "dwtDct")  # diffusers: float32 RGB unflipped, PIL rounding
    return np.round(np.clip(out, 0, 255)).astype(np.uint8)


def transmit(rgb: np.ndarray, condition: str) -> np.ndarray:
    """The image after saving: PNG, or JPEG at the quality and chroma subsampling named."""
    buf = io.BytesIO()
    if condition == "png":
        Image.fromarray(rgb).save(buf, format="PNG")
    else:
        quality, sub = int(condition.split()[1][1:]), {"4:4:4": 0, "4:2:0": 2}[condition.split()[2]]
        Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, subsampling=sub)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.uint8)


def before_p(matches: dict[str, int], old: dict) -> float:
    """The old reader's p-value: Bonferroni x3 over conformal p-values from the 7,200-view table."""
    return min(1.0, 3 * min(float(sd.conformal_p_values(old["payloads"][n]["counts"], [m])[0])
                            for n, m in matches.items()))


def after_p(matches: dict[str, int], models: dict[str, PayloadNull]) -> float:
    """The packaged reader's p-value: Bonferroni x3 over the empirical-plus-tail p-values."""
    return min(1.0, 3 * min(float(models[n].p_values([m])[0]) for n, m in matches.items()))


def false_positives(old: dict, counts: dict) -> dict:
    """Per million held-out clean views: flagged before (per item, 1e-3) and after (per item at the cap,
    and at BH's clean-run cutoff q/m for several run sizes)."""
    photos = counts["photos"]
    by_split = {s: {n: np.sum([p["histograms"][n] for p in photos.values() if p["split"] == s], axis=0)
                    for n in sd.SD_PAYLOADS} for s in (0, 1)}
    out: dict = {}
    n1 = int(by_split[1]["sdxl"].sum())
    flagged = sum(int(h[3 * sd.conformal_p_values(old["payloads"][n]["counts"], np.arange(len(h))) <= ALPHA_BEFORE].sum())
                  for n, h in by_split[1].items())
    out["before"] = {"views": n1, "flagged": flagged, "per_million": 1e6 * flagged / n1, "cutoff": ALPHA_BEFORE}
    after = {"views": 0, "per_item_1e-3": 0, **{f"run_{m}": 0 for m in RUN_SIZES}}
    for fit, test in ((0, 1), (1, 0)):
        models = {n: PayloadNull.fit(by_split[fit][n]) for n in sd.SD_PAYLOADS}
        after["views"] += int(by_split[test]["sdxl"].sum())
        for n, h in by_split[test].items():
            p = 3 * models[n].p_values(np.arange(len(h)))
            after["per_item_1e-3"] += int(h[p <= ALPHA_BEFORE].sum())
            for m in RUN_SIZES:
                after[f"run_{m}"] += int(h[p <= DEFAULT_FDR / m].sum())
    out["after"] = {"views": after["views"], "fdr": DEFAULT_FDR,
                    "per_item_1e-3": {"flagged": after["per_item_1e-3"],
                                      "per_million": 1e6 * after["per_item_1e-3"] / after["views"]},
                    "bh_clean_run": {str(m): {"cutoff": DEFAULT_FDR / m, "flagged": after[f"run_{m}"],
                                              "per_million": 1e6 * after[f"run_{m}"] / after["views"],
                                              "guarantee_per_million": 1e6 * DEFAULT_FDR / m}
                                     for m in RUN_SIZES}}
    return out


def true_positives(old: dict, models: dict[str, PayloadNull], per_image: int = 2) -> dict:
    """TPR before/after per pixel path and condition on 512x512 tiles of split-1 photos."""
    photos = [p for p in require_photos(8) if split_of(p) == 1]
    images = tiles(photos, 512, per_image=per_image)
    reader = sd.SDWatermark(device="cpu")
    rows = {}
    for label, (path, payload) in PATHS.items():
        marked = [oracle_embed(img, path, sd.SD_PAYLOADS[payload]) for img in images]
        for condition in CONDITIONS:
            seen = [transmit(img, condition) for img in marked]
            counts = reader.match_counts(seen)
            before, after = [], []
            for i in range(len(seen)):
                matches = {n: int(counts[n][i]) for n in sd.SD_PAYLOADS}
                before.append(before_p(matches, old))
                after.append(after_p(matches, models))
            before, after = np.array(before), np.array(after)
            rows[f"{label} | {condition}"] = {
                "n": len(seen), "tpr_before": float(np.mean(before <= ALPHA_BEFORE)),
                "median_p_before": float(np.median(before)), "median_p_after": float(np.median(after)),
                **{f"tpr_after_lone_mark_run_{m}": float(np.mean(after <= min(ALPHA_BEFORE, DEFAULT_FDR / m)))
                   for m in RUN_SIZES}}
    return rows


def to_markdown(rep: dict) -> str:
    fp = rep["false_positives"]
    b, a = fp["before"], fp["after"]
    lines = [f"Held-out clean views: {b['views']:,} (before), {a['views']:,} (after, two-fold). "
             f"Default FDR q = {a['fdr']}. Upper bounds (a view counts once per payload reaching the cutoff).\n",
             "| rule | cutoff | flagged | per million clean views |", "|---|---|---|---|",
             f"| before: 7,200-view table, per item | p <= {b['cutoff']:g} | {b['flagged']} | {b['per_million']:.0f} |",
             f"| after: new table, per item | p <= 1e-3 | {a['per_item_1e-3']['flagged']} | "
             f"{a['per_item_1e-3']['per_million']:.0f} |"]
    for m, r in a["bh_clean_run"].items():
        lines.append(f"| after: BH q={a['fdr']}, clean run of {int(m):,} | p <= {r['cutoff']:.0e} | {r['flagged']} | "
                     f"{r['per_million']:.2f} (guarantee <= {r['guarantee_per_million']:.2g}) |")
    lines += ["", "| pixel path / payload | saved as | n | TPR before (p<=1e-3) | "
              + " | ".join(f"TPR after, lone mark in {m:,}" for m in RUN_SIZES) + " | median p before | median p after |",
              "|---|---|---|---|" + "---|" * len(RUN_SIZES) + "---|---|"]
    for key, r in rep["true_positives"].items():
        label, condition = key.split(" | ")
        lines.append(f"| {label} | {condition} | {r['n']} | {r['tpr_before']:.2f} | "
                     + " | ".join(f"{r[f'tpr_after_lone_mark_run_{m}']:.2f}" for m in RUN_SIZES)
                     + f" | {r['median_p_before']:.1e} | {r['median_p_after']:.1e} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    old = json.loads((RESULTS / "sd_null_before.json").read_text())
    counts = json.loads((RESULTS / "sd_null_counts.json").read_text())
    rep = {"false_positives": false_positives(old, counts), "true_positives": true_positives(old, sd.null_models())}
    (RESULTS / "sd_decisions.json").write_text(json.dumps(rep, indent=1) + "\n")
    (RESULTS / "sd_decisions.md").write_text(to_markdown(rep))
    print(to_markdown(rep))


if __name__ == "__main__":
    main()
