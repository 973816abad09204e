"""Grids of configurations run as one batched call, and the phase diagram (MAD Figs. 11-12 style)."""
from __future__ import annotations

import itertools
import math

import torch

from provguard.sim.config import PER_CHAIN, ConfigError, SimConfig
from provguard.sim.engine import Engine, RunResult


def parse_vary(specs: list[str]) -> dict[str, list]:
    """``["filter-recall=0,0.5", "n-synth=100,400"]`` -> ``{"filter_recall": [0.0, 0.5], "n_synth": [100, 400]}``."""
    out: dict[str, list] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or name not in PER_CHAIN:
            raise ConfigError(f"{{vary}} needs NAME=V1,V2,... with NAME one of {', '.join(PER_CHAIN)} (got {spec!r})")
        field = PER_CHAIN[name]
        cast = int if field in ("n_synth", "n_real") else float
        try:
            vals = [cast(v) for v in values.split(",") if v.strip()]
        except ValueError as exc:
            raise ConfigError(f"{{vary}} {name}: {exc}") from None
        if not vals:
            raise ConfigError(f"{{vary}} {name} has no values")
        out[field] = vals
    return out


def grid_points(base: SimConfig, vary: dict[str, list]) -> list[SimConfig]:
    """The cartesian product of ``vary`` applied to ``base`` (first axis slowest)."""
    names = list(vary)
    return [base.replace(**dict(zip(names, combo))) for combo in itertools.product(*(vary[n] for n in names))]


def phase_grid(result: RunResult, vary: dict[str, list]) -> dict:
    """Final-generation ``n_eff / n_real`` (mean over chains) per grid point, shaped like the grid."""
    last = result.raw[-1]
    ratio = []
    for i, cfg in enumerate(result.points):
        sel = result.params.point == i
        n_eff = last.get("n_eff")
        ratio.append(float(n_eff[sel].mean()) / cfg.n_real if n_eff is not None else math.nan)
    shape = [len(v) for v in vary.values()]
    values = torch.tensor(ratio).reshape(shape).tolist() if shape else ratio
    return {"axes": {k.replace("_", "-"): v for k, v in vary.items()}, "ratio": values}


def run_sweep(base: SimConfig, vary: dict[str, list], **run_kwargs) -> tuple[RunResult, dict]:
    """Run every grid point in one batched engine call; return the result and the phase grid."""
    if not vary:
        raise ConfigError("a sweep needs at least one {vary} NAME=V1,V2,...")
    result = Engine(grid_points(base, vary)).run(**run_kwargs)
    return result, phase_grid(result, vary)
