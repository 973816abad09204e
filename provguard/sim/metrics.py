"""Distribution distances and sample-quality metrics, batched over a leading chain axis ``C``.

All linear algebra is float64. Shapes: samples ``[C, N, d]``, means ``[C, d]``, covariances
``[C, d, d]``; every metric returns ``[C]``.
"""
from __future__ import annotations

import math

import torch


def sym_sqrt(a: torch.Tensor) -> torch.Tensor:
    """Square root of symmetric PSD matrices ``[..., d, d]`` via ``eigh`` (negative eigenvalues -> 0)."""
    a = 0.5 * (a + a.transpose(-1, -2))
    w, v = torch.linalg.eigh(a)
    return (v * w.clamp_min(0.0).sqrt().unsqueeze(-2)) @ v.transpose(-1, -2)


def frechet(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> torch.Tensor:
    """Squared 2-Wasserstein (Frechet) distance between Gaussians, ``[C]``.

    ``|mu1-mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)`` with two symmetric ``eigh`` calls, so it is
    finite and real on singular (collapsed) covariances, unlike ``sqrtm`` of ``S1 @ S2``.
    """
    mu1, cov1, mu2, cov2 = (t.to(torch.float64) for t in (mu1, cov1, mu2, cov2))
    s1 = sym_sqrt(cov1)
    m = s1 @ cov2 @ s1
    ev = torch.linalg.eigvalsh(0.5 * (m + m.transpose(-1, -2))).clamp_min(0.0)
    tr = torch.diagonal(cov1, dim1=-2, dim2=-1).sum(-1) + torch.diagonal(cov2, dim1=-2, dim2=-1).sum(-1)
    return ((mu1 - mu2) ** 2).sum(-1) + (tr - 2.0 * ev.sqrt().sum(-1)).clamp_min(0.0)


def frechet_to_identity(mu1: torch.Tensor, ev1: torch.Tensor, mu2: torch.Tensor) -> torch.Tensor:
    """:func:`frechet` against ``N(mu2, I)`` from the eigenvalues ``ev1 [C, d]`` of ``cov1``, ``[C]``.

    With ``S2 = I``, ``S1^1/2 S2 S1^1/2 = S1``, so the distance is
    ``|mu1-mu2|^2 + tr(S1) + d - 2 sum sqrt(max(ev1, 0))``: no matrix square root needed.
    """
    ev1 = ev1.to(torch.float64)
    tr = ev1.sum(-1) + ev1.shape[-1]
    return ((mu1.to(torch.float64) - mu2.to(torch.float64)) ** 2).sum(-1) + \
        (tr - 2.0 * ev1.clamp_min(0.0).sqrt().sum(-1)).clamp_min(0.0)


def mean_cov(x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample mean ``[C, d]`` and unbiased covariance ``[C, d, d]`` of ``x [C, N, d]`` (rows where ``mask``)."""
    x = x.to(torch.float64)
    w = torch.ones(x.shape[:2], dtype=torch.float64, device=x.device) if mask is None else mask.to(torch.float64)
    n = w.sum(1).clamp_min(1.0)
    mu = (w[..., None] * x).sum(1) / n[:, None]
    xc = (x - mu[:, None, :]) * w[..., None].sqrt()
    cov = xc.transpose(1, 2) @ xc / (n - 1.0).clamp_min(1.0)[:, None, None]
    return mu, cov


def fd(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Frechet distance between Gaussian fits of two sample sets ``[C, N, d]`` and ``[C, M, d]``.

    Biased upwards by about ``(2d + d(d+1)/2) / n`` for two size-``n`` samples of one Gaussian: compare at
    fixed sizes.
    """
    return frechet(*mean_cov(real), *mean_cov(fake))


def sqdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances ``[C, N, M]`` (float64, clamped at 0)."""
    a, b = a.to(torch.float64), b.to(torch.float64)
    if a.shape[-1] == 1:  # exact and much faster than a K=1 batched matrix product
        return (a[:, :, None, 0] - b[:, None, :, 0]).square_()
    norms = (a * a).sum(-1)[:, :, None] + (b * b).sum(-1)[:, None, :]
    return torch.baddbmm(norms, a, b.transpose(1, 2), alpha=-2.0).clamp_min_(0.0)


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Squared distance from each point to its k-th nearest neighbour in the same set, self excluded, ``[C, N]``."""
    d = sqdist(x, x)
    d.diagonal(dim1=1, dim2=2).fill_(-1.0)  # self is always the 0-th neighbour
    return torch.topk(d, k + 1, dim=2, largest=False).values[..., k]


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> dict[str, torch.Tensor]:
    """k-NN precision, recall (Kynkaanniemi et al. 2019), density and coverage (Naeem et al. 2020), each ``[C]``.

    Squared distances, k-th neighbour excluding self, ball membership with ``<=``. When P = Q:
    E[density] = 1 and E[coverage] = 1 - prod_{j=1..k} (N-j)/(N+M-j) (N real, M fake).
    """
    if real.shape[-1] == 1:
        return _prdc_1d(real[..., 0].to(torch.float64), fake[..., 0].to(torch.float64), k)
    r_real, r_fake = knn_radii(real, k), knn_radii(fake, k)
    d_fr = sqdist(fake, real)  # [C, M, N]
    in_real_ball = d_fr <= r_real[:, None, :]
    precision = in_real_ball.any(2).to(torch.float64).mean(1)
    recall = (d_fr <= r_fake[:, :, None]).any(1).to(torch.float64).mean(1)
    density = in_real_ball.to(torch.float64).sum((1, 2)) / (k * fake.shape[1])
    coverage = in_real_ball.any(1).to(torch.float64).mean(1)
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


def _knn_radii_1d(xs: torch.Tensor, k: int) -> torch.Tensor:
    """:func:`knn_radii` of sorted 1-D points ``xs [C, N]``: the k nearest others lie within k positions."""
    n = xs.shape[1]
    pad = torch.full((xs.shape[0], k), math.inf, dtype=xs.dtype, device=xs.device)
    padded = torch.cat([pad, xs, pad], 1)
    cand = torch.stack([(padded[:, k + o:k + o + n] - xs).square() for o in range(-k, k + 1) if o], -1)
    return torch.topk(cand, k, dim=-1, largest=False).values[..., k - 1]


def _balls_containing(centres: torch.Tensor, radii_sq: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """How many 1-D balls ``|p - c| <= sqrt(r)`` contain each point, ``[C, M]`` (centres, radii ``[C, N]``)."""
    s = radii_sq.sqrt()
    lo, hi = torch.sort(centres - s, 1).values, torch.sort(centres + s, 1).values
    return torch.searchsorted(lo, points, right=True) - torch.searchsorted(hi, points, right=False)


def _prdc_1d(real: torch.Tensor, fake: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
    """:func:`prdc` for 1-D samples ``[C, N]``, ``[C, M]`` by sorting (O(n log n), same definitions)."""
    rs, fs = torch.sort(real, 1).values, torch.sort(fake, 1).values
    r_real, r_fake = _knn_radii_1d(rs, k), _knn_radii_1d(fs, k)
    count = _balls_containing(rs, r_real, fs)  # [C, M] real balls around each fake sample
    precision = (count > 0).to(torch.float64).mean(1)
    density = count.to(torch.float64).sum(1) / (k * fake.shape[1])
    recall = (_balls_containing(fs, r_fake, rs) > 0).to(torch.float64).mean(1)
    pos = torch.searchsorted(fs, rs)
    left = fs.gather(1, (pos - 1).clamp_min(0))
    right = fs.gather(1, pos.clamp_max(fs.shape[1] - 1))
    nearest = torch.minimum((rs - left).square(), (rs - right).square())
    coverage = (nearest <= r_real).to(torch.float64).mean(1)
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


def kid(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Kernel inception distance: unbiased MMD^2 with the cubic kernel ``(x.y/d + 1)^3``, ``[C]`` (E = 0 when P = Q)."""
    d = real.shape[-1]
    real, fake = real.to(torch.float64), fake.to(torch.float64)

    def kern_sum(a, b, same: bool) -> torch.Tensor:
        if d == 1:  # sum_ij (a_i b_j + 1)^3 = sum_p C(3,p) (sum_i a_i^p)(sum_j b_j^p): O(n), exact
            x, y = a[..., 0], b[..., 0]
            total = sum(c * (x ** p).sum(1) * (y ** p).sum(1) for p, c in enumerate((1.0, 3.0, 3.0, 1.0)))
            return total - ((x * y + 1.0) ** 3).sum(1) if same else total
        k = torch.baddbmm(torch.ones(1, 1, 1, dtype=torch.float64, device=a.device), a, b.transpose(1, 2),
                          alpha=1.0 / d).pow_(3)
        total = k.sum((1, 2))
        return total - k.diagonal(dim1=1, dim2=2).sum(1) if same else total

    n, m = real.shape[1], fake.shape[1]
    return (kern_sum(real, real, True) / (n * (n - 1)) + kern_sum(fake, fake, True) / (m * (m - 1))
            - 2.0 * kern_sum(real, fake, False) / (n * m))


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats of probability vectors ``[C, V]`` -> ``[C]``."""
    p = p.to(torch.float64)
    return -(torch.where(p > 0, p * torch.log(p.clamp_min(1e-300)), torch.zeros_like(p))).sum(-1)


def n_eff(distance: torch.Tensor, constant: float) -> torch.Tensor:
    """Effective sample size: the real-only sample size ``n`` with ``E[distance] = constant / n``, ``[C]``.

    ``constant`` is ``n_ref * E[distance of a real-only fit on n_ref samples]`` (see
    :func:`provguard.sim.engine.calibrate`); the 1/n law is the first-order behaviour of every
    consistent estimator the families use.
    """
    return constant / distance.clamp_min(1e-300)
