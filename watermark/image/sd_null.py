"""The SD reader's null distribution: p-values from real-photo counts, with a fitted tail.

The statistic is a match count ``m`` in ``0..L`` (bits of a payload matched, best of four read-outs).
The packaged table (``watermark/data/sd_null.json``, built by
:mod:`provguard.watermark.image.sd_calibration`) holds, per payload, a histogram of ``m`` over ``N``
real-photo views. A p-value ``P(M >= m | not watermarked)`` comes from it in two pieces:

* **Empirical** while at least :data:`MIN_EXCEEDANCES` null views reach ``m``: the conformal
  ``(1 + #{null >= m}) / (N + 1)`` (finite-sample valid for an exchangeable new view).
* **Tail model** beyond that (where the histogram has fewer than 25 views, down to none at all):
  a geometric tail, ``P(M >= m) = p(anchor) * r ** (m - anchor)``, with the ratio ``r`` fitted by
  maximum likelihood to the top :data:`TAIL_FRACTION` of the views (the exceedances over ``start``;
  for a geometric law the MLE is ``r = mean excess / (1 + mean excess)``). A log-linear survival is
  the conservative choice among the shapes the data allow: a binomial-like (log-concave) tail falls
  faster, so extrapolating the straight line over-states p far out. It is validated two-fold on
  photos not used to fit it (:func:`validate`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

#: the empirical p-value is used while at least this many null views reach the count
MIN_EXCEEDANCES = 25
#: the tail is fitted on (about) this fraction of the null views, the highest counts
TAIL_FRACTION = 0.01
#: significance levels at which :func:`validate` compares the achieved false-positive rate
LEVELS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


def at_least(hist: Sequence[int]) -> np.ndarray:
    """``out[k] = #{views with count >= k}`` for ``k = 0 .. L+1`` from a histogram of length ``L+1``."""
    h = np.asarray(hist, dtype=np.int64)
    return np.concatenate([np.cumsum(h[::-1])[::-1], [0]])


@dataclass(frozen=True)
class PayloadNull:
    """The fitted null of one payload's match count.

    ``counts``: histogram, length ``bits + 1``. ``start``: first count of the tail fit. ``rate``:
    the fitted decay of the tail, ``-log r`` per bit (``r`` the survival ratio of successive counts).
    ``anchor``: the largest count that at least :data:`MIN_EXCEEDANCES` views reach; the empirical
    p-value is used up to it and the tail model beyond.
    """

    counts: np.ndarray
    start: int
    rate: float
    anchor: int

    @classmethod
    def fit(cls, hist: Sequence[int], tail_fraction: float = TAIL_FRACTION,
            min_exceedances: int = MIN_EXCEEDANCES) -> "PayloadNull":
        """Fit the tail of ``hist``: ``start`` is the smallest count that at most ``tail_fraction`` of
        the views reach (at least ``min_exceedances`` views, so the rate is estimable)."""
        counts = np.asarray(hist, dtype=np.int64)
        ge = at_least(counts)
        n = int(ge[0])
        if n < min_exceedances or np.count_nonzero(counts) < 2:
            raise ValueError(f"a null histogram needs at least {min_exceedances} views spread over two or more counts")
        anchor = int(np.nonzero(ge[:-1] >= min_exceedances)[0].max())
        target = max(tail_fraction * n, min_exceedances)
        start = min(int(np.nonzero(ge <= target)[0].min()), anchor)
        k = np.arange(len(counts))
        sel = k >= start
        excess = float((counts[sel] * (k[sel] - start)).sum()) / float(counts[sel].sum())
        if excess <= 0:
            raise ValueError(f"no spread above {start} matches: the tail cannot be fitted")
        ratio = excess / (1.0 + excess)
        return cls(counts, start, -math.log(ratio), anchor)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def p_values(self, matches) -> np.ndarray:
        """``P(M >= m)`` for an integer array of match counts (empirical up to ``anchor``, tail beyond)."""
        ge = at_least(self.counts)
        m = np.clip(np.asarray(matches, dtype=np.int64), 0, len(self.counts))
        empirical = (1.0 + ge[np.minimum(m, self.anchor)]) / (1.0 + self.n)
        return np.where(m > self.anchor, empirical * np.exp(-self.rate * (m - self.anchor)), empirical)

    def to_dict(self) -> dict[str, Any]:
        bits = len(self.counts) - 1
        return {"start": self.start, "rate": self.rate, "ratio": math.exp(-self.rate), "anchor": self.anchor,
                "anchor_p": float(self.p_values([self.anchor])[0]), "p_at_all_bits": float(self.p_values([bits])[0])}


def validate(fit_hist: Sequence[int], test_hist: Sequence[int], levels: Sequence[float] = LEVELS) -> dict[str, Any]:
    """How p-values from a null fitted on ``fit_hist`` behave on held-out views ``test_hist``.

    Returns ``{"n_fit", "n_test", "levels": [{"alpha", "expected", "observed", "poisson_p"}],
    "counts": [{"matches", "p", "expected", "observed"}]}``: at each level ``alpha`` the number of
    held-out views whose p-value is <= ``alpha`` against ``n_test * alpha`` (what a valid p-value
    allows at most); ``poisson_p`` is P(Poisson(expected) >= observed), small when the model
    under-states the tail. ``counts`` lists, per match count from the tail start up, the predicted and
    observed numbers of held-out views at or above it.
    """
    null = PayloadNull.fit(fit_hist)
    test = np.asarray(test_hist, dtype=np.int64)
    n_test = int(test.sum())
    ge_test = at_least(test)
    k = np.arange(len(test))
    p = null.p_values(k)
    rows = []
    for alpha in levels:
        observed = int(test[p <= alpha].sum())
        expected = n_test * alpha
        rows.append({"alpha": alpha, "expected": expected, "observed": observed,
                     "poisson_p": poisson_sf(observed, expected)})
    counts = [{"matches": int(m), "p": float(p[m]), "expected": n_test * float(p[m]), "observed": int(ge_test[m])}
              for m in range(null.start, len(test)) if ge_test[m] > 0 or n_test * p[m] >= 0.01]
    return {"n_fit": null.n, "n_test": n_test, "tail": null.to_dict(), "levels": rows, "counts": counts}


def poisson_sf(observed: int, expected: float) -> float:
    """``P(Poisson(expected) >= observed)`` (1 for ``observed <= 0``)."""
    if observed <= 0:
        return 1.0
    term, below = math.exp(-expected), 0.0
    for j in range(observed):
        below += term
        term *= expected / (j + 1)
    return max(0.0, 1.0 - below)


def build_table(counts: dict[str, Any]) -> dict[str, Any]:
    """The packaged table from per-photo counts (:func:`~provguard.watermark.image.sd_calibration.count_views`).

    Per payload: the histogram over all views (which the reader uses), one per split, the fitted tail
    and the two-fold validation (fit on split a, test on split b).
    """
    photos = counts["photos"]
    names = sorted(photos)
    payloads = list(next(iter(photos.values()))["histograms"])
    splits = sorted({photos[p]["split"] for p in names})
    out: dict[str, Any] = {}
    for name in payloads:
        by_split = [np.sum([photos[p]["histograms"][name] for p in names if photos[p]["split"] == s], axis=0)
                    for s in splits]
        total = np.sum(by_split, axis=0)
        folds = [{"fit_split": a, "test_split": b, **validate(by_split[a], by_split[b])}
                 for a in range(len(splits)) for b in range(len(splits)) if a != b]
        out[name] = {"bits": len(total) - 1, "counts": total.tolist(), "counts_by_split": [h.tolist() for h in by_split],
                     "tail": PayloadNull.fit(total).to_dict(), "validation": folds}
    n = int(np.sum(out[payloads[0]]["counts"]))
    return {
        "n": n,
        "statistic": "max over read-outs (u8|f32 x bgr|rgb) of bits matching the payload",
        "model": (f"conformal (1 + #null >= m) / (n + 1) while >= {MIN_EXCEEDANCES} null views reach m; beyond, "
                  f"a geometric tail p(anchor) * ratio^(m - anchor) fitted (MLE) on the top {TAIL_FRACTION:.0%} of views"),
        "source": {"images": names, "splits": {str(s): [p for p in names if photos[p]["split"] == s] for s in splits},
                   "views_per_image": counts["views_per_image"], "seed": counts["seed"], "views": counts["views"]},
        "payloads": out,
    }
