"""provguard.sim: a batched simulator of self-consuming (MAD) training loops with filters and watermarks.

Public API::

    from provguard.sim import SimConfig, run, run_sweep, Engine, DDPMGenerator, FeatureExtractor
    result = run(SimConfig(loop="fresh", filter_recall=0.9))
    result.summary()  # per-generation {"t", "metrics": {name: {"mean", "std"}}, "leak_fraction", ...}

Modules: ``config`` (settings, validation), ``rng`` (per-chain counter-based streams), ``families``
(gaussian, gmm, categorical, ddpm), ``loops`` (pool composition), ``filters``, ``watermark`` (artifact
model), ``metrics``, ``engine``, ``sweep``, ``validate`` (exact laws), ``neural``/``nets``/``features``
(image generator and frozen feature extractor), ``report`` (JSON/CSV/plots).
"""
from __future__ import annotations

from provguard.lazy import lazy_exports

# exported lazily (PEP 562): ``provguard.sim.families`` (the registry the CLI builds its choices from)
# imports without torch
_EXPORTS = {"ConfigError": "provguard.sim.config", "SimConfig": "provguard.sim.config",
            "Engine": "provguard.sim.engine", "RunResult": "provguard.sim.engine", "run": "provguard.sim.engine",
            "run_sweep": "provguard.sim.sweep", "DDPMGenerator": "provguard.sim.neural",
            "FeatureExtractor": "provguard.sim.features"}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
