"""Fused CPU kernel for the SD watermark reader: all four read-outs in one pass over the pixels.

The torch path in :mod:`provguard.watermark.image.sd` is the reference (and the CUDA path); on a CPU
it is memory-bound (about 25 full-image tensor operations per read-out). This numba kernel walks each
8x8 pixel block once, computes the OpenCV U value of every pixel for the four read-outs, the Haar
LL coefficients in pywt's exact operation order and precision, and each 4x4 LL block's bit. Tests
assert it equals the torch path bit for bit.

Output: ``uint8 (N, 4, nblocks)``, read-outs in the order of ``sd.READOUTS``
(u8-bgr, u8-rgb, f32-bgr, f32-rgb), blocks row-major.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

_C64 = 0.7071067811865476
_C32 = np.float32(_C64)
_STEP = 36.0


@njit(cache=True, inline="always")
def _u_int(b, g, r):
    """OpenCV uint8 BGR->YUV U value (14-bit fixed point), for pixel values as ints."""
    y = (b * 1868 + g * 9617 + r * 4899 + 8192) >> 14
    u = ((b - y) * 8061 + (128 << 14) + 8192) >> 14
    return min(max(u, 0), 255)


@njit(cache=True, inline="always")
def _u_f32(b, g, r):
    """OpenCV float32 BGR->YUV U value (chroma offset 0.5), for pixel values as float32."""
    y = b * np.float32(0.114) + g * np.float32(0.587) + r * np.float32(0.299)
    return (b - y) * np.float32(0.492) + np.float32(0.5)


@njit(cache=True, inline="always")
def _ll64(a, b, c, d):
    """pywt's LL for integer-valued U (float64): rows first, then columns."""
    return (a * _C64 + b * _C64) * _C64 + (c * _C64 + d * _C64) * _C64


@njit(cache=True, inline="always")
def _ll32(a, b, c, d):
    """pywt's LL for float32 U (float32 throughout)."""
    return (a * _C32 + b * _C32) * _C32 + (c * _C32 + d * _C32) * _C32


@njit(cache=True, inline="always")
def _bit(v):
    return 1 if v % _STEP > _STEP / 2 else 0


@njit(cache=True, inline="always")
def _pixel_us(rgb, img, yy, xx):
    """The four read-outs' U values of one pixel: (u8 BGR, u8 RGB-as-BGR, f32 BGR, f32 RGB-as-BGR)."""
    r, g, b = np.int64(rgb[img, yy, xx, 0]), np.int64(rgb[img, yy, xx, 1]), np.int64(rgb[img, yy, xx, 2])
    rf, gf, bf = np.float32(r), np.float32(g), np.float32(b)
    return (float(_u_int(b, g, r)), float(_u_int(r, g, b)), _u_f32(bf, gf, rf), _u_f32(rf, gf, bf))


@njit(cache=True, parallel=True)
def block_bits_all(rgb: np.ndarray) -> np.ndarray:
    """Bits of every 4x4 LL block under the four read-outs, for uint8 RGB ``(N, H, W, 3)``."""
    n, h, w, _ = rgb.shape
    brows, bcols = (h // 4 * 4) // 8, (w // 4 * 4) // 8  # LL is (h4/2, w4/2); blocks of 4 LL rows
    out = np.zeros((n, 4, brows * bcols), dtype=np.uint8)
    for job in prange(n * brows):
        img, bi = job // brows, job % brows
        for bj in range(bcols):
            m0 = m1 = m2 = m3 = -1.0  # running maxima of |LL| over k = 1..15, per read-out
            for k in range(1, 16):
                y0, x0 = bi * 8 + 2 * (k // 4), bj * 8 + 2 * (k % 4)
                # the 2x2 pixels of this LL coefficient, in pywt's order: (0,0) (1,0) (0,1) (1,1)
                a0, a1, a2, a3 = _pixel_us(rgb, img, y0, x0)
                b0, b1, b2, b3 = _pixel_us(rgb, img, y0 + 1, x0)
                c0, c1, c2, c3 = _pixel_us(rgb, img, y0, x0 + 1)
                d0, d1, d2, d3 = _pixel_us(rgb, img, y0 + 1, x0 + 1)
                v0 = abs(_ll64(a0, b0, c0, d0))
                v1 = abs(_ll64(a1, b1, c1, d1))
                v2 = abs(float(_ll32(a2, b2, c2, d2)))
                v3 = abs(float(_ll32(a3, b3, c3, d3)))
                if v0 > m0:  # strict: the first maximum wins, as numpy's argmax
                    m0 = v0
                if v1 > m1:
                    m1 = v1
                if v2 > m2:
                    m2 = v2
                if v3 > m3:
                    m3 = v3
            blk = bi * bcols + bj
            out[img, 0, blk] = _bit(m0)
            out[img, 1, blk] = _bit(m1)
            out[img, 2, blk] = _bit(m2)
            out[img, 3, blk] = _bit(m3)
    return out
