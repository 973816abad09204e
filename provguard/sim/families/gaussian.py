"""Multivariate Gaussian family: per-sample path and the exact sufficient-statistic fast path.

A model is ``GaussianModel(mean [C, d], cov [C, d, d])``; its outputs are ``N(mean, lam * cov)``
(MAD's sampling bias). Real data is ``N(0, I_d)``. The fast path never draws samples: the mean of
``m`` outputs is ``N(mean + shift, lam * cov / m)`` and their scatter matrix is
``lam * F W F^T`` with ``F F^T = cov`` and ``W ~ Wishart(I, m - 1)`` drawn by the Bartlett
decomposition (singular, rank ``m - 1``, when ``m - 1 < d``) - the same distribution as the
per-sample path at O(d^2) instead of O(m d) random numbers per chain.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from scipy import stats as _stats

from provguard.sim import metrics as M
from provguard.sim.families.base import EvalContext, Family, Samples
from provguard.sim.rng import ChainStreams


class GaussianModel(NamedTuple):
    mean: torch.Tensor  # [C, d]
    cov: torch.Tensor   # [C, d, d], positive semi-definite (singular when fitted on n <= d samples)
    n: torch.Tensor | None = None  # [C] float64 samples the fit saw (None: the true model, full rank)

    def rank(self) -> torch.Tensor:
        """Rank of ``cov`` per chain, ``[C]`` float64: ``min(n - 1, d)`` for a fit (exact, not numerical)."""
        d = self.cov.shape[-1]
        if self.n is None:
            return torch.full(self.cov.shape[:1], float(d), dtype=torch.float64, device=self.cov.device)
        return (self.n - 1.0).clamp(0.0, float(d))


class Stats(NamedTuple):
    """Sufficient statistics of a sample group: count ``[C]``, mean ``[C, d]``, scatter ``[C, d, d]``."""

    n: torch.Tensor
    mean: torch.Tensor
    scatter: torch.Tensor
    synthetic: bool


def factor(cov: torch.Tensor) -> torch.Tensor:
    """``F`` with ``F F^T = cov`` for symmetric PSD ``cov [..., d, d]``.

    Cholesky (lower-triangular ``F``, several times cheaper than ``eigh`` on small batched matrices);
    matrices whose Cholesky fails (singular or numerically indefinite, e.g. collapsed covariances) fall
    back to ``eigh`` with negative eigenvalues clamped to 0. The choice is made per matrix, so a
    chain's factor does not depend on the batch it is in; any ``F`` with ``F F^T = cov`` gives the same
    sampling distribution (``N(0, I)`` and ``Wishart(I)`` are rotation invariant).
    """
    if cov.shape[-1] == 1:  # 1-D: the square root, elementwise (no batched LAPACK call per chain)
        return cov.clamp_min(0.0).sqrt()
    sym = 0.5 * (cov + cov.transpose(-1, -2))
    f, info = torch.linalg.cholesky_ex(sym)
    bad = info != 0
    if bool(bad.any()):
        w, v = torch.linalg.eigh(sym[bad])
        f[bad] = v * w.clamp_min(0.0).sqrt().unsqueeze(-2)
    return f


def eigenvalues(cov: torch.Tensor) -> torch.Tensor:
    """Eigenvalues ``[..., d]`` (ascending) of symmetric ``cov [..., d, d]``; 1-D without a LAPACK call."""
    if cov.shape[-1] == 1:
        return cov[..., 0]
    return torch.linalg.eigvalsh(cov)


def stats_of(group: Samples) -> Stats:
    """Sufficient statistics of the masked rows of ``group.x [C, N, d]`` (batched matrix products)."""
    x = group.x.to(torch.float64)
    w = group.mask.to(torch.float64)
    n = w.sum(1)
    mean = torch.bmm(w[:, None, :], x).squeeze(1) / n.clamp_min(1.0)[:, None]
    xc = x - mean[:, None, :]
    xc *= w[..., None]
    return Stats(n, mean, torch.bmm(xc.transpose(1, 2), xc), group.synthetic)


def combine(groups: list[Stats]) -> Stats:
    """Pool groups: counts add, means weight by count, scatters add plus the between-group term."""
    if len(groups) == 1:  # nothing to pool (the replace loops): keep the group's exact statistics
        g = groups[0]
        return Stats(g.n, g.mean, g.scatter, False)
    n = sum(g.n for g in groups)
    mean = sum(g.n[:, None] * g.mean for g in groups) / n.clamp_min(1.0)[:, None]
    scatter = sum(g.scatter for g in groups)
    for g in groups:
        dm = g.mean - mean
        scatter = scatter + g.n[:, None, None] * dm[:, :, None] * dm[:, None, :]
    return Stats(n, mean, scatter, False)


def bartlett(streams: ChainStreams, gen: int, tag: str, df: torch.Tensor, d: int) -> torch.Tensor:
    """Lower-triangular ``A [C, d, d]`` with ``A A^T ~ Wishart(I_d, df)`` for integer ``df [C] >= 0``.

    ``A_ii = sqrt(chi2(df - i))`` for ``i < df``; ``A_ij ~ N(0, 1)`` below the diagonal for ``j < df``;
    zero elsewhere (the singular Wishart when ``df < d``).
    """
    i = torch.arange(d, device=df.device)
    dfs = (df[:, None] - i[None, :]).clamp_min(0)
    diag = streams.chi2(gen, f"{tag}/wishart-diag", dfs.to(torch.float64)).sqrt()
    low = torch.tril(streams.normal(gen, f"{tag}/wishart-low", (d, d)), diagonal=-1)
    low = low * (i[None, None, :] < df[:, None, None])
    return low + torch.diag_embed(diag)


class GaussianFamily(Family):
    name = "gaussian"
    primary = "w2sq"
    has_stats_path = True
    has_density = True

    def real_model(self, n_chains: int) -> GaussianModel:
        d = self.cfg.d
        eye = torch.eye(d, dtype=torch.float64, device=self.device)
        return GaussianModel(torch.zeros(n_chains, d, dtype=torch.float64, device=self.device),
                             eye.expand(n_chains, d, d).clone())

    def real_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact real mean ``[d]`` and covariance ``[d, d]``."""
        real = self.real_model(1)
        return real.mean[0], real.cov[0]

    # per-sample path -------------------------------------------------------------------------
    def sample(self, model, n_max, lam, streams, gen, tag):
        z = streams.normal(gen, tag, (n_max, self.cfg.d))
        f = factor(model.cov) * lam.to(torch.float64).sqrt()[:, None, None]
        x = torch.baddbmm(model.mean[:, None, :], z, f.transpose(1, 2))  # mean + z F^T
        return Samples(x, torch.ones(x.shape[:2], dtype=torch.bool, device=x.device), synthetic=True)

    def fit(self, groups, prev, streams, gen):
        return self.fit_stats([stats_of(g) for g in groups])

    # fast path -------------------------------------------------------------------------------
    def draw_stats(self, model: GaussianModel, counts: torch.Tensor, lam: torch.Tensor, shift: torch.Tensor | None,
                   streams: ChainStreams, gen: int, tag: str, synthetic: bool) -> Stats:
        """Exact draw of the statistics of ``counts [C]`` outputs of ``model`` (bias ``lam``, added ``shift [C, d]``)."""
        d = self.cfg.d
        m = counts.to(torch.float64)
        f = factor(model.cov) * lam.to(torch.float64).sqrt()[:, None, None]
        z = streams.normal(gen, f"{tag}/mean", (d,))
        if d == 1:  # elementwise: the 1-D loop is the high-throughput case
            mean = model.mean + f[:, 0] * z / m.clamp_min(1.0).sqrt()[:, None]
            chi = streams.chi2(gen, f"{tag}/wishart-diag", (counts - 1).clamp_min(0).to(torch.float64)[:, None])
            scatter = (f[:, 0, 0] ** 2 * chi[:, 0])[:, None, None]
        else:
            mean = model.mean + (f @ z[..., None]).squeeze(-1) / m.clamp_min(1.0).sqrt()[:, None]
            a = f @ bartlett(streams, gen, tag, (counts - 1).clamp_min(0), d)
            scatter = a @ a.transpose(1, 2)
        if shift is not None:
            mean = mean + shift
        return Stats(m, mean, scatter, synthetic)

    def fit_stats(self, groups: list[Stats]) -> GaussianModel:
        pooled = combine(groups)
        denom = pooled.n - (1.0 if self.cfg.estimator == "unbiased" else 0.0)
        cov = pooled.scatter / denom.clamp_min(1.0)[:, None, None]
        return GaussianModel(pooled.mean, 0.5 * (cov + cov.transpose(1, 2)), pooled.n)

    # detectors and metrics -------------------------------------------------------------------
    def surprisal(self, x):
        return 0.5 * (x.to(torch.float64) ** 2).sum(-1)  # -log N(x; 0, I) + const

    def metrics(self, model: GaussianModel, ctx: EvalContext) -> dict[str, torch.Tensor]:
        """Closed-form metrics of every chain, ``{name: [C]}``.

        ``w2sq`` and ``trace_ratio`` come from the eigenvalues, so they are finite for singular
        (rank-deficient) fits; ``logdet`` is ``-inf`` where ``rank < d`` (the fit saw n <= d samples) and
        ``rank`` says so.
        """
        real = ctx.real
        d = self.cfg.d
        ev = eigenvalues(model.cov)  # the one eigendecomposition per chain and generation (ascending)
        rank = model.rank()
        if d > 1:  # the d - rank null eigenvalues are exactly 0 (rounding would put sqrt(1e-16) = 1e-8 into W2)
            ev = torch.where(torch.arange(d, device=ev.device) < (d - rank)[:, None], 0.0, ev)
        logdet = torch.log(ev.clamp_min(0.0)).sum(-1)
        out = {
            "w2sq": M.frechet_to_identity(model.mean, ev, real.mean),  # real covariance is I_d
            "logdet": torch.where(rank < d, torch.full_like(logdet, -math.inf), logdet),
            "rank": rank,
            "mean_drift": (model.mean - real.mean).norm(dim=-1),
            "trace_ratio": ev.sum(-1) / d,
        }
        if ctx.mark is not None:
            shift = ctx.mark.model_shift(model.mean)
            var_w = torch.einsum("i,cij,j->c", ctx.mark.w, model.cov, ctx.mark.w) * ctx.lam / ctx.mark.sigma ** 2
            z_alpha = float(_stats.norm.isf(1e-3))
            out["artifact_shift"] = shift
            out["artifact_tpr"] = torch.special.ndtr((shift - z_alpha) / var_w.clamp_min(1e-300).sqrt())
        return out

    def sample_metrics(self, model: GaussianModel, ctx: EvalContext) -> dict[str, torch.Tensor]:
        """FD, k-NN precision/recall/density/coverage, KID and tail mass on ``ctx.n_eval`` outputs, ``{name: [C]}``."""
        fake = self.sample(model, ctx.n_eval, ctx.lam, ctx.streams, ctx.gen, "eval/model").x
        out = sample_quality(self, fake, ctx)
        cut = float(_stats.chi2.isf(0.01, self.cfg.d))
        out["tail_mass"] = ((fake ** 2).sum(-1) > cut).to(torch.float64).mean(1)
        return out


def sample_quality(family: Family, fake: torch.Tensor, ctx: EvalContext) -> dict[str, torch.Tensor]:
    """FD, PRDC and KID of model outputs ``fake [C, N, d]`` against as many real samples, ``{name: [C]}``."""
    ref = family.sample(ctx.real, ctx.n_eval, torch.ones_like(ctx.lam), ctx.streams, 0, "eval/real").x
    out = {"fd": M.fd(ref, fake)}
    out.update(M.prdc(ref, fake, ctx.k))
    out["kid"] = M.kid(ref, fake)
    return out


def log_moment_law(t: int, n: int, lam: float, estimator: str, d: int = 1) -> tuple[float, float]:
    """Theory for ``log det Sigma_t`` after ``t`` refits (Sigma_0 = I): ``(mean, variance)``.

    Each refit on ``n`` samples from ``N(mu, lam Sigma)`` multiplies ``det Sigma`` by
    ``lam^d det(W) / D^d`` with ``W ~ Wishart(I, n-1)``, so the log-det drifts per refit by
    ``d log lam + sum_{i=1..d} digamma((k-i+1)/2) + d log(2/D)`` with variance
    ``sum_i trigamma((k-i+1)/2)`` (k = n-1, D = n-1 unbiased or n MLE). The first refit is on real
    data, so ``lam`` enters ``t - 1`` times.
    """
    from scipy.special import digamma, polygamma

    k = n - 1
    big_d = n - 1 if estimator == "unbiased" else n
    half = [(k - i + 1) / 2 for i in range(1, d + 1)]
    drift = sum(digamma(h) for h in half) + d * math.log(2.0 / big_d)
    var = sum(float(polygamma(1, h)) for h in half)
    return t * drift + (t - 1) * d * math.log(lam), t * var


def fresh_moment_law(t: int, n_real: int, n_synth: int, lam: float, estimator: str = "unbiased",
                     recall: float = 0.0, fpr: float = 0.0) -> tuple[float, float]:
    """Exact ``(E[tr Sigma_t] / d, E[|mu_t|^2] / d)`` of the fresh-data loop (replace), any ``d``, real ``N(0, I)``.

    Generation 1 fits the ``a`` kept real samples; each later generation pools ``a`` fresh real
    samples and ``b`` samples of ``N(mu, lam Sigma)`` (an idealised filter keeps ``a ~ Bin(n_real,
    1 - fpr)`` and ``b ~ Bin(n_synth, 1 - recall)``, independently every generation). With ``n = a + b``
    and ``D = n - 1`` (unbiased) or ``n`` (MLE), conditioning on the previous model and the counts,

        E[scatter] = (a - 1 + b/n) I + (b - 1 + a/n) lam Sigma + (a b / n) mu mu^T
        E[mu' mu'^T] = (a I + b lam Sigma) / n^2 + (b / n)^2 mu mu^T,

    which is linear in ``(Sigma, mu mu^T)``, so the expectations follow a 2x2 linear recursion whose
    coefficients are averaged over the (independent) binomial counts. Holds for rank-deficient fits
    (``n <= d``) too; assumes ``n >= 2`` almost surely. The limit ``t -> inf`` is MAD's fixed point.
    """
    from scipy import stats as sps
    import numpy as np

    ar = np.arange(n_real + 1, dtype=float)
    br = np.arange(n_synth + 1, dtype=float)
    pa = sps.binom.pmf(ar, n_real, 1.0 - fpr)
    pb = sps.binom.pmf(br, n_synth, 1.0 - recall)
    off = 1.0 if estimator == "unbiased" else 0.0

    def expect(fn, a, b, w):
        ok = (a + b) >= 2
        return float((w * np.where(ok, fn(a, b, np.maximum(a + b, 2.0)), 0.0)).sum())

    s = expect(lambda a, b, n: (a - 1.0) / (n - off), ar, np.zeros_like(ar), pa)
    q = expect(lambda a, b, n: 1.0 / n, ar, np.zeros_like(ar), pa)
    a2, b2 = np.meshgrid(ar, br, indexing="ij")
    w2 = pa[:, None] * pb[None, :]
    c = [expect(fn, a2, b2, w2) for fn in (
        lambda a, b, n: (a - 1.0 + b / n) / (n - off),
        lambda a, b, n: (b - 1.0 + a / n) * lam / (n - off),
        lambda a, b, n: (a * b / n) / (n - off),
        lambda a, b, n: a / n ** 2,
        lambda a, b, n: b * lam / n ** 2,
        lambda a, b, n: (b / n) ** 2)]
    for _ in range(t - 1):
        s, q = c[0] + c[1] * s + c[2] * q, c[3] + c[4] * s + c[5] * q
    return s, q
