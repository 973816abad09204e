"""Hash-based pseudo-random functions that define watermark keys.

Every random choice that a watermark key determines (chip signs, bit layouts, green lists) comes from
here, computed with integer arithmetic in NumPy on the CPU. The results are therefore identical on
every machine and device: a mark embedded on a GPU is read on a CPU. Device RNGs are never used for
key material.

Construction: ``seed = BLAKE2b-64(key, domain)``; the stream value at index ``i`` is
``splitmix64(seed + (i+1) * golden)``, a bijective 64-bit mixer (Steele et al. 2014) that passes
BigCrush when used as a counter-mode generator.
"""
from __future__ import annotations

import hashlib

import numpy as np

from provguard.keys import SecretKey, as_key

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def derive_seed(key: SecretKey | bytes | str, domain: str) -> int:
    """64-bit seed for one use of a key; different ``domain`` strings give independent streams."""
    digest = hashlib.blake2b(domain.encode("utf-8"), key=bytes(as_key(key))[:64], digest_size=8)
    if len(bytes(as_key(key))) > 64:  # BLAKE2b keys are at most 64 bytes: fold the rest into the data
        digest.update(hashlib.sha256(bytes(as_key(key))).digest())
    return int.from_bytes(digest.digest(), "little")


def splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorised splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = x.copy()
        z ^= z >> np.uint64(30)
        z *= _M1
        z ^= z >> np.uint64(27)
        z *= _M2
        z ^= z >> np.uint64(31)
    return z


def _as_int64(value: int) -> int:
    """The int64 value with the same 64-bit pattern as the uint64 ``value``."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def splitmix64_torch(x, inplace: bool = False):
    """Torch twin of :func:`splitmix64` on int64 tensors holding uint64 bit patterns, any shape/device.

    Bit-identical to the NumPy reference (tested in ``tests/test_prf.py``): ``*`` on int64 wraps
    modulo 2**64 exactly like uint64 on CPU and CUDA, and logical right shifts mask off the sign
    extension of torch's arithmetic ``>>``. Returns a new tensor, or mixes ``x`` itself when
    ``inplace`` (saves one temporary on large counter blocks). Torch is imported lazily, so this
    module stays NumPy-only for callers that never use it.
    """
    import torch

    if x.dtype != torch.int64:
        raise TypeError(f"splitmix64_torch needs an int64 tensor (got {x.dtype})")
    t = x >> 30
    t &= (1 << 34) - 1
    if inplace:
        z = x
        z ^= t
    else:
        z = x ^ t
    z *= _as_int64(int(_M1))
    torch.bitwise_right_shift(z, 27, out=t)
    t &= (1 << 37) - 1
    z ^= t
    z *= _as_int64(int(_M2))
    torch.bitwise_right_shift(z, 31, out=t)
    t &= (1 << 33) - 1
    z ^= t
    return z


def stream_u64(seed: int, n: int, offset: int = 0) -> np.ndarray:
    """``n`` pseudo-random uint64 values of the stream ``seed``, starting at index ``offset``."""
    idx = np.arange(offset + 1, offset + n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return splitmix64(np.uint64(seed) + idx * _GOLDEN)


def uniform(seed: int, n: int) -> np.ndarray:
    """``n`` floats in [0, 1) with 53 random bits each, shape ``(n,)``."""
    return (stream_u64(seed, n) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def bits(seed: int, n: int) -> np.ndarray:
    """``n`` fair random bits as uint8 in {0, 1}, shape ``(n,)``."""
    return (stream_u64(seed, n) >> np.uint64(63)).astype(np.uint8)


def signs(seed: int, n: int) -> np.ndarray:
    """``n`` fair random signs in {-1.0, +1.0} (float32), shape ``(n,)``."""
    return bits(seed, n).astype(np.float32) * 2.0 - 1.0


def permutation(seed: int, n: int) -> np.ndarray:
    """A key-defined permutation of ``range(n)`` (argsort of a uniform stream; ties have prob ~0)."""
    return np.argsort(stream_u64(seed, n), kind="stable")
