"""Image watermarks: one interface (embed a batch, detect with exact p-values), several methods.

    >>> from provguard.watermark.image import create_image_watermark, list_image_watermarks
    >>> wm = create_image_watermark("provguard", key=b"secret")
    >>> marked = wm.embed(images, payload=0xC0FFEE)          # list of uint8 (H, W, 3)
    >>> [r.p_value for r in wm.detect(marked, fpr=1e-3)]

Methods: ``"sd"`` reads and writes the Stable Diffusion / SDXL invisible watermark (public, no key);
``"provguard"`` is the project's keyed robust watermark.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from provguard.errors import BadArgument

if TYPE_CHECKING:
    from provguard.watermark.image.base import ImageWatermark


@dataclass(frozen=True)
class ImageWatermarkInfo:
    """A registered image watermark: its class (``module``, ``cls``), whether it needs a secret key
    (``keyed``), and its relative detection cost per image (``cost``: the cascade runs cheap detectors first)."""

    module: str
    cls: str
    keyed: bool
    cost: float


_REGISTRY = {
    "sd": ImageWatermarkInfo("provguard.watermark.image.sd", "SDWatermark", keyed=False, cost=0.01),
    "provguard": ImageWatermarkInfo("provguard.watermark.image.keyed", "ProvguardWatermark", keyed=True, cost=0.03),
}


def list_image_watermarks() -> list[str]:
    """Names accepted by :func:`create_image_watermark`."""
    return sorted(_REGISTRY)


def image_watermark_info(method: str) -> ImageWatermarkInfo:
    """The registry entry of ``method``; :class:`~provguard.errors.BadArgument` for an unknown name."""
    if method not in _REGISTRY:
        raise BadArgument(f"unknown image watermark {method!r} ({{name}}); choose from {list_image_watermarks()}",
                          "method")
    return _REGISTRY[method]


def needs_key(method: str) -> bool:
    """Whether ``method`` needs a secret key."""
    return image_watermark_info(method).keyed


def create_image_watermark(method: str, key=None, **options) -> "ImageWatermark":
    """Build an image watermark by name (``list_image_watermarks()``); ``key`` for keyed methods."""
    info = image_watermark_info(method)
    klass = getattr(importlib.import_module(info.module), info.cls)
    if info.keyed:
        from provguard.keys import as_key, resolve_key

        return klass(key=as_key(key) if key is not None else resolve_key(), **options)  # None: $PROVGUARD_KEY
    return klass(**options)


__all__ = ["ImageDetection", "ImageWatermark", "ImageWatermarkInfo", "create_image_watermark", "image_watermark_info",
           "list_image_watermarks", "needs_key"]


def __getattr__(name: str):  # the base classes load torch: only on first use, so the registry stays cheap
    if name in ("ImageDetection", "ImageWatermark"):
        return getattr(importlib.import_module("provguard.watermark.image.base"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
