"""Small signal-processing helpers for image watermarks, batched over leading dimensions.

All functions take float tensors ``(..., H, W)`` and keep the shape unless documented.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel1d(sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian of standard deviation ``sigma`` pixels, radius ceil(3 sigma)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigma: float, mode: str = "reflect") -> torch.Tensor:
    """Separable Gaussian blur; ``mode`` is the padding (``"reflect"`` or ``"circular"``)."""
    k = gaussian_kernel1d(sigma, x.device, x.dtype)
    r = len(k) // 2
    shape = x.shape
    y = x.reshape(-1, 1, *shape[-2:])
    if mode == "reflect" and (r >= shape[-1] or r >= shape[-2]):
        mode = "replicate"  # reflect padding needs the radius below the size
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1))
    return y.reshape(shape)


def highpass(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``x`` minus its Gaussian blur: removes content below about 1/(2 pi sigma) cycles/pixel."""
    return x - gaussian_blur(x, sigma)


def local_rms(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian-weighted local root-mean-square of ``x``."""
    return gaussian_blur(x * x, sigma).clamp_min(0).sqrt()


def resize(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Bilinear resize of ``(..., H, W)`` by ``scale`` (antialiased when shrinking)."""
    shape = x.shape
    h, w = max(1, round(shape[-2] * scale)), max(1, round(shape[-1] * scale))
    y = F.interpolate(x.reshape(-1, 1, *shape[-2:]), size=(h, w), mode="bilinear",
                      align_corners=False, antialias=scale < 1)
    return y.reshape(*shape[:-2], h, w)


def fold(x: torch.Tensor, period: int) -> torch.Tensor:
    """Sum ``(..., H, W)`` over all ``period`` x ``period`` tiles (zero-padded at the far edges),
    normalised by the number of tiles covering each tile position: ``(..., period, period)``."""
    h, w = x.shape[-2:]
    ph, pw = -h % period, -w % period
    padded = F.pad(x, (0, pw, 0, ph))
    ones = F.pad(torch.ones_like(x), (0, pw, 0, ph))
    th, tw = padded.shape[-2] // period, padded.shape[-1] // period
    tiles = padded.reshape(*x.shape[:-2], th, period, tw, period).sum((-4, -2))
    count = ones.reshape(*x.shape[:-2], th, period, tw, period).sum((-4, -2))
    return tiles / count.clamp_min(1) * math.sqrt(th * tw)


def circular_xcorr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Circular cross-correlation ``c[dy, dx] = sum a[y+dy, x+dx] * b[y, x]`` via FFT, same shape."""
    return torch.fft.irfft2(torch.fft.rfft2(a) * torch.conj(torch.fft.rfft2(b)), s=a.shape[-2:])


def autocorrelation_profile(x: torch.Tensor, max_lag: int) -> torch.Tensor:
    """Axis autocorrelation ``A[l, 0] + A[0, l]`` of ``(H, W)`` for lags ``0..max_lag``, normalised
    by ``A[0, 0]`` (circular, via FFT): ``(max_lag + 1,)``."""
    x = x - x.mean()
    spec = torch.fft.rfft2(x)
    a = torch.fft.irfft2(spec * torch.conj(spec), s=x.shape[-2:])
    prof = a[: max_lag + 1, 0] + a[0, : max_lag + 1]
    return prof / prof[0].clamp_min(1e-12)
