"""What every model family provides to the loop engine, and the data containers it exchanges.

A family is a batched model class: a *model* holds one parameter set per chain on a leading axis
``C``; ``sample`` draws ``[C, n_max, ...]`` outputs (rows beyond a chain's own count are ignored by
the masks); ``fit`` refits one model per chain on a list of masked sample groups.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import torch

from provguard.errors import BadArgument
from provguard.sim.rng import ChainStreams


@dataclass
class Samples:
    """A group of training samples: ``x [C, N, ...]``, ``mask [C, N]`` (True = in the pool), ``synthetic`` flag."""

    x: torch.Tensor
    mask: torch.Tensor
    synthetic: bool
    labels: torch.Tensor | None = None  # [C, N] class labels (image family)

    @property
    def count(self) -> torch.Tensor:
        """Kept samples per chain, ``[C]`` float64."""
        return self.mask.to(torch.float64).sum(1)


def take_model(model: Any, index: torch.Tensor) -> Any:
    """The chains ``index`` of a batched model: a NamedTuple whose fields are ``[C, ...]`` tensors, per-chain
    lists (one generator per chain), a chain count (``int``) or ``None`` (kept)."""
    return type(model)(*(_take(t, index) for t in model))


def _take(field: Any, index: torch.Tensor) -> Any:
    if field is None or isinstance(field, torch.Tensor):
        return None if field is None else field[index]
    if isinstance(field, (list, tuple)):
        return type(field)(field[i] for i in index.tolist())
    if isinstance(field, int):
        return int(index.numel())
    raise TypeError(f"cannot select chains of a model field of type {type(field).__name__}")


def count_mask(n: torch.Tensor, n_max: int) -> torch.Tensor:
    """``[C, n_max]`` mask of the first ``n[c]`` rows of each chain."""
    return torch.arange(n_max, device=n.device)[None, :] < n[:, None]


class Family(abc.ABC):
    """Interface of a model family (see module docstring). ``primary`` names the distance used for ``n_eff``."""

    name: str = ""
    primary: str = ""
    # capabilities the engine reads (declared here, overridden by the families that differ)
    has_stats_path: bool = False    # draw_stats / fit_stats: the exact sufficient-statistic fast path
    continuous: bool = True         # real-valued samples: can carry a vector watermark, probe features
    has_density: bool = False       # surprisal(): an exact real density (--filter content)
    calibrate_with_chains: bool = True  # n_eff's constant from real-only fits (False: too costly, e.g. images)
    max_calibration_chains: int = 1 << 30  # cap on those fits' chains
    max_chains_per_chunk: int | None = None  # chains simulated together (None: as memory allows)
    probe_normalize: bool = False  # --filter probe: L2-normalise the probe features (CLIP-style embeddings)

    def __init__(self, cfg, device: torch.device):
        self.cfg = cfg
        self.device = device

    @abc.abstractmethod
    def real_model(self, n_chains: int) -> Any:
        """The true (real-data) distribution, repeated over ``n_chains``."""

    @abc.abstractmethod
    def sample(self, model: Any, n_max: int, lam: torch.Tensor, streams: ChainStreams, gen: int, tag: str) -> Samples:
        """``n_max`` outputs per chain with sampling bias ``lam [C]``; mask all True."""

    @abc.abstractmethod
    def fit(self, groups: list[Samples], prev: Any, streams: ChainStreams, gen: int) -> Any:
        """Refit one model per chain on the union of ``groups``."""

    @abc.abstractmethod
    def metrics(self, model: Any, ctx: "EvalContext") -> dict[str, torch.Tensor]:
        """Per-chain metrics computed for every chain, ``{name: [C]}`` (closed form where the family has one)."""

    def sample_metrics(self, model: Any, ctx: "EvalContext") -> dict[str, torch.Tensor]:
        """Sample-based metrics (FD, k-NN, KID on ``ctx.n_eval`` outputs), ``{name: [C]}``.

        The engine calls this on a subsample of chains only (``--sample-metric-chains``); families
        without such metrics return ``{}``.
        """
        return {}

    def real_moments(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Exact real mean ``[d]`` and covariance ``[d, d]``, or ``None`` where there is no closed form
        (the engine then estimates them from :meth:`calibration_samples`)."""
        return None

    def calibration_samples(self, n: int, seed: int) -> torch.Tensor:
        """``n`` held-out real samples ``[n, ...]``: one pseudo-chain of the real model on its own stream."""
        streams = ChainStreams(seed, torch.zeros(1, dtype=torch.int64), self.device)
        ones = torch.ones(1, dtype=torch.float64, device=self.device)
        return self.sample(self.real_model(1), n, ones, streams, 0, "calibration").x[0]

    def probe_features(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``[C, N, D]`` float64 a linear-probe filter sees for samples ``x [C, N, ...]`` (raw vectors)."""
        return x.reshape(x.shape[0], x.shape[1], -1).to(torch.float64)

    def surprisal(self, x: torch.Tensor) -> torch.Tensor:
        """``-log p_real(x)`` up to a constant, ``[C, N]`` (content-detector score)."""
        raise BadArgument(f"the {self.name} family has no real density, so {{filter_kind}} content cannot score "
                          "it: use {filter_kind} idealised or {filter_kind} watermark", "filter_kind")


@dataclass
class EvalContext:
    """What metric code needs: the real model, streams, generation, sampling bias ``lam [C]``, eval
    sample size, k of the k-NN metrics, and the watermark model (or None)."""

    real: Any
    streams: ChainStreams
    gen: int
    lam: torch.Tensor
    n_eval: int
    k: int
    mark: Any = None

    def take(self, index: torch.Tensor, real: Any) -> "EvalContext":
        """The context of the chains ``index`` (``real``: the real model of those chains)."""
        return EvalContext(real, self.streams.subset(index), self.gen, self.lam[index], self.n_eval, self.k, self.mark)
