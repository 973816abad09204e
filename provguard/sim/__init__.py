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
from provguard.sim.config import ConfigError, SimConfig
from provguard.sim.engine import Engine, RunResult, run
from provguard.sim.sweep import run_sweep


def __getattr__(name):  # torch.nn-heavy image tools load on first use
    if name == "DDPMGenerator":
        from provguard.sim.neural import DDPMGenerator

        return DDPMGenerator
    if name == "FeatureExtractor":
        from provguard.sim.features import FeatureExtractor

        return FeatureExtractor
    raise AttributeError(name)


__all__ = ["ConfigError", "SimConfig", "Engine", "RunResult", "run", "run_sweep", "DDPMGenerator", "FeatureExtractor"]
