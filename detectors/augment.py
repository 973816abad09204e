"""Seeded image augmentation for probe training, and the fixed "format-fair" views for evaluation.

Training views follow Wang et al. (CVPR 2020, "CNN-generated images are surprisingly easy to spot...
for now"): random crop, rescale, blur and JPEG re-encoding, so that a probe cannot separate the
classes by container, size or compression. Every training view is re-encoded as JPEG (quality 60-95):
the corpus's synthetic images are mostly PNG and its photos mostly JPEG, and a view that keeps its
original container would let "has JPEG blocking" stand in for "is a photo".

Evaluation views are deterministic: ``format_fair`` re-encodes both classes identically (JPEG q90,
short side at most 512 px); ``degraded`` is the format-fair view shrunk 0.5x and re-saved at JPEG q75.
All functions take and return ``uint8 (H, W, 3)`` RGB arrays.
"""
from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image, ImageFilter

JPEG_QUALITY = (60, 95)     # inclusive range of training re-encodes
SCALE = (0.5, 1.5)          # per-side rescale factor range
CROP_FRACTION = (0.6, 1.0)  # side of the random crop, as a fraction of each image side
BLUR_PROB, BLUR_SIGMA = 0.3, (0.2, 1.5)  # Gaussian blur: probability, sigma range (px)
MIN_SIDE = 32               # views are never made smaller than this (px)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Re-encode as baseline JPEG (4:2:0 chroma, Pillow defaults) at ``quality`` and decode again."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def rescale(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Bicubic rescale of both sides by ``factor``, never below :data:`MIN_SIDE` px."""
    h, w = rgb.shape[:2]
    f = max(float(factor), MIN_SIDE / min(h, w)) if min(h, w) >= MIN_SIDE else 1.0
    size = (max(1, round(w * f)), max(1, round(h * f)))
    if size == (w, h):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))


def cap_short_side(rgb: np.ndarray, limit: int = 512) -> np.ndarray:
    """Shrink (bicubic) so the short side is at most ``limit`` px; smaller images are left alone."""
    h, w = rgb.shape[:2]
    return rescale(rgb, limit / min(h, w)) if min(h, w) > limit else rgb


def format_fair(rgb: np.ndarray) -> np.ndarray:
    """The evaluation copy every class gets: short side <= 512 px, then JPEG q90."""
    return jpeg(cap_short_side(rgb, 512), 90)


def degraded(rgb: np.ndarray) -> np.ndarray:
    """The format-fair copy shrunk 0.5x (bicubic) and re-saved at JPEG q75: a scraped, re-posted image."""
    return jpeg(rescale(format_fair(rgb), 0.5), 75)


def view_seed(key: str, index: int, seed: int = 0) -> int:
    """A stable 64-bit seed for training view ``index`` of the image with content key ``key``."""
    return int.from_bytes(hashlib.sha256(f"{seed}|{key}|{index}".encode()).digest()[:8], "little")


def training_view(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random training view: crop, rescale, maybe blur, JPEG re-encode (all drawn from ``rng``)."""
    h, w = rgb.shape[:2]
    ch = max(1, round(h * rng.uniform(*CROP_FRACTION)))
    cw = max(1, round(w * rng.uniform(*CROP_FRACTION)))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    out = rescale(np.ascontiguousarray(rgb[top:top + ch, left:left + cw]), rng.uniform(*SCALE))
    if rng.random() < BLUR_PROB:
        radius = rng.uniform(*BLUR_SIGMA)
        out = np.asarray(Image.fromarray(out).filter(ImageFilter.GaussianBlur(radius)))
    return jpeg(out, int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)))


def training_views(rgb: np.ndarray, key: str, count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` training views of one image, reproducible from its content ``key`` and ``seed``."""
    return [training_view(rgb, np.random.default_rng(view_seed(key, i, seed))) for i in range(count)]
