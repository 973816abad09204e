"""Categorical (token) family: a distribution over ``V = dim`` tokens refit by counting.

Real data is Zipf(``zipf_exponent``) over the vocabulary. A model is ``CategoricalModel(p [C, V])``;
its outputs are tokens drawn from ``p**(1/lam)`` renormalised (temperature ``lam``; ``lam < 1``
sharpens, as top-heavy decoding does). The refit is the MLE ``counts / M``, so a token whose count
hits 0 is lost forever: tail tokens go first. Exact laws (lam = 1, M samples per refit):
``E[1 - sum p_t^2] = (1 - 1/M)^t (1 - sum p_0^2)``, and a chain fixes on token i with probability p_0i.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from provguard.sim import metrics as M
from provguard.sim.families.base import EvalContext, Family, Samples


class CategoricalModel(NamedTuple):
    p: torch.Tensor  # [C, V]


def zipf(v: int, s: float, device) -> torch.Tensor:
    """Zipf probabilities ``[V]`` proportional to ``rank**-s``."""
    w = torch.arange(1, v + 1, dtype=torch.float64, device=device) ** (-s)
    return w / w.sum()


def tail_tokens(p0: torch.Tensor, head_mass: float = 0.9) -> torch.Tensor:
    """Boolean ``[V]``: tokens outside the smallest set holding ``head_mass`` of ``p0`` (p0 sorted descending)."""
    order = torch.argsort(p0, descending=True)
    before = torch.cumsum(p0[order], 0) - p0[order]
    tail = torch.zeros_like(p0, dtype=torch.bool)
    tail[order] = before >= head_mass
    return tail


class CategoricalFamily(Family):
    name = "categorical"
    primary = "l2sq"
    continuous = False

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        self.p0 = zipf(cfg.d, cfg.zipf_exponent, device)
        self.tail = tail_tokens(self.p0)

    def real_model(self, n_chains):
        return CategoricalModel(self.p0.expand(n_chains, -1).clone())

    def sample(self, model, n_max, lam, streams, gen, tag):
        logits = torch.log(model.p.clamp_min(1e-300)) / lam.to(torch.float64)[:, None]
        q = torch.where(model.p > 0, torch.softmax(logits, dim=-1), torch.zeros_like(model.p))
        cdf = torch.cumsum(q, dim=-1)
        cdf = cdf / cdf[:, -1:]
        u = streams.uniform(gen, tag, (n_max,))
        tokens = torch.searchsorted(cdf, u).clamp_max(model.p.shape[1] - 1)
        return Samples(tokens, torch.ones(tokens.shape, dtype=torch.bool, device=tokens.device), synthetic=True)

    def counts(self, group: Samples) -> torch.Tensor:
        """Token counts ``[C, V]`` of the kept rows."""
        out = torch.zeros(group.x.shape[0], self.cfg.d, dtype=torch.float64, device=group.x.device)
        return out.scatter_add_(1, group.x, group.mask.to(torch.float64))

    def fit(self, groups, prev, streams, gen):
        c = sum(self.counts(g) for g in groups)
        return CategoricalModel(c / c.sum(1, keepdim=True).clamp_min(1.0))

    def metrics(self, model, ctx: EvalContext):
        p, p0 = model.p, ctx.real.p
        alive = p > 0
        return {
            "l2sq": ((p - p0) ** 2).sum(-1),
            "tv": 0.5 * (p - p0).abs().sum(-1),
            "gini_simpson": 1.0 - (p ** 2).sum(-1),
            "entropy": M.entropy(p),
            "tail_mass": (p * self.tail).sum(-1),
            "modes_lost": ((p0 > 0) & ~alive).to(torch.float64).sum(-1),
            "support": alive.to(torch.float64).sum(-1),
            "precision": (p * (p0 > 0)).sum(-1),
            "recall": (p0 * alive).sum(-1),
        }
