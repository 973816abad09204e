"""Thresholds from a target false-positive rate on held-out real images, with a finite-sample guarantee.

Split-conformal order statistic: with ``n`` exchangeable real calibration scores sorted ascending
``s_(1) <= ... <= s_(n)`` and ``k = ceil((n + 1)(1 - alpha))``, flagging ``score > s_(k)`` has
``P(false positive) <= (n + 1 - k) / (n + 1) <= alpha`` for a new real image from the same source,
whatever the score distribution (Vovk et al. 2005; Angelopoulos & Bates 2021). It needs
``n >= ceil(1 / alpha) - 1`` real images (99 for 1e-2, 999 for 1e-3); with fewer it refuses.
The *achieved* FPR on the calibration set is reported with an exact (Clopper-Pearson) interval.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from provguard.errors import ProvguardError


class CalibrationError(ProvguardError):
    """Not enough (or unusable) calibration data for the requested false-positive rate."""

    names_parameters = True


def min_calibration_size(alpha: float) -> int:
    """Smallest ``n`` for which the conformal threshold at level ``alpha`` exists."""
    return max(1, math.ceil(1.0 / alpha - 1.0 - 1e-9))


def conformal_threshold(real_scores: np.ndarray, alpha: float) -> float:
    """The ``k = ceil((n+1)(1-alpha))``-th smallest real score; flag ``score > threshold``."""
    s = np.sort(np.asarray(real_scores, np.float64))
    s = s[np.isfinite(s)]
    if not 0 < alpha < 1:
        raise CalibrationError(f"target FPR must be in (0, 1), got {alpha}")
    n = s.shape[0]
    k = math.ceil((n + 1) * (1 - alpha) - 1e-9)
    if k > n:
        raise CalibrationError(f"a target FPR of {alpha:g} needs at least {min_calibration_size(alpha)} real "
                               f"calibration images, got {n}: add real images or raise {{target_fpr}}")
    return float(s[k - 1])


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided binomial confidence interval for ``k`` successes in ``n`` trials."""
    from scipy.stats import beta

    if n == 0:
        return (0.0, 1.0)
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return (lo, hi)


@dataclass
class Calibration:
    """A calibrated decision rule on a score (higher = more synthetic).

    ``score > threshold`` -> synthetic; ``uncertain_threshold < score <= threshold`` -> uncertain (when
    an uncertain band was asked for); otherwise real. FPRs are fractions, not percentages.
    """

    threshold: float
    target_fpr: float
    achieved_fpr: float
    fpr_ci: tuple[float, float]
    n_calibration: int
    uncertain_threshold: float | None = None
    uncertain_fpr: float | None = None
    score: str = "decision_function"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fpr_ci"] = list(self.fpr_ci)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        """The rule stored in a probe file (extra keys such as a per-source breakdown are ignored)."""
        fields = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**{**fields, "fpr_ci": tuple(fields["fpr_ci"])})

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """``(N,)`` scores -> ``(N,)`` array of ``"synthetic" | "uncertain" | "real"``."""
        scores = np.asarray(scores, np.float64)
        out = np.where(scores > self.threshold, "synthetic", "real").astype(object)
        if self.uncertain_threshold is not None:
            out[(scores > self.uncertain_threshold) & (scores <= self.threshold)] = "uncertain"
        return out


def calibrate(real_scores: np.ndarray, target_fpr: float, uncertain_fpr: float | None = None,
              level: float = 0.95) -> Calibration:
    """Conformal threshold at ``target_fpr`` on held-out real scores ``(n,)``.

    ``uncertain_fpr`` (> ``target_fpr``) adds a band: real images score above its (lower) threshold
    with probability at most ``uncertain_fpr``, and items in the band are called "uncertain".
    """
    scores = np.asarray(real_scores, np.float64)
    scores = scores[np.isfinite(scores)]
    t = conformal_threshold(scores, target_fpr)
    k = int((scores > t).sum())
    cal = Calibration(threshold=t, target_fpr=float(target_fpr), achieved_fpr=k / len(scores),
                      fpr_ci=clopper_pearson(k, len(scores), level), n_calibration=int(len(scores)))
    if uncertain_fpr is not None:
        if not uncertain_fpr > target_fpr:
            raise CalibrationError(f"the uncertain band's FPR ({uncertain_fpr:g}) must exceed the target FPR ({target_fpr:g})")
        cal.uncertain_threshold, cal.uncertain_fpr = conformal_threshold(scores, uncertain_fpr), float(uncertain_fpr)
    return cal
