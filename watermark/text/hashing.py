"""Torch twin of :mod:`provguard.watermark.prf`'s counter-mode mixer, for green lists on any device.

Green-list tests run inside ``model.generate`` on whatever device holds the logits, so they are
computed with torch int64 tensors. uint64 arithmetic is emulated exactly: two's-complement ``*`` and
``+`` wrap the same way on CPU and CUDA, and logical right shifts mask off the sign extension. Tests
check bit-for-bit equality with :func:`provguard.watermark.prf.splitmix64` / ``stream_u64``.
All functions take and return int64 tensors holding uint64 bit patterns, of any shape.
"""
from __future__ import annotations

import torch

from provguard.watermark import prf


def _signed(value: int) -> int:
    """The int64 value with the same 64-bit pattern as the uint64 ``value``."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


GOLDEN = _signed(int(prf._GOLDEN))


def shr(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical (unsigned) right shift of int64 bit patterns by ``0 < s < 64``."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def splitmix64(x: torch.Tensor) -> torch.Tensor:
    """The splitmix64 finaliser, elementwise; same bits as ``prf.splitmix64`` (the shared
    :func:`provguard.watermark.prf.splitmix64_torch`)."""
    return prf.splitmix64_torch(x)


def stream_at(seed: int, index: torch.Tensor) -> torch.Tensor:
    """Values of ``prf.stream_u64(seed, ...)`` at the (int64, >= 0) positions ``index``, same shape."""
    return prf.splitmix64_torch(_signed(seed) + (index + 1) * GOLDEN, inplace=True)  # a fresh tensor: mix in place


def unsigned_less(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a < b`` comparing the int64 tensors as uint64 (flip the sign bit, compare signed)."""
    flip = -(1 << 63)
    return (a ^ flip) < (b ^ flip)


def below_fraction(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """``uniform(x) < fraction`` where ``uniform`` takes the top 53 bits as in ``prf.uniform``.

    Exact: the comparison is done on integers, so P(True) = floor(fraction * 2**53) / 2**53.
    """
    return shr(x, 11) < int(fraction * (1 << 53))
