"""Exact null statistics for green-token counts, and the windowed (WinMax-style) span search.

Under "not watermarked" each scored token is green with probability ``gamma`` independently, so the
green count ``G`` of ``T`` scored tokens is Binomial(T, gamma). The one-sided p-value is the exact
tail ``P(X >= G)`` (scipy's regularised incomplete beta, accurate far below 1e-300), never the
normal approximation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom


def binomial_p_value(green, tokens, gamma: float) -> np.ndarray:
    """Exact one-sided p-value ``P(Binomial(tokens, gamma) >= green)``, elementwise; 1.0 where tokens == 0."""
    green = np.asarray(green, dtype=np.int64)
    tokens = np.asarray(tokens, dtype=np.int64)
    p = binom.sf(green - 1, tokens, gamma)
    return np.where(tokens > 0, p, 1.0)


def z_score(green, tokens, gamma: float) -> np.ndarray:
    """KGW's ``(G - gamma T) / sqrt(T gamma (1 - gamma))``, elementwise; NaN where tokens == 0."""
    green = np.asarray(green, dtype=np.float64)
    tokens = np.asarray(tokens, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tokens > 0, (green - gamma * tokens) / np.sqrt(tokens * gamma * (1 - gamma)), np.nan)


@dataclass(frozen=True)
class Window:
    """The most significant window of a green/red sequence.

    ``start``/``end``: half-open range of scored-token indices; ``p_value`` is Bonferroni-corrected for
    the ``windows_searched`` windows; ``p_value_raw`` is the best window's own binomial tail.
    """

    start: int
    end: int
    green: int
    p_value: float
    p_value_raw: float
    windows_searched: int

    @property
    def tokens(self) -> int:
        return self.end - self.start


def window_grid(length: int, min_window: int = 25, growth: float = math.sqrt(2.0),
                stride_fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Windows searched over a sequence of ``length`` scored tokens: ``(starts, sizes)``, each ``(W,)``.

    Sizes grow geometrically from ``min_window`` (by ``growth``) and always include the whole
    sequence; each size slides with stride ``max(1, stride_fraction * size)`` and its last window
    ends at the sequence end. A sequence shorter than ``min_window`` has the single whole window.
    """
    sizes, size = [], float(min_window)
    while round(size) < length:
        sizes.append(int(round(size)))
        size *= growth
    sizes.append(length)
    starts_all, sizes_all = [], []
    for s in sorted(set(sizes)):
        stride = max(1, int(stride_fraction * s))
        starts = np.arange(0, length - s + 1, stride)
        if starts[-1] != length - s:
            starts = np.append(starts, length - s)
        starts_all.append(starts)
        sizes_all.append(np.full(len(starts), s))
    return np.concatenate(starts_all), np.concatenate(sizes_all)


def best_window(green: np.ndarray, gamma: float, min_window: int = 25) -> Window | None:
    """WinMax-style search: the window of ``green`` (``(T,)`` bool, scored tokens in text order) with
    the smallest binomial p-value, corrected for the number of windows searched (Bonferroni, valid
    for any dependence between windows). ``None`` for an empty sequence."""
    length = len(green)
    if length == 0:
        return None
    starts, sizes = window_grid(length, min_window)
    cumulative = np.concatenate([[0], np.cumsum(green, dtype=np.int64)])
    counts = cumulative[starts + sizes] - cumulative[starts]
    p = binomial_p_value(counts, sizes, gamma)
    best = int(np.lexsort((-sizes, p))[0])  # smallest p; among ties the longest window
    return Window(start=int(starts[best]), end=int(starts[best] + sizes[best]), green=int(counts[best]),
                  p_value=float(min(1.0, p[best] * len(starts))), p_value_raw=float(p[best]),
                  windows_searched=len(starts))
