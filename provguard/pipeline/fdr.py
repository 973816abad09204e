"""False discoveries across a run: a step-up cutoff for the run's watermark p-values.

A per-item threshold does not survive web scale: at ``p <= 1e-3`` a run of ten million real photos
rejects about ten thousand of them. With an FDR level ``q`` the Benjamini-Hochberg step-up procedure
picks the cutoff from the run's own p-values so that, among items rejected on watermark evidence, the
expected fraction of false ones is at most ``q`` (Benjamini & Hochberg 1995). It needs independent or
positively dependent (PRDS) p-values; conformal p-values computed against one shared calibration
table are PRDS (Bates et al., "Testing for outliers with conformal p-values", Ann. Statist. 2023).
Benjamini-Yekutieli (2001) holds under any dependence, at the price of dividing ``q`` by
``H_m = 1 + 1/2 + ... + 1/m`` (about ``ln m + 0.58``).

Every watermark evidence that carries a p-value is one test (an item checked for two marks is two
tests). A per-item cap (the run's ``--target-fpr``) is honoured by setting p-values above it to 1
before the step-up, which keeps the guarantee (those are still valid p-values).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import numpy as np

from provguard.detectors.evidence import TIER_WATERMARK, Evidence
from provguard.errors import ProvguardError

METHODS = ("bh", "by")
#: default FDR level: a real SD or provguard mark reads at p far below what this needs (README)
DEFAULT_FDR = 0.01


@dataclass(frozen=True)
class FdrCutoff:
    """The outcome of the step-up procedure over one run.

    ``tests``: p-values considered (m). ``rejected``: how many the procedure rejects (k).
    ``cutoff``: a p-value threshold that rejects exactly those (``p <= cutoff``), always in (0, 1).
    ``expected_false``: ``tests * cutoff``, an upper bound on the expected number of false
    discoveries (it equals ``q * max(k, 1)`` for BH without a cap: at most ``q`` when nothing is found).
    """

    method: str
    q: float
    tests: int
    rejected: int
    cutoff: float
    cap: float | None
    expected_false: float

    def to_dict(self) -> dict:
        return asdict(self)


def harmonic(m: int) -> float:
    """``H_m = sum_{i<=m} 1/i`` (exact below 10^5, asymptotic expansion above)."""
    if m < 100_000:
        return float(np.sum(1.0 / np.arange(1, m + 1))) if m > 0 else 0.0
    return math.log(m) + 0.5772156649015329 + 1 / (2 * m) - 1 / (12 * m * m)


def check_fdr(q: float, method: str = "bh") -> None:
    """Raise :class:`ProvguardError` naming the parameter when ``q`` or ``method`` is unusable."""
    if method not in METHODS:
        raise ProvguardError(f"fdr_method must be one of {METHODS}, got {method!r}")
    if not (isinstance(q, (int, float)) and 0 < q < 1):
        raise ProvguardError(f"fdr must be in (0, 1), e.g. 0.01 for at most 1% false rejections; got {q!r}")


def step_up(p_values: Sequence[float] | np.ndarray, q: float, method: str = "bh", cap: float | None = None) -> FdrCutoff:
    """Benjamini-Hochberg (``"bh"``) or Benjamini-Yekutieli (``"by"``) at level ``q`` over ``p_values``.

    Rejects the ``k`` smallest p-values, ``k`` the largest with ``p_(k) <= k q' / m`` (``q' = q`` for
    BH, ``q / H_m`` for BY); p-values above ``cap`` are treated as 1 first.
    """
    check_fdr(q, method)
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ProvguardError("p-values must be numbers in [0, 1]")
    m = len(p)
    if m == 0:
        return FdrCutoff(method, q, 0, 0, min(q, cap) if cap else q, cap, 0.0)
    level = q / harmonic(m) if method == "by" else q
    if cap is not None:
        p = np.where(p <= cap, p, 1.0)
    passing = np.nonzero(np.sort(p) <= level * np.arange(1, m + 1) / m)[0]
    k = int(passing[-1]) + 1 if len(passing) else 0
    cutoff = max(k, 1) * level / m
    if cap is not None:
        cutoff = min(cutoff, cap)
    return FdrCutoff(method, q, m, k, cutoff, cap, m * cutoff)


def watermark_p_values(evidence_rows: Iterable[Sequence[Evidence | dict]]) -> list[float]:
    """Every watermark p-value in a run (one per watermark evidence that has one), from
    :class:`~provguard.detectors.evidence.Evidence` objects or their dicts."""
    fields = ((e.get("tier"), e.get("p_value")) if isinstance(e, dict) else (e.tier, e.p_value)
              for row in evidence_rows for e in row)
    return [float(p) for tier, p in fields if tier == TIER_WATERMARK and p is not None]
