"""Filters between the data pool and training: idealised (key-based) and threshold (detector) filters.

* idealised: drop each synthetic sample with probability ``recall`` and each real one with
  probability ``fpr``, independently of content (a perfect-key watermark filter);
* threshold: a detector scores each sample; the threshold is the conformal ``(1 - fpr)`` order
  statistic of the scores of a held-out real calibration set, and samples scoring above it are dropped.
  With a content score (real-data surprisal) this also truncates the real data's tail; with the
  watermark z-score it drops marked samples and an ``fpr`` share of real ones.

Theory: the idealised filter leaves a synthetic (leak) fraction
``a = (1-r) n_s / ((1-f) n_r + (1-r) n_s)`` (:func:`leak_fraction`).
"""
from __future__ import annotations

import math

import torch

from provguard.sim.rng import ChainStreams


def leak_fraction(recall, fpr, n_real, n_synth):
    """Expected synthetic share of the kept pool after an idealised filter (scalars or tensors)."""
    kept_s = (1 - recall) * n_synth
    kept_r = (1 - fpr) * n_real
    total = kept_r + kept_s
    return kept_s / total if not isinstance(total, (int, float)) or total > 0 else float("nan")


def idealised_keep(streams: ChainStreams, gen: int, tag: str, n_max: int, p_drop: torch.Tensor) -> torch.Tensor:
    """Keep mask ``[C, n_max]``: each row is dropped with per-chain probability ``p_drop [C]``.

    Uses the chain's own uniform stream, so the same rows are dropped whatever the batch, the path
    (stats or samples) or ``n_max``.
    """
    if n_max == 0:
        return torch.ones(len(streams), 0, dtype=torch.bool, device=streams.device)
    if not bool((p_drop > 0).any()):
        return torch.ones(len(streams), n_max, dtype=torch.bool, device=streams.device)
    u = streams.uniform(gen, f"filter/{tag}", (n_max,))
    return u >= p_drop.to(torch.float64)[:, None]


def conformal_threshold(cal_scores: torch.Tensor, fpr: torch.Tensor) -> torch.Tensor:
    """Per-chain thresholds ``[C]``: the ``ceil((n+1)(1-fpr))``-th smallest of ``n`` real calibration scores.

    A real sample scoring strictly above it is a false positive with probability <= ``fpr`` (exact
    finite-sample conformal guarantee); ``fpr`` too small for ``n`` gives ``+inf`` (nothing dropped).
    """
    s = torch.sort(cal_scores.to(torch.float64).reshape(-1)).values
    n = s.numel()
    rank = torch.ceil((n + 1) * (1.0 - fpr.to(torch.float64))).to(torch.int64)  # 1-based
    thr = s[(rank - 1).clamp(0, n - 1)]
    return torch.where(rank > n, torch.full_like(thr, math.inf), thr)


def threshold_keep(scores: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Keep mask ``[C, N]``: scores ``[C, N]`` at or below the chain's threshold ``[C]``."""
    return scores <= thresholds[:, None]
