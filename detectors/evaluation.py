"""Detector quality on labelled scores: AUC, TPR at fixed FPR with intervals, calibration error,
per-source breakdowns, and robustness to re-encoding applied to *both* classes.

Conventions: ``real`` and ``synthetic`` are 1-D score arrays (higher = more synthetic); FPRs are
fractions. TPR at FPR ``f`` uses the empirical threshold on the real scores (the ``ceil(n(1-f))``-th
smallest) and is ``None`` when there are fewer than ``1/f`` real scores: with 300 real images
"TPR at 1e-3" would be a guess, and the report says so instead.
"""
from __future__ import annotations

import io
import math
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from provguard.detectors.calibration import clopper_pearson

FPRS = (1e-2, 1e-3)


def auc(real: np.ndarray, synthetic: np.ndarray) -> float:
    """ROC AUC = P(synthetic score > real score) (ties count half); Mann-Whitney form."""
    from scipy.stats import rankdata

    r, s = np.asarray(real, np.float64), np.asarray(synthetic, np.float64)
    if len(r) == 0 or len(s) == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([r, s]))
    return float((ranks[len(r):].sum() - len(s) * (len(s) + 1) / 2) / (len(r) * len(s)))


def tpr_at_fpr(real: np.ndarray, synthetic: np.ndarray, fpr: float) -> dict:
    """``{"tpr", "ci", "threshold", "achieved_fpr"}`` at false-positive rate ``fpr`` (``tpr`` None if n too small)."""
    r = np.sort(np.asarray(real, np.float64))
    s = np.asarray(synthetic, np.float64)
    if len(r) < math.ceil(1 / fpr) or len(s) == 0:
        return {"tpr": None, "ci": None, "threshold": None, "achieved_fpr": None,
                "note": f"needs >= {math.ceil(1 / fpr)} real scores, got {len(r)}"}
    t = float(r[math.ceil(len(r) * (1 - fpr)) - 1])
    k = int((s > t).sum())
    return {"tpr": k / len(s), "ci": list(clopper_pearson(k, len(s))), "threshold": t,
            "achieved_fpr": float((r > t).mean())}


def expected_calibration_error(p_synthetic: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """ECE of probabilities ``(N,)`` against labels ``(N,)`` (1 = synthetic), equal-width bins."""
    p, y = np.asarray(p_synthetic, np.float64), np.asarray(labels, np.float64)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    err = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(err)


def summarize(real: np.ndarray, synthetic: np.ndarray, p_real: np.ndarray | None = None,
              p_synthetic: np.ndarray | None = None, fprs: Sequence[float] = FPRS) -> dict:
    """The headline report: ``auc``, ``tpr_at_fpr`` (keyed by ``str(fpr)``), counts, optional ECE."""
    out = {"auc": auc(real, synthetic), "n_real": int(len(real)), "n_synthetic": int(len(synthetic)),
           "tpr_at_fpr": {}, "tpr_ci": {}}
    for f in fprs:
        r = tpr_at_fpr(real, synthetic, f)
        out["tpr_at_fpr"][str(f)] = r["tpr"]
        out["tpr_ci"][str(f)] = r["ci"]
    if p_real is not None and p_synthetic is not None:
        p = np.concatenate([p_real, p_synthetic])
        y = np.concatenate([np.zeros(len(p_real)), np.ones(len(p_synthetic))])
        out["calibration_error"] = expected_calibration_error(p, y)
    return out


def per_source(real: np.ndarray, synthetic: np.ndarray, sources: Sequence[str]) -> dict[str, dict]:
    """AUC and TPR@FPR for each synthetic source against all real scores (``sources`` labels ``synthetic``)."""
    sources = np.asarray(sources)
    return {str(src): summarize(real, np.asarray(synthetic)[sources == src]) for src in sorted(set(sources.tolist()))}


# -- robustness: the same re-encoding for both classes -------------------------------------------
def _reencode(rgb: np.ndarray, fmt: str, **opts) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, **opts)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def jpeg(quality: int) -> Callable[[np.ndarray], np.ndarray]:
    """Re-encode as JPEG at ``quality`` (4:2:0, as scrapers and social sites do)."""
    return lambda rgb: _reencode(rgb, "JPEG", quality=quality)


def webp(quality: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda rgb: _reencode(rgb, "WEBP", quality=quality)


def resize(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    """Bicubic rescale by ``factor`` (each side), at least 1 px."""
    def f(rgb):
        h, w = rgb.shape[:2]
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))
    return f


def robustness_transforms() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The standard set: identity, JPEG q95/85/75/50, resize 0.5, WebP q80."""
    return {"none": lambda rgb: rgb, "jpeg95": jpeg(95), "jpeg85": jpeg(85), "jpeg75": jpeg(75),
            "jpeg50": jpeg(50), "resize0.5": resize(0.5), "webp80": webp(80)}


def robustness_curve(score_fn: Callable[[list[np.ndarray]], np.ndarray], real: list[np.ndarray],
                     synthetic: list[np.ndarray], transforms: dict[str, Callable] | None = None) -> dict[str, dict]:
    """For each transform applied to *both* real and synthetic RGB arrays, the :func:`summarize` report.

    ``score_fn`` maps a list of ``uint8 (H, W, 3)`` arrays to ``(N,)`` scores. Applying the same
    transform to both classes keeps the file format from leaking the label.
    """
    out = {}
    for name, t in (transforms or robustness_transforms()).items():
        out[name] = summarize(score_fn([t(x) for x in real]), score_fn([t(x) for x in synthetic]))
    return out
