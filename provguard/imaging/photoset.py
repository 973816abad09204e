"""Deterministic image sets built from the packaged photos: splits, fixed-size tiles, random views.

Splits are decided by a hash of each photo's name, so calibration and test sets never share a photo
and stay the same on every machine. Views (crops at several scales, optional JPEG re-encoding) give
many distinct unwatermarked images per photo for null calibration; they are not independent draws
from "all photos in the wild", and the README says so.
"""
from __future__ import annotations

import hashlib
import io
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from provguard.imaging.io import load_image
from provguard.imaging.photos import PackagedImage


def split_of(image: PackagedImage, parts: int = 2) -> int:
    """Which of ``parts`` splits a packaged image belongs to (stable hash of its name)."""
    return hashlib.sha256(image.name.encode()).digest()[0] % parts


def load_reduced(image: PackagedImage, max_side: int = 2048) -> np.ndarray:
    """Load a packaged image, downscaled (JPEG draft + Lanczos) so its longer side is <= ``max_side``."""
    with Image.open(image.path) as img:
        img.draft("RGB", (max_side, max_side))
        scale = max_side / max(img.size)
        if scale < 1:
            img = img.convert("RGB").resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
            return np.asarray(img, dtype=np.uint8).copy()
    return load_image(image.path)


def tiles(images: Sequence[PackagedImage], size: int = 512, per_image: int = 1,
          max_side: int = 2048) -> list[np.ndarray]:
    """``per_image`` square tiles per photo: the centre tile first, then corner-ward crops."""
    out = []
    for item in images:
        full = load_reduced(item, max_side)
        h, w = full.shape[:2]
        s = min(h, w)
        offsets = [((h - s) // 2, (w - s) // 2), (0, 0), (h - s, w - s), (0, w - s), (h - s, 0)]
        for top, left in offsets[:per_image]:
            crop = full[top:top + s, left:left + s]
            out.append(np.asarray(Image.fromarray(crop).resize((size, size), Image.LANCZOS), dtype=np.uint8).copy())
    return out


def random_views(image: np.ndarray, count: int, rng: np.random.Generator, min_side: int = 256,
                 max_side: int = 1024, jpeg_probability: float = 0.5) -> Iterator[np.ndarray]:
    """``count`` random views of ``image``: a crop of random size/position, rescaled so the shorter
    side is in [min_side, max_side], JPEG re-encoded (q 60..100, 4:2:0) with ``jpeg_probability``."""
    h, w = image.shape[:2]
    for _ in range(count):
        frac = rng.uniform(0.3, 1.0)
        ch, cw = max(min_side, int(h * frac)), max(min_side, int(w * rng.uniform(0.3, 1.0)))
        ch, cw = min(ch, h), min(cw, w)
        top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        view = Image.fromarray(image[top:top + ch, left:left + cw])
        short = rng.integers(min_side, max_side + 1)
        scale = max(short / min(ch, cw), min_side / min(ch, cw))
        if scale < 1:
            view = view.resize((max(min_side, round(cw * scale)), max(min_side, round(ch * scale))),
                               Image.LANCZOS, reducing_gap=3.0)
        if rng.random() < jpeg_probability:
            buf = io.BytesIO()
            view.save(buf, format="JPEG", quality=int(rng.integers(60, 101)), subsampling=2)
            view = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
        yield np.asarray(view, dtype=np.uint8).copy()



def pyramid(image: np.ndarray, min_side: int = 256, levels_per_octave: int = 4) -> tuple[list[float], list[np.ndarray]]:
    """``(scales, levels)``: ``image`` Lanczos-resized by ``2 ** (-j / levels_per_octave)`` for
    ``j = 0, 1, ...`` while the shorter side stays >= ``min_side`` (level 0 is ``image`` itself)."""
    h, w = image.shape[:2]
    if min(h, w) < min_side:
        raise ValueError(f"image is {w}x{h}; a pyramid needs both sides >= min_side={min_side}")
    steps = int(np.floor(np.log2(min(h, w) / min_side) * levels_per_octave)) + 1
    scales = [2.0 ** (-j / levels_per_octave) for j in range(steps)]
    src = Image.fromarray(image)
    levels = [image] + [np.asarray(src.resize((round(w * s), round(h * s)), Image.LANCZOS, reducing_gap=3.0),
                                   dtype=np.uint8) for s in scales[1:]]
    return scales, levels
