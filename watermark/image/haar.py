"""One-level 2-D Haar transform that reproduces PyWavelets' ``dwt2``/``idwt2(..., 'haar')`` bit for bit.

Bit-exactness matters for the Stable Diffusion watermark: ``dwtDct`` picks each block's
largest-magnitude coefficient, and in flat regions many coefficients tie in exact arithmetic; pywt's
rounding breaks those ties, so a reader or writer that rounds differently picks other coefficients.
We therefore repeat pywt's operations in the same order and precision (float64 for integer input,
as pywt casts it; float32 stays float32): along axis -2 first, then axis -1; approximation
``x0*c + x1*c``, detail ``x0*c - x1*c`` with ``c = fl(1/sqrt 2)``; reconstruction
``even = lo*c + hi*c``, ``odd = lo*c - hi*c``, last axis first.

Tensors are ``(..., H, W)`` with even ``H`` and ``W``; bands are ``(..., H/2, W/2)``.
"""
from __future__ import annotations

import torch

_C = 0.7071067811865476  # pywt.Wavelet('haar').dec_lo[0]


def _analysis(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Approximation and detail along negative axis ``dim`` (-1 or -2)."""
    c = torch.tensor(_C, dtype=x.dtype, device=x.device)
    pairs = x.unflatten(dim, (-1, 2))  # the pair axis lands at ``dim``
    even, odd = pairs.select(dim, 0), pairs.select(dim, 1)
    return even * c + odd * c, even * c - odd * c


def _synthesis(lo: torch.Tensor, hi: torch.Tensor, dim: int) -> torch.Tensor:
    """Inverse of :func:`_analysis` along negative axis ``dim``."""
    c = torch.tensor(_C, dtype=lo.dtype, device=lo.device)
    return torch.stack([lo * c + hi * c, lo * c - hi * c], dim=dim).flatten(dim - 1, dim)


def dwt2(x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(cA, (cH, cV, cD))`` exactly as ``pywt.dwt2(x, 'haar')``, for ``x`` of shape ``(..., H, W)``."""
    lo, hi = _analysis(x, -2)
    aa, ad = _analysis(lo, -1)
    da, dd = _analysis(hi, -1)
    return aa, (da, ad, dd)


def idwt2(ca: torch.Tensor, details: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """``pywt.idwt2((cA, (cH, cV, cD)), 'haar')`` exactly: shape ``(..., 2h, 2w)``."""
    ch, cv, cd = details
    lo = _synthesis(ca, cv, -1)
    hi = _synthesis(ch, cd, -1)
    return _synthesis(lo, hi, -2)


def ll_band(x: torch.Tensor) -> torch.Tensor:
    """Only ``cA`` of :func:`dwt2` (cheaper: the detail bands are never formed)."""
    lo, _ = _analysis(x, -2)
    return _analysis(lo, -1)[0]
