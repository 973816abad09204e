"""Gaussian-mixture family with rare modes, refit by batched EM (tails are lost first).

Real data: ``K = gmm_components`` isotropic components (std 0.5) with means at radius 4 (on a circle
in 2-D; on key-free fixed random directions in higher dimensions); two components are rare (weight
``gmm_rare_weight`` each), the rest share the remaining mass. A model is ``GMMModel(weights [C, K],
means [C, K, d], covs [C, K, d, d])``, outputs are drawn from each component with covariance
``lam * cov``. EM runs a fixed number of iterations, warm-started from the previous generation's model
(generation 1 starts at the real parameters, i.e. a well-initialised first model); a component whose
responsibility mass falls below one sample dies (weight 0) and never returns.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from provguard.sim.families.base import EvalContext, Family, Samples
from provguard.sim.families.gaussian import factor, sample_quality

COMPONENT_STD = 0.5
RADIUS = 4.0
COV_FLOOR = 1e-6


class GMMModel(NamedTuple):
    weights: torch.Tensor  # [C, K]
    means: torch.Tensor    # [C, K, d]
    covs: torch.Tensor     # [C, K, d, d]


def log_prob(x: torch.Tensor, model: GMMModel) -> torch.Tensor:
    """Per-component joint log densities ``log w_k + log N(x; mu_k, S_k)``, ``[C, N, K]``."""
    d = x.shape[-1]
    chol = torch.linalg.cholesky(model.covs + COV_FLOOR * torch.eye(d, dtype=x.dtype, device=x.device))
    diff = x[:, None, :, :] - model.means[:, :, None, :]  # [C, K, N, d]
    sol = torch.linalg.solve_triangular(chol, diff.transpose(-1, -2), upper=False)  # [C, K, d, N]
    maha = (sol ** 2).sum(-2)  # [C, K, N]
    logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # [C, K]
    lp = -0.5 * (maha + logdet[..., None] + d * math.log(2 * math.pi))
    return (lp + torch.log(model.weights.clamp_min(1e-300))[..., None]).transpose(1, 2)


class GMMFamily(Family):
    name = "gmm"
    primary = "l2sq"
    has_density = True
    max_calibration_chains = 32  # EM is the costly part of calibration

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        k, d = cfg.gmm_components, cfg.d
        if d == 2:
            ang = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k)
            dirs = torch.stack((torch.cos(ang), torch.sin(ang)), -1)
        else:
            gen = torch.Generator().manual_seed(1234)  # fixed layout, not key material
            dirs = torch.randn(k, d, generator=gen, dtype=torch.float64)
            dirs = dirs / dirs.norm(dim=1, keepdim=True)
        w = torch.full((k,), (1.0 - 2 * cfg.gmm_rare_weight) / (k - 2), dtype=torch.float64)
        w[1] = w[k // 2 + 1] = cfg.gmm_rare_weight
        self.rare = w == cfg.gmm_rare_weight
        self.real = GMMModel(w.to(device), (RADIUS * dirs).to(device),
                             (COMPONENT_STD ** 2 * torch.eye(d, dtype=torch.float64)).expand(k, d, d).to(device))

    def real_model(self, n_chains):
        return GMMModel(*(t.expand(n_chains, *t.shape).clone() for t in self.real))

    def real_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact mixture mean ``[d]`` and covariance ``[d, d]``."""
        w, mu, cov = self.real
        mean = (w[:, None] * mu).sum(0)
        dm = mu - mean
        return mean, (w[:, None, None] * (cov + dm[:, :, None] * dm[:, None, :])).sum(0)

    def sample(self, model, n_max, lam, streams, gen, tag):
        cdf = torch.cumsum(model.weights, -1)
        cdf = cdf / cdf[:, -1:]
        comp = torch.searchsorted(cdf, streams.uniform(gen, f"{tag}/component", (n_max,))).clamp_max(cdf.shape[1] - 1)
        z = streams.normal(gen, tag, (n_max, self.cfg.d))
        f = factor(model.covs) * lam.to(torch.float64).sqrt()[:, None, None, None]  # [C, K, d, d]
        fc = torch.gather(f, 1, comp[..., None, None].expand(-1, -1, *f.shape[2:]))  # [C, N, d, d]
        mc = torch.gather(model.means, 1, comp[..., None].expand(-1, -1, self.cfg.d))
        x = mc + (fc @ z[..., None]).squeeze(-1)
        return Samples(x, torch.ones(x.shape[:2], dtype=torch.bool, device=x.device), synthetic=True)

    def fit(self, groups, prev, streams, gen):
        x = torch.cat([g.x for g in groups], 1)
        w = torch.cat([g.mask for g in groups], 1).to(torch.float64)  # [C, N]
        model = prev if prev is not None else self.real_model(x.shape[0])
        eye = torch.eye(self.cfg.d, dtype=torch.float64, device=x.device)
        alive = model.weights > 0
        for _ in range(self.cfg.gmm_em_iters):
            lp = log_prob(x, model).masked_fill(~alive[:, None, :], -math.inf)
            resp = torch.softmax(lp, dim=-1) * w[..., None]  # [C, N, K]
            nk = resp.sum(1)  # [C, K]
            alive = alive & (nk >= 1.0)
            safe = nk.clamp_min(1e-12)
            means = (resp.transpose(1, 2) @ x) / safe[..., None]
            diff = x[:, None] - means[:, :, None]  # [C, K, N, d]
            covs = (resp.transpose(1, 2)[..., None] * diff).transpose(-1, -2) @ diff / safe[..., None, None]
            covs = 0.5 * (covs + covs.transpose(-1, -2)) + COV_FLOOR * eye
            keep = alive[..., None]
            model = GMMModel(torch.where(alive, nk, 0.0) / w.sum(1, keepdim=True),
                             torch.where(keep, means, model.means),
                             torch.where(keep[..., None], covs, model.covs))
        return model

    def surprisal(self, x):
        real = self.real_model(x.shape[0])
        return -torch.logsumexp(log_prob(x.to(torch.float64), real), dim=-1)

    def mode_mass(self, model: GMMModel) -> torch.Tensor:
        """Model weight attributed to each real mode (nearest real mean), ``[C, K_real]``."""
        d2 = ((model.means[:, :, None, :] - self.real.means[None, None]) ** 2).sum(-1)  # [C, K, K0]
        near = torch.nn.functional.one_hot(d2.argmin(-1), self.real.means.shape[0]).to(torch.float64)
        return (model.weights[..., None] * near).sum(1)

    def metrics(self, model, ctx: EvalContext):
        mass = self.mode_mass(model)
        lost = (mass < 0.1 * self.real.weights).to(torch.float64)
        out = {
            "l2sq": l2sq(model, ctx.real),
            "modes_lost": lost.sum(-1),
            "rare_modes_lost": (lost * self.rare).sum(-1),
            "tail_mass": (mass * self.rare).sum(-1),
            "mean_drift": ((model.weights[..., None] * model.means).sum(1)
                           - (ctx.real.weights[..., None] * ctx.real.means).sum(1)).norm(dim=-1),
        }
        return out

    def sample_metrics(self, model, ctx: EvalContext):
        """FD, k-NN precision/recall/density/coverage and KID on ``ctx.n_eval`` outputs, ``{name: [C]}``."""
        fake = self.sample(model, ctx.n_eval, ctx.lam, ctx.streams, ctx.gen, "eval/model").x
        return sample_quality(self, fake, ctx)


def _cross(a: GMMModel, b: GMMModel) -> torch.Tensor:
    """``sum_ij a_i b_j N(mu_ai; mu_bj, S_ai + S_bj)`` = the integral of the product of two mixtures, ``[C]``."""
    d = a.means.shape[-1]
    s = a.covs[:, :, None] + b.covs[:, None, :] + COV_FLOOR * torch.eye(d, dtype=torch.float64, device=a.means.device)
    diff = a.means[:, :, None] - b.means[:, None, :]
    chol = torch.linalg.cholesky(s)
    sol = torch.cholesky_solve(diff[..., None], chol).squeeze(-1)
    maha = (diff * sol).sum(-1)
    logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    dens = torch.exp(-0.5 * (maha + logdet + d * math.log(2 * math.pi)))
    return (a.weights[:, :, None] * b.weights[:, None, :] * dens).sum((1, 2))


def l2sq(a: GMMModel, b: GMMModel) -> torch.Tensor:
    """Exact squared L2 distance between two mixture densities, ``[C]`` (closed form, no sampling)."""
    return (_cross(a, a) + _cross(b, b) - 2.0 * _cross(a, b)).clamp_min(0.0)
