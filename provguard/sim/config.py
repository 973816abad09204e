"""Simulation settings and their validation (every impossible configuration fails before running).

A :class:`SimConfig` describes one experiment; a sweep is a list of configs that differ only in the
per-chain parameters :data:`PER_CHAIN` (they become tensors on the chain axis of one batched run).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from scipy import stats as _stats

from provguard.errors import BadArgument
from provguard.sim.families import families_with, list_families

LOOPS = ("fresh", "synthetic", "augment")
MODELS = tuple(list_families())
FILTERS = ("none", "idealised", "content", "watermark", "probe")
#: detector filters: recall is an outcome of the detector, and only --filter-fpr is a setting
DETECTOR_FILTERS = ("content", "watermark", "probe")
ESTIMATORS = ("unbiased", "mle")
PATHS = ("auto", "stats", "samples")
DEFAULT_DIM = {"gaussian": 8, "gmm": 2, "categorical": 1000, "ddpm": 784}
#: fields that may differ between the points of one batched sweep (CLI spelling -> field name)
PER_CHAIN = {"filter-recall": "filter_recall", "filter-fpr": "filter_fpr", "n-synth": "n_synth",
             "n-real": "n_real", "lambda": "lam", "watermark-strength": "watermark_strength"}


class ConfigError(BadArgument):
    """An impossible or unsafe simulation setting; the message says which option to change."""


@dataclass
class SimConfig:
    """One self-consuming-loop experiment.

    Sizes are sample counts per generation; ``lam`` is MAD's sampling bias (Gaussian/GMM: sample
    ``N(mu, lam * Sigma)``; categorical: temperature, ``p**(1/lam)``; ddpm: classifier-free guidance
    ``w = 1/lam - 1``). ``memory`` is how many generations of added data the training pool keeps
    (1 = replace; ``accumulate`` keeps all).
    """

    loop: str = "fresh"
    model: str = "gaussian"
    dim: int | None = None
    n_real: int = 200
    n_synth: int = 800
    generations: int = 20
    lam: float = 1.0
    estimator: str = "unbiased"
    filter_kind: str | None = None  # None: idealised when a recall/FPR is given, else none
    filter_recall: float = 0.0
    filter_fpr: float = 0.0
    watermark_strength: float = 0.0
    accumulate: bool = False
    memory: int = 1
    chains: int = 16
    seed: int = 0
    device: str = "auto"
    chunk: int | None = None
    path: str = "auto"
    k: int = 5
    eval_samples: int = 256
    metrics: str = "all"  # "all" or "fast" (closed-form metrics only)
    sample_metric_chains: int = 64  # replicates (per sweep point) that also get the sample-based metrics
    probe_train: int = 512  # --filter probe: samples per class the probe is fitted on, per chain and generation
    probe_calibration: int = 2000  # --filter probe: held-out real samples per chain the threshold is set on
    gmm_components: int = 8
    gmm_rare_weight: float = 0.02
    gmm_em_iters: int = 40
    zipf_exponent: float = 1.1
    ddpm_train_steps: int = 300
    ddpm_batch: int = 64
    ddpm_sample_steps: int = 25
    calibration_chains: int = 256
    mem_budget_gb: float = 2.0
    extra: dict = field(default_factory=dict)

    @property
    def d(self) -> int:
        """Resolved data dimension (vocabulary size for the categorical family)."""
        return DEFAULT_DIM[self.model] if self.dim is None else int(self.dim)

    @property
    def filter(self) -> str:
        """Resolved filter kind."""
        if self.filter_kind is not None:
            return self.filter_kind
        return "idealised" if (self.filter_recall > 0 or self.filter_fpr > 0) else "none"

    @property
    def pool_memory(self) -> int:
        """Generations of added data kept in the training pool."""
        return self.generations if self.accumulate else max(1, int(self.memory))

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out.update(dim=self.d, filter_kind=self.filter, memory=self.pool_memory)
        return out

    def replace(self, **changes) -> "SimConfig":
        return dataclasses.replace(self, **changes)


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _min_binomial(n: int, keep: float, tail: float = 1e-6) -> int:
    """A count that ``Binomial(n, keep)`` falls below with probability < ``tail``."""
    if n <= 0 or keep <= 0:
        return 0
    return int(_stats.binom.ppf(tail, n, keep))


def min_pool_size(cfg: SimConfig) -> int:
    """Smallest training-pool size (after filtering) any generation can see, up to a 1e-6 tail."""
    keep_real, keep_synth = 1.0 - cfg.filter_fpr, 1.0 - cfg.filter_recall
    if cfg.filter in DETECTOR_FILTERS:  # recall is an outcome: assume the worst (all dropped)
        keep_synth = 0.0
    first = _min_binomial(cfg.n_real, keep_real)
    synth = _min_binomial(cfg.n_synth, keep_synth)
    if cfg.loop == "synthetic":
        later = synth + (first if cfg.pool_memory > 1 else 0)
    else:
        later = first + synth
    return min(first, later)


#: chains whose sample-based metrics are computed in one batch (bounds the k-NN distance matrices)
SAMPLE_METRIC_BATCH = 64


def sample_metric_bytes(cfg: SimConfig) -> int:
    """Working memory in bytes of the sample-based metrics of one chain (k-NN distance matrices, samples)."""
    if cfg.metrics == "fast" or cfg.sample_metric_chains == 0:
        return 0
    return int(3 * cfg.eval_samples ** 2 * 8 + 2 * cfg.eval_samples * cfg.d * 8)


def estimate_bytes_per_chain(cfg: SimConfig, stats_path: bool) -> int:
    """Peak working memory of one chain's loop in bytes (float64), used to size chunks.

    The sample-based metrics run on a subsample in batches of :data:`SAMPLE_METRIC_BATCH` chains, so
    they are budgeted once per chunk (:func:`chunk_size`), not per chain.
    """
    d = cfg.d
    pool = cfg.pool_memory * (cfg.n_real + cfg.n_synth) + cfg.n_real
    if cfg.model == "categorical":
        data = pool * 8 + 4 * d * 8
    elif cfg.model == "ddpm":
        data = 0  # neural chains are run one at a time; images live on the host
    elif stats_path:
        data = (cfg.pool_memory + 2) * (d * d + d) * 8 + 16 * 8  # statistics, a few [C] vectors
    else:
        data = pool * d * 8 * 3 + (cfg.gmm_components * pool * 8 * 3 if cfg.model == "gmm" else 0)
    return int(data + 8 * d * d * 8)


def _either(names: list[str]) -> str:
    """``a, b or c``."""
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def validate(cfg: SimConfig) -> None:
    """Raise :class:`ConfigError` naming the option to change, for any impossible configuration."""
    _need(cfg.loop in LOOPS, f"{{loop}} must be one of {', '.join(LOOPS)} (got {cfg.loop!r})")
    _need(cfg.model in MODELS, f"{{model}} must be one of {', '.join(MODELS)} (got {cfg.model!r})")
    _need(cfg.filter in FILTERS, f"{{filter_kind}} must be one of {', '.join(FILTERS)} (got {cfg.filter!r})")
    _need(cfg.estimator in ESTIMATORS, f"{{estimator}} must be one of {', '.join(ESTIMATORS)}")
    _need(cfg.path in PATHS, f"{{path}} must be one of {', '.join(PATHS)}")
    for name, value in (("filter_recall", cfg.filter_recall), ("filter_fpr", cfg.filter_fpr)):
        _need(math.isfinite(value) and 0.0 <= value <= 1.0, f"{{{name}}} must be in [0, 1] (got {value})")
    _need(cfg.generations >= 1, f"{{generations}} must be >= 1 (got {cfg.generations})")
    _need(cfg.chains >= 1, f"{{chains}} must be >= 1 (got {cfg.chains})")
    _need(cfg.n_real >= 0 and cfg.n_synth >= 0, "{n_real} and {n_synth} must be >= 0")
    _need(cfg.n_real >= 1, "{n_real} must be >= 1: generation 1 trains on real data only")
    _need(math.isfinite(cfg.lam) and cfg.lam > 0, f"{{lam}} must be > 0 (got {cfg.lam})")
    _need(cfg.d >= 1, f"{{dim}} must be >= 1 (got {cfg.d})")
    _need(cfg.k >= 1 and cfg.eval_samples > cfg.k + 1,
          f"{{eval_samples}} ({cfg.eval_samples}) must exceed k+1 = {cfg.k + 1}")
    _need(cfg.watermark_strength >= 0, "{watermark_strength} must be >= 0")
    _need(cfg.chunk is None or cfg.chunk >= 1, "{chunk} must be >= 1")
    _need(cfg.sample_metric_chains >= 0, f"{{sample_metric_chains}} must be >= 0 (got {cfg.sample_metric_chains})")
    if cfg.loop == "synthetic":
        _need(cfg.n_synth > 0, "a fully synthetic loop needs {n_synth} > 0 (it trains only on synthetic "
                               "data after generation 1); use {loop} fresh or {loop} augment to train on real data")
        _need(cfg.filter not in ("idealised",) or cfg.filter_recall < 1.0 or cfg.pool_memory > 1,
              "{filter_recall} 1 drops every synthetic sample, so a fully synthetic loop has no training data "
              "from generation 2 on; lower {filter_recall} or use {accumulate}")
    continuous = families_with("continuous")
    if cfg.filter == "content":
        _need(cfg.model in families_with("has_density"), "{filter_kind} content needs a continuous family with a "
              f"real density ({{model}} {_either(families_with('has_density'))})")
        _need(cfg.filter_recall == 0, "a content detector's recall is an outcome, not a setting: drop "
                                      "{filter_recall} and set {filter_fpr}")
        _need(0 < cfg.filter_fpr < 1, "{filter_kind} content needs {filter_fpr} in (0, 1)")
    if cfg.filter == "watermark":
        _need(cfg.model in continuous, f"{{filter_kind}} watermark needs a continuous family ({', '.join(continuous)})")
        _need(cfg.watermark_strength > 0, "{filter_kind} watermark needs {watermark_strength} > 0 (the mark "
                                          "the detector looks for)")
        _need(cfg.filter_recall == 0, "a watermark detector's recall is an outcome of "
                                      "{watermark_strength}: drop {filter_recall} and set {filter_fpr}")
        _need(0 < cfg.filter_fpr < 1, "{filter_kind} watermark needs {filter_fpr} in (0, 1), e.g. 0.001")
    if cfg.watermark_strength > 0:
        _need(cfg.model in continuous, f"{{watermark_strength}} needs a continuous family ({', '.join(continuous)})")
    if cfg.filter == "probe":
        _need(cfg.model in continuous, f"{{filter_kind}} probe needs vectors or images ({{model}} {_either(continuous)})")
        _need(cfg.filter_recall == 0, "a probe's recall is an outcome, not a setting: drop {filter_recall} and "
                                      "set {filter_fpr}")
        _need(0 < cfg.filter_fpr < 1, "{filter_kind} probe needs {filter_fpr} in (0, 1), e.g. 0.01")
        _need(cfg.probe_train >= 2, f"{{probe_train}} must be >= 2 (got {cfg.probe_train})")
        least = math.ceil(1.0 / cfg.filter_fpr - 1.0 - 1e-9)
        _need(cfg.probe_calibration >= least,
              f"{{filter_fpr}} {cfg.filter_fpr:g} needs at least {least} held-out real samples to calibrate the "
              f"probe (conformal threshold); raise {{probe_calibration}} (got {cfg.probe_calibration}) "
              f"or {{filter_fpr}}")
    if cfg.model in ("gaussian", "gmm"):
        # A fit on n <= d samples is rank-deficient but valid (finite W2, PSD covariance); only a pool
        # of fewer than 2 samples has no covariance at all.
        smallest = min_pool_size(cfg)
        _need(smallest >= 2,
              f"a {cfg.model} fit needs at least 2 training samples per generation, but this configuration can "
              f"leave only {smallest} after filtering (n_real={cfg.n_real}, n_synth={cfg.n_synth}, "
              f"recall={cfg.filter_recall}, FPR={cfg.filter_fpr}); raise {{n_real}}/{{n_synth}} or lower the "
              f"filter rates")
    if cfg.model == "gmm":
        _need(cfg.gmm_components >= 2 and 0 < cfg.gmm_rare_weight * 2 < 1,
              "{gmm_components} must be >= 2 and the rare-mode weight in (0, 0.5)")
    if cfg.model == "categorical":
        _need(cfg.d >= 2, "the categorical family needs a vocabulary ({dim}) of at least 2 tokens")
    if cfg.model == "ddpm":
        _need(cfg.dim in (None, 784), "the ddpm family works on 28x28 Fashion-MNIST images: omit {dim}")
        _need(cfg.n_real <= 60000, "{n_real} is at most 60000 (the Fashion-MNIST training split)")
    per_chain = estimate_bytes_per_chain(cfg, stats_path=cfg.path == "stats") + sample_metric_bytes(cfg)
    budget = cfg.mem_budget_gb * 2 ** 30
    _need(per_chain <= budget,
          f"one chain needs about {per_chain / 2 ** 30:.1f} GiB (> the {cfg.mem_budget_gb:g} GiB memory budget); "
          f"lower {{n_real}}/{{n_synth}}/{{dim}}/{{eval_samples}}, use {{metrics}} fast, or raise {{mem_budget_gb}}")


def chunk_size(cfg: SimConfig, n_chains: int, stats_path: bool) -> int:
    """Chains per chunk: ``cfg.chunk`` if given, else as many as fit the memory budget."""
    if cfg.chunk is not None:
        return min(cfg.chunk, n_chains)
    per = max(1, estimate_bytes_per_chain(cfg, stats_path))
    budget = cfg.mem_budget_gb * 2 ** 30 - SAMPLE_METRIC_BATCH * sample_metric_bytes(cfg)
    return max(1, min(n_chains, int(max(budget, per) // per)))
