"""Everyday image transformations ("attacks") that a robust watermark must survive.

Each attack maps uint8 RGB ``(H, W, 3)`` to uint8 RGB (the size may change). ``ATTACKS`` holds the
suite of issue #2 and the W-Bench/WAVES-style extras, by name; ``REQUIRED`` names the ones the
``provguard`` watermark's goal (TPR >= 0.95 at FPR 1e-3) is stated for.
"""
from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

Attack = Callable[[np.ndarray], np.ndarray]


def _pil(a: np.ndarray) -> Image.Image:
    return Image.fromarray(a, "RGB")


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def jpeg(quality: int, subsampling: int = 2) -> Attack:
    """JPEG re-encode; ``subsampling`` 2 = 4:2:0, 0 = 4:4:4."""
    def attack(a):
        buf = io.BytesIO()
        _pil(a).save(buf, format="JPEG", quality=quality, subsampling=subsampling)
        return _arr(Image.open(io.BytesIO(buf.getvalue())))
    return attack


def webp(quality: int) -> Attack:
    def attack(a):
        buf = io.BytesIO()
        _pil(a).save(buf, format="WEBP", quality=quality)
        return _arr(Image.open(io.BytesIO(buf.getvalue())))
    return attack


def resize(scale: float, round_trip: bool = False) -> Attack:
    """Bicubic resize by ``scale`` (read at the new size, or resized back when ``round_trip``)."""
    def attack(a):
        h, w = a.shape[:2]
        small = _pil(a).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BICUBIC)
        return _arr(small.resize((w, h), Image.BICUBIC) if round_trip else small)
    return attack


def center_crop(fraction: float) -> Attack:
    """Keep the centre ``fraction`` of each side."""
    def attack(a):
        h, w = a.shape[:2]
        ch, cw = round(h * fraction), round(w * fraction)
        top, left = (h - ch) // 2, (w - cw) // 2
        return a[top:top + ch, left:left + cw].copy()
    return attack


def shift(pixels: int) -> Attack:
    """Translate the content right and down by ``pixels``, replicating the edge into the gap."""
    def attack(a):
        return np.pad(a, ((pixels, 0), (pixels, 0), (0, 0)), mode="edge")[: a.shape[0], : a.shape[1]].copy()
    return attack


def blur(sigma: float) -> Attack:
    def attack(a):
        return _arr(_pil(a).filter(ImageFilter.GaussianBlur(radius=sigma)))
    return attack


def noise(sigma: float, seed: int = 0) -> Attack:
    """Additive Gaussian noise with standard deviation ``sigma`` in 0..255 units."""
    def attack(a):
        rng = np.random.default_rng(seed)
        return np.clip(np.rint(a + rng.normal(0, sigma, a.shape)), 0, 255).astype(np.uint8)
    return attack


def enhance(kind: str, factor: float) -> Attack:
    """Pillow ``ImageEnhance.Brightness``/``Contrast`` by ``factor`` (1.2 = +20%)."""
    cls = {"brightness": ImageEnhance.Brightness, "contrast": ImageEnhance.Contrast}[kind]

    def attack(a):
        return _arr(cls(_pil(a)).enhance(factor))
    return attack


def rotate(degrees: float) -> Attack:
    def attack(a):
        return _arr(_pil(a).rotate(degrees, resample=Image.BICUBIC))
    return attack


def chain(*attacks: Attack) -> Attack:
    def attack(a):
        for step in attacks:
            a = step(a)
        return a
    return attack


ATTACKS: dict[str, Attack] = {
    "none": lambda a: a.copy(),
    "jpeg95-420": jpeg(95, 2),
    "jpeg95-444": jpeg(95, 0),
    "jpeg75-420": jpeg(75, 2),
    "jpeg75-444": jpeg(75, 0),
    "jpeg50-420": jpeg(50, 2),
    "webp75": webp(75),
    "resize0.5": resize(0.5),
    "resize0.5-back": resize(0.5, round_trip=True),
    "resize0.75": resize(0.75),
    "crop0.9": center_crop(0.9),
    "crop0.75": center_crop(0.75),
    "crop0.5": center_crop(0.5),
    "shift4": shift(4),
    "blur1": blur(1.0),
    "noise5": noise(5.0),
    "brightness+20": enhance("brightness", 1.2),
    "brightness-20": enhance("brightness", 0.8),
    "contrast+20": enhance("contrast", 1.2),
    "contrast-20": enhance("contrast", 0.8),
    "recompress3": chain(jpeg(75, 2), jpeg(75, 2), jpeg(75, 2)),
    "rotate2": rotate(2.0),
}

#: the transformations issue #2 states the provguard watermark's TPR goal for
REQUIRED = ("none", "jpeg50-420", "webp75", "resize0.5", "crop0.75", "shift4", "blur1", "noise5",
            "brightness+20", "brightness-20", "contrast+20", "contrast-20", "recompress3")
