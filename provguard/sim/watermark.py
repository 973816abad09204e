"""The watermark-artifact model: a key-based additive spread-spectrum mark on vectors or images.

The key defines a unit direction ``w`` (``d`` signs from :func:`provguard.watermark.prf.signs`,
divided by ``sqrt(d)``), identical on every device. Marking adds ``eps * sigma_w * w`` to a sample,
where ``sigma_w`` is the real data's standard deviation along ``w``: ``eps`` is the mark strength in
real-data standard deviations, so a marked sample from an unchanged model has detection z about
``eps``. The detector's statistic is that z-score, ``(x.w - c_w) / sigma_w``, with ``c_w`` the real
mean along ``w``; it is thresholded at a target false-positive rate on real data. Because the mark is
a shift, the next model trained on marked samples inherits it: the artifact is measured as the model
mean's shift along ``w`` (in ``sigma_w`` units) and as the detector's TPR on the model's *unmarked*
outputs.
"""
from __future__ import annotations

import math

import torch

from provguard.watermark.prf import derive_seed, signs

DEFAULT_KEY = b"provguard-sim-mark"


class VectorMark:
    """Spread-spectrum mark of dimension ``d`` (vectors ``[..., d]``; images are flattened first)."""

    def __init__(self, d: int, center: float, sigma: float, key: bytes = DEFAULT_KEY, device="cpu"):
        self.d = int(d)
        w = signs(derive_seed(key, f"provguard.sim.mark/{self.d}"), self.d).astype("float64") / math.sqrt(self.d)
        self.w = torch.as_tensor(w, dtype=torch.float64, device=device)
        self.center = float(center)
        self.sigma = float(sigma)

    @classmethod
    def from_real(cls, d: int, real_mean: torch.Tensor, real_cov_or_samples: torch.Tensor, key: bytes = DEFAULT_KEY,
                  device="cpu") -> "VectorMark":
        """Calibrate ``c_w``, ``sigma_w`` from the real mean ``[d]`` and covariance ``[d, d]`` or samples ``[N, d]``."""
        probe = cls(d, 0.0, 1.0, key, device)
        w = probe.w
        center = float(real_mean.to(torch.float64).reshape(-1) @ w)
        m = real_cov_or_samples.to(torch.float64)
        if m.shape == (d, d):
            var = float(w @ m @ w)
        else:
            var = float((m.reshape(m.shape[0], -1) @ w).var())
        return cls(d, center, math.sqrt(max(var, 1e-300)), key, device)

    def shift(self, eps: torch.Tensor) -> torch.Tensor:
        """The mark's additive shift per chain, ``[C, d]`` (``eps [C]`` in sigma_w units)."""
        return eps.to(torch.float64)[:, None] * self.sigma * self.w[None, :]

    def embed(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Mark ``x [C, N, ...]`` (last dims flatten to ``d``) with strength ``eps [C]``."""
        shape = x.shape
        flat = x.reshape(shape[0], shape[1], -1).to(torch.float64) + self.shift(eps)[:, None, :]
        return flat.reshape(shape).to(x.dtype)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Detection z-scores ``[C, N]`` of samples ``x [C, N, ...]`` (large = marked)."""
        flat = x.reshape(x.shape[0], x.shape[1], -1).to(torch.float64)
        return (flat @ self.w - self.center) / self.sigma

    def model_shift(self, mean: torch.Tensor) -> torch.Tensor:
        """Artifact carried by a model: its mean's shift along ``w`` in sigma_w units, ``[C]`` (mean ``[C, d]``)."""
        return (mean.to(torch.float64).reshape(mean.shape[0], -1) @ self.w - self.center) / self.sigma
