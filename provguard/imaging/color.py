"""Colour conversions that reproduce OpenCV's ``cvtColor`` BGR<->YUV exactly, batched in torch.

The Stable Diffusion watermark (invisible-watermark's ``dwtDct``) lives in the U channel of OpenCV's
YUV, and OpenCV computes it differently for the two pixel types generators use:

* ``uint8``: 14-bit fixed-point integers, chroma offset 128 (``RGB2YUV_i`` / ``YUV2RGB_i``);
* ``float32``: single-precision floats, chroma offset **0.5** whatever the value range, so a
  float32 image holding 0..255 values gets U centred on 0.5, not 128 (see invisible-watermark issue #39 and the README).

All functions take and return tensors of shape ``(..., H, W, 3)`` in the channel order named (BGR,
as OpenCV stores it). Integer results are returned as ``int32`` (uint8 range after saturation).
"""
from __future__ import annotations

import torch

_SHIFT = 14
_HALF = 1 << (_SHIFT - 1)
# BT.601 coefficients as OpenCV stores them (color_yuv.simd.hpp)
_R2Y, _G2Y, _B2Y = 4899, 9617, 1868
_B2UI, _R2VI = 8061, 14369
_U2BI, _U2GI, _V2GI, _V2RI = 33292, -6472, -9519, 18678
_R2YF, _G2YF, _B2YF = 0.299, 0.587, 0.114
_B2UF, _R2VF = 0.492, 0.877
_U2BF, _U2GF, _V2GF, _V2RF = 2.032, -0.395, -0.581, 1.140


def _descale(x: torch.Tensor) -> torch.Tensor:
    return (x + _HALF) >> _SHIFT


def bgr_to_yuv_u8(bgr: torch.Tensor) -> torch.Tensor:
    """OpenCV ``COLOR_BGR2YUV`` on uint8 pixels. ``bgr``: integer ``(..., H, W, 3)`` -> int32 YUV."""
    b, g, r = bgr.to(torch.int32).unbind(-1)
    y = _descale(b * _B2Y + g * _G2Y + r * _R2Y)
    delta = 128 << _SHIFT
    u = _descale((b - y) * _B2UI + delta)
    v = _descale((r - y) * _R2VI + delta)
    return torch.stack([y, u, v], -1).clamp_(0, 255)


def bgr_u_channel_u8(bgr: torch.Tensor) -> torch.Tensor:
    """Only the U plane of :func:`bgr_to_yuv_u8`, shape ``(..., H, W)`` int32 (cheaper for decoding)."""
    b, g, r = bgr.to(torch.int32).unbind(-1)
    y = _descale(b * _B2Y + g * _G2Y + r * _R2Y)
    return _descale((b - y) * _B2UI + (128 << _SHIFT)).clamp_(0, 255)


def yuv_to_bgr_u8(yuv: torch.Tensor) -> torch.Tensor:
    """OpenCV ``COLOR_YUV2BGR`` on uint8 pixels. ``yuv``: integer ``(..., H, W, 3)`` -> int32 BGR."""
    y, u, v = yuv.to(torch.int32).unbind(-1)
    u = u - 128
    v = v - 128
    b = y + _descale(u * _U2BI)
    g = y + _descale(u * _U2GI + v * _V2GI)
    r = y + _descale(v * _V2RI)
    return torch.stack([b, g, r], -1).clamp_(0, 255)


_SIMD_LANES = 8  # OpenCV's AVX2 colour kernels take 8 float32 pixels at a time; the rest of a row is scalar code


def _f32(value: float) -> float:
    """The float32 value of a constant (OpenCV stores its coefficients as ``float``)."""
    return float(torch.tensor(value, dtype=torch.float32))


def _fma(a: torch.Tensor, b: float, c: torch.Tensor | float) -> torch.Tensor:
    """``fl32(a * b + c)`` with one rounding, as OpenCV's ``v_fma`` (FMA3): the product of two floats
    is exact in float64, so only the final cast rounds (a double rounding differs once in ~2**29)."""
    c = c.to(torch.float64) if isinstance(c, torch.Tensor) else c
    return (a.to(torch.float64) * b + c).to(torch.float32)


def _simd_columns(width: int, device) -> torch.Tensor:
    """bool ``(width,)``: the pixels of a row that OpenCV's vector loop converts (the rest: scalar tail)."""
    return torch.arange(width, device=device) < width - width % _SIMD_LANES


def bgr_to_yuv_f32(bgr: torch.Tensor) -> torch.Tensor:
    """OpenCV ``COLOR_BGR2YUV`` on float32 pixels (chroma offset 0.5), bit for bit on a CPU with
    AVX2+FMA (the wheels' dispatch): ``Y = fma(B, .114, fma(G, .587, R * .299))`` in the vector loop,
    ``fma(R, .299, fma(B, .114, G * .587))`` in each row's scalar tail (OpenCV <= 4.13; later versions
    run the tail through the vector kernel too); ``U = fma(B - Y, .492, .5)``,
    ``V = fma(R - Y, .877, .5)``. Shapes as above, float32. The reader's plain-product U plane
    (:func:`bgr_u_channel_f32`) can differ from this in the last bit."""
    b, g, r = bgr.to(torch.float32).unbind(-1)
    cb, cg, cr = _f32(_B2YF), _f32(_G2YF), _f32(_R2YF)
    y = torch.where(_simd_columns(b.shape[-1], b.device), _fma(b, cb, _fma(g, cg, r * cr)),
                    _fma(r, cr, _fma(b, cb, g * cg)))
    u = _fma(b - y, _f32(_B2UF), 0.5)
    v = _fma(r - y, _f32(_R2VF), 0.5)
    return torch.stack([y, u, v], -1)


def bgr_u_channel_f32(bgr: torch.Tensor) -> torch.Tensor:
    """Only the U plane of :func:`bgr_to_yuv_f32`, shape ``(..., H, W)`` float32."""
    b, g, r = bgr.to(torch.float32).unbind(-1)
    y = b * _B2YF + g * _G2YF + r * _R2YF
    return (b - y) * _B2UF + 0.5


def yuv_to_bgr_f32(yuv: torch.Tensor) -> torch.Tensor:
    """OpenCV ``COLOR_YUV2BGR`` on float32 pixels (chroma offset 0.5), bit for bit on AVX2+FMA:
    ``B = fma(U', 2.032, Y)``, ``G = fma(V', -.581, fma(U', -.395, Y))``, ``R = fma(V', 1.14, Y)`` with
    ``U' = U - .5``, ``V' = V - .5`` (vector loop and tail alike). float32 ``(..., H, W, 3)``."""
    y, u, v = yuv.to(torch.float32).unbind(-1)
    u = u - 0.5
    v = v - 0.5
    return torch.stack([_fma(u, _f32(_U2BF), y), _fma(v, _f32(_V2GF), _fma(u, _f32(_U2GF), y)),
                        _fma(v, _f32(_V2RF), y)], -1)


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of float RGB ``(..., H, W, 3)`` -> ``(..., H, W)`` in the input's units."""
    rgb = rgb.to(torch.float32)
    return rgb[..., 0] * _R2YF + rgb[..., 1] * _G2YF + rgb[..., 2] * _B2YF
