"""Reading and writing images: any mode Pillow opens becomes 8-bit RGB; bad files become clear errors.

Conversions (never refusals): RGBA/LA (alpha dropped: the stored colour values are what a watermark
lives in), grey, 1-bit, palette (with or without transparency), CMYK and YCbCr, and 16-bit or float
greyscale (rescaled to 8 bits from the integer or [0, 1] range, not clipped). Refusals, each an
:class:`~provguard.errors.InputError` whose message says what to do: files Pillow cannot identify
(not an image, zero bytes), truncated or corrupt files, animated images (several frames), and
decompression bombs (more than ``Image.MAX_IMAGE_PIXELS`` pixels).
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from provguard.errors import InputError

# Pillow format name -> (file suffix, save options that keep quality)
_SAVE_OPTIONS = {
    "PNG": {"optimize": False},
    "JPEG": {"quality": 95, "subsampling": 0},
    "WEBP": {"lossless": True},
    "TIFF": {},
    "BMP": {},
}
#: file suffixes treated as images when walking folders (lower case, with the dot)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
_SUFFIX_FORMAT = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
                  ".tiff": "TIFF", ".bmp": "BMP", ".gif": "PNG"}


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """Convert any Pillow image to a contiguous ``uint8`` array of shape ``(H, W, 3)``."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max(initial=0) > 255 or mode.startswith("I;16") else 255.0
        grey = np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        scale = 255.0 if arr.max(initial=0) <= 1.0 else 1.0
        grey = np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


class AnimatedImageError(InputError):
    """An animated file (GIF, APNG, WebP) where one still image was expected."""


def decode_image(data: bytes | os.PathLike | str, name: str | None = None, first_frame: bool = False) -> np.ndarray:
    """Decode an image file (path or bytes) into ``uint8`` RGB of shape ``(H, W, 3)``.

    Raises :class:`InputError` with an actionable message for anything that is not one readable
    still image; an animated file raises :class:`AnimatedImageError` unless ``first_frame`` (then
    its first frame is returned, as a classifier that judges one picture may do).
    """
    label = name or (str(data) if not isinstance(data, bytes) else "<bytes>")
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        if not isinstance(data, bytes) and os.path.getsize(data) == 0:
            raise InputError(f"{label}: the file is empty (0 bytes); re-download or re-export it")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                frames = getattr(img, "n_frames", 1)
                if frames > 1 and getattr(img, "is_animated", False) and not first_frame:
                    raise AnimatedImageError(
                        f"{label}: animated image with {frames} frames; provguard reads still images "
                        "only: extract the frames first (e.g. `ffmpeg -i in.gif frame_%03d.png`)")
                img.load()
                return _to_rgb8(img)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(
            f"{label}: refused as a possible decompression bomb ({exc}); if you trust the file, raise "
            "PIL.Image.MAX_IMAGE_PIXELS before calling provguard") from None
    except UnidentifiedImageError:
        raise InputError(f"{label}: not an image Pillow can read (wrong extension, or not an image file)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{label}: cannot decode the image ({exc}); the file may be truncated or corrupt") from None


def load_image(path: os.PathLike | str) -> np.ndarray:
    """Read ``path`` as ``uint8`` RGB ``(H, W, 3)``; see :func:`decode_image` for the errors."""
    try:
        return decode_image(path)
    except PermissionError:
        raise InputError(f"{path}: permission denied; check the file's read permissions") from None


def save_image(array: np.ndarray, path: os.PathLike | str) -> Path:
    """Write ``uint8`` RGB ``(H, W, 3)`` to ``path`` losslessly where the format allows.

    The format follows the suffix (GIF input is written as PNG, since a GIF palette would destroy a
    watermark; the returned path carries the real suffix). The file is written to a temporary name
    and renamed, so a crash never leaves a half-written file.
    """
    path = Path(path)
    fmt = _SUFFIX_FORMAT.get(path.suffix.lower(), "PNG")
    if path.suffix.lower() == ".gif" or path.suffix.lower() not in _SUFFIX_FORMAT:
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8), "RGB").save(tmp, format=fmt, **_SAVE_OPTIONS[fmt])
    os.replace(tmp, path)
    return path
