"""Leave-one-group-out evaluation of a probe recipe on a labelled corpus (groups = source repositories).

Each fold holds out every image of one source repository, both classes, fits on the training views of
all other images and scores the held-out images' evaluation views. The pooled out-of-fold scores are
then summarised as a detector would be used: AUC (with a stratified bootstrap interval), TPR at a
fixed FPR (Clopper-Pearson interval), and the same per file format and per size bucket. A generator
family is never seen in training when its images are scored (families live in their own repositories;
a family that spans repositories is held out one repository at a time).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from provguard.detectors.evaluation import auc, tpr_at_fpr

SIZE_BUCKETS = ((0, 256, "<256"), (256, 512, "256-511"), (512, 1 << 30, ">=512"))  # short side, px


def oof_scores(train_views: Sequence[np.ndarray], y: np.ndarray, groups: Sequence[str],
               eval_views: dict[str, np.ndarray], make_estimator: Callable[[], object],
               weigh: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Out-of-fold decision values ``{view: (N,)}``.

    ``train_views``: list of ``(N, D)`` feature arrays (one per training augmentation, rows = images);
    ``eval_views``: ``{name: (N, D)}``; ``make_estimator()`` returns an unfitted estimator with
    ``fit(X, y)`` and ``decision_function(X)`` (for example a :class:`LinearProbe`). ``weigh(groups, y)``,
    if given, returns the ``(M,)`` sample weights of a fold's ``M`` training rows, passed to
    ``fit(X, y, sample_weight=...)`` (see :func:`group_balanced_weights`).
    """
    groups = np.asarray(groups)
    y = np.asarray(y)
    out = {v: np.full(len(y), np.nan) for v in eval_views}
    for g in sorted(set(groups.tolist())):
        test = groups == g
        train = ~test
        X = np.concatenate([tv[train] for tv in train_views])
        Y = np.tile(y[train], len(train_views))
        if weigh is None:
            est = make_estimator().fit(X, Y)
        else:
            est = make_estimator().fit(X, Y, sample_weight=weigh(np.tile(groups[train], len(train_views)), Y))
        for v, Xe in eval_views.items():
            out[v][test] = est.decision_function(Xe[test])
    return out


def group_balanced_weights(groups: np.ndarray, y: np.ndarray, power: float = 1.0) -> np.ndarray:
    """``(M,)`` sample weights that give each (group, class) cell of ``M`` rows a total proportional to
    ``count ** (1 - power)``: ``power=1`` makes every cell weigh the same, ``0.5`` is a square-root
    compromise. Each class then sums to ``M / 2`` (balanced classes, mean weight 1)."""
    cells = np.char.add(np.asarray(groups).astype(str), np.char.add("|", np.asarray(y).astype(str)))
    _, inverse, counts = np.unique(cells, return_inverse=True, return_counts=True)
    w = counts[inverse].astype(np.float64) ** -power
    for c in np.unique(y):
        w[y == c] *= 0.5 * len(w) / w[y == c].sum()
    return w


def auc_interval(real: np.ndarray, synthetic: np.ndarray, n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the AUC, resampling each class separately (seeded)."""
    rng = np.random.default_rng(seed)
    r, s = np.asarray(real, np.float64), np.asarray(synthetic, np.float64)
    # vectorised Mann-Whitney on resampled indices: rank once, then count via searchsorted
    stats = np.empty(n_boot)
    for b in range(n_boot):
        rb = np.sort(r[rng.integers(0, len(r), len(r))])
        sb = s[rng.integers(0, len(s), len(s))]
        less = np.searchsorted(rb, sb, side="left")
        leq = np.searchsorted(rb, sb, side="right")
        stats[b] = (less.sum() + 0.5 * (leq - less).sum()) / (len(r) * len(s))
    a = (1 - level) / 2
    return float(np.quantile(stats, a)), float(np.quantile(stats, 1 - a))


def summary(scores: np.ndarray, y: np.ndarray, fpr: float = 0.01, n_boot: int = 1000) -> dict:
    """``{"auc", "auc_ci", "tpr", "tpr_ci", "n_real", "n_synthetic"}`` of ``(N,)`` scores (label 1 = synthetic)."""
    y = np.asarray(y)
    real, syn = scores[y == 0], scores[y == 1]
    t = tpr_at_fpr(real, syn, fpr)
    return {"auc": auc(real, syn), "auc_ci": list(auc_interval(real, syn, n_boot)), "tpr": t["tpr"],
            "tpr_ci": t["ci"], "n_real": int(len(real)), "n_synthetic": int(len(syn))}


def size_bucket(short_side: int) -> str:
    """Name of the short-side bucket (see :data:`SIZE_BUCKETS`)."""
    return next(name for lo, hi, name in SIZE_BUCKETS if lo <= short_side < hi)


def breakdown(scores: np.ndarray, y: np.ndarray, keys: Sequence[str]) -> dict[str, dict]:
    """AUC per key (a format or a size bucket): both classes restricted to the items with that key.

    A key present in only one class has no AUC (``None``): the report says so rather than inventing one.
    """
    keys = np.asarray(keys)
    out = {}
    for k in sorted(set(keys.tolist())):
        m = keys == k
        r, s = scores[m & (y == 0)], scores[m & (y == 1)]
        out[k] = {"n_real": int(len(r)), "n_synthetic": int(len(s)),
                  "auc": auc(r, s) if len(r) and len(s) else None}
    return out
