"""How good must a filter be? The smallest recall (at a given FPR) that meets a collapse criterion.

A criterion compares a metric at *steady state* (each replicate's average over the last half of the
generations) with the same loop trained on real data only (``n_synth = 0``, no filter), run in the
same batch with common random numbers:

* ``n_eff`` (default): ``n_eff / n_eff(real-only) = E[D_real-only] / E[D] >= tolerance`` with ``D`` the
  family's primary distance (``w2sq``, ``l2sq``); e.g. tolerance 0.9 = "at least 90% of the real data's
  worth";
* a distance (``w2sq``, ``l2sq``, ``mean_drift``): ``E[real-only] / E[metric] >= tolerance``;
* a diversity or quality score (``trace_ratio``, ``gini_simpson``, ``entropy``, ``support``):
  ``E[metric] / E[real-only] >= tolerance``;
* ``leak_fraction``: the kept pool's synthetic share (ratio of means) ``<= tolerance`` (absolute).

The margin (value minus tolerance, or tolerance minus leak) grows with recall. Each round runs a grid
of recalls inside the current bracket as one batched engine call (the grid points are sweep points on
the chain axis); the bracket shrinks to the first sign change. The answer is the linear interpolation
of the margin's zero in the last bracket, and its Monte Carlo error is the margin's standard error
there (delta method over replicates, which pairs each filtered chain with its real-only twin) divided
by the margin's slope, measured over the bracket of the previous round.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from provguard.sim.config import ConfigError, SimConfig
from provguard.sim.engine import Engine

#: metric -> how it is compared with the real-only loop
DIRECTIONS = {"n_eff": "primary", "w2sq": "lower", "l2sq": "lower", "mean_drift": "lower",
              "trace_ratio": "higher", "gini_simpson": "higher", "entropy": "higher", "support": "higher",
              "leak_fraction": "leak"}


@dataclass
class Evaluation:
    """The criterion at one recall: ``value`` (relative to real-only, or the leak share), its SE, ``margin``."""

    recall: float
    value: float
    se: float
    margin: float


@dataclass
class Answer:
    """Result of :func:`required_recall` (``required_recall`` None when the target is unreachable)."""

    required_recall: float | None
    mc_error: float | None
    reachable: bool
    criterion: str
    best_value: float
    evaluations: list[Evaluation] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"required_recall": self.required_recall, "mc_error": self.mc_error, "reachable": self.reachable,
                "criterion": self.criterion, "best_reachable_value": self.best_value,
                "evaluations": [vars(e) for e in sorted(self.evaluations, key=lambda e: e.recall)]}


def describe(metric: str, tolerance: float, cfg: SimConfig) -> str:
    """The criterion in words."""
    kind = DIRECTIONS[metric]
    if kind == "leak":
        return f"steady-state leak fraction <= {tolerance:g} at FPR {cfg.filter_fpr:g}"
    if kind == "primary":
        return f"steady-state n_eff >= {tolerance:g} x the real-only loop's (n_real={cfg.n_real}) at FPR {cfg.filter_fpr:g}"
    rel = "real-only / metric" if kind == "lower" else "metric / real-only"
    return f"steady-state {metric} with {rel} >= {tolerance:g} at FPR {cfg.filter_fpr:g}"


def _ratio(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """``mean(x) / mean(y)`` over paired replicates ``[R]`` and its delta-method standard error."""
    mx, my = float(x.mean()), float(y.mean())
    value = mx / my
    z = (x - value * y) / my
    return value, float(z.std() / math.sqrt(x.numel())) if x.numel() > 1 else math.inf


def _steady(result, point: int, name: str) -> torch.Tensor:
    """Per-replicate average ``[R]`` of ``raw[t][name]`` over the last half of the generations."""
    sel = result.params.point.cpu() == point
    gens = result.raw[len(result.raw) // 2:]
    return torch.stack([g[name][sel] for g in gens]).mean(0)


def _evaluate(result, point: int, ref: int, recall: float, metric: str, tolerance: float, primary: str) -> Evaluation:
    kind = DIRECTIONS[metric]
    if kind == "leak":
        value, se = _ratio(_steady(result, point, "_kept_synth"),
                           _steady(result, point, "_kept_synth") + _steady(result, point, "_kept_real"))
        return Evaluation(recall, value, se, tolerance - value)
    name = primary if kind == "primary" else metric
    if name not in result.raw[0]:
        raise ConfigError(f"{{metric}} {metric}: the {result.points[0].model} family has no closed-form {name}")
    x, y = _steady(result, point, name), _steady(result, ref, name)
    value, se = _ratio(y, x) if kind in ("primary", "lower") else _ratio(x, y)
    return Evaluation(recall, value, se, value - tolerance)


def _run_grid(base: SimConfig, recalls: list[float], metric: str, tolerance: float, progress) -> list[Evaluation]:
    reference = base.replace(n_synth=0, filter_recall=0.0, filter_fpr=0.0, filter_kind="idealised")
    points = [base.replace(filter_recall=float(r), filter_kind="idealised") for r in recalls] + [reference]
    engine = Engine(points)
    result = engine.run(progress=progress)
    ref = len(points) - 1
    return [_evaluate(result, i, ref, r, metric, tolerance, engine.family.primary) for i, r in enumerate(recalls)]


def required_recall(base: SimConfig, metric: str = "n_eff", tolerance: float = 0.9, rounds: int = 4,
                    grid: int = 5, progress=None) -> Answer:
    """Smallest recall at ``base.filter_fpr`` meeting the criterion (see module docstring).

    ``rounds`` batched runs of ``grid`` recalls each (the first over [0, 1], ends included); the
    bracket shrinks by ``grid + 1`` per round. ``progress(n)`` is called per finished generation.
    """
    if metric not in DIRECTIONS:
        raise ConfigError(f"{{metric}} must be one of {', '.join(DIRECTIONS)} (got {metric!r})")
    if not (math.isfinite(tolerance) and tolerance > 0) or (DIRECTIONS[metric] == "leak" and tolerance >= 1):
        raise ConfigError(f"{{tolerance}} must be > 0 (and < 1 for leak_fraction), got {tolerance}")
    if rounds < 1 or grid < 2:
        raise ConfigError("{rounds} must be >= 1 and {grid} >= 2")
    if base.loop == "synthetic":
        raise ConfigError("required-recall compares with a real-only loop: use {loop} fresh or augment")
    if base.generations < 2:
        raise ConfigError("{generations} must be >= 2: the steady state is the last half of the generations")
    criterion = describe(metric, tolerance, base)
    evals = _run_grid(base, [i / (grid - 1) for i in range(grid)], metric, tolerance, progress)
    seen = list(evals)
    best = evals[-1]
    if best.margin < 0:
        return Answer(None, None, False, criterion, best.value, seen)
    if evals[0].margin >= 0:
        return Answer(0.0, 0.0, True, criterion, best.value, seen)
    lo, hi = _bracket(evals)
    slope_pair = (lo, hi)
    for _ in range(rounds - 1):
        step = (hi.recall - lo.recall) / (grid + 1)
        inner = _run_grid(base, [lo.recall + step * (i + 1) for i in range(grid)], metric, tolerance, progress)
        seen += inner
        slope_pair = (lo, hi)
        lo, hi = _bracket([lo, *inner, hi])
    r = lo.recall + (0.0 - lo.margin) * (hi.recall - lo.recall) / (hi.margin - lo.margin)
    a, b = slope_pair
    slope = (b.margin - a.margin) / (b.recall - a.recall)
    w = (r - lo.recall) / (hi.recall - lo.recall)
    se = (1 - w) * lo.se + w * hi.se
    return Answer(min(1.0, max(0.0, r)), se / abs(slope) if slope else math.inf, True, criterion, best.value, seen)


def _bracket(evals: list[Evaluation]) -> tuple[Evaluation, Evaluation]:
    """The first adjacent pair with margin < 0 then >= 0 (recalls ascending)."""
    for a, b in zip(evals, evals[1:]):
        if a.margin < 0 <= b.margin:
            return a, b
    return evals[-2], evals[-1]  # noise can make the grid non-monotone; the last pair still brackets
