"""Image watermarks: one interface (embed a batch, detect with exact p-values), several methods.

    >>> from provguard.watermark.image import create_image_watermark, list_image_watermarks
    >>> wm = create_image_watermark("provguard", key=b"secret")
    >>> marked = wm.embed(images, payload=0xC0FFEE)          # list of uint8 (H, W, 3)
    >>> [r.p_value for r in wm.detect(marked, fpr=1e-3)]

Methods: ``"sd"`` reads and writes the Stable Diffusion / SDXL invisible watermark (public, no key);
``"provguard"`` is the project's keyed robust watermark.
"""
from __future__ import annotations

from provguard.watermark.image.base import ImageDetection, ImageWatermark

_REGISTRY = {
    "sd": ("provguard.watermark.image.sd", "SDWatermark", False),
    "provguard": ("provguard.watermark.image.keyed", "ProvguardWatermark", True),
}


def list_image_watermarks() -> list[str]:
    """Names accepted by :func:`create_image_watermark`."""
    return sorted(_REGISTRY)


def needs_key(method: str) -> bool:
    """Whether ``method`` needs a secret key."""
    return _REGISTRY[method][2]


def create_image_watermark(method: str, key=None, **options) -> ImageWatermark:
    """Build an image watermark by name (``list_image_watermarks()``); ``key`` for keyed methods."""
    import importlib

    if method not in _REGISTRY:
        raise ValueError(f"unknown image watermark {method!r}; choose from {list_image_watermarks()}")
    module, cls, keyed = _REGISTRY[method]
    klass = getattr(importlib.import_module(module), cls)
    if keyed:
        from provguard.keys import as_key, resolve_key

        return klass(key=as_key(key) if key is not None else resolve_key(), **options)  # None: $PROVGUARD_KEY
    return klass(**options)


__all__ = ["ImageDetection", "ImageWatermark", "create_image_watermark", "list_image_watermarks", "needs_key"]
