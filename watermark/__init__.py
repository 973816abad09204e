"""``provguard.watermark``: embed and detect image and text watermarks, with exact p-values.

Public API (exported lazily: ``import provguard.watermark`` loads nothing heavy)::

    from provguard.watermark import create_image_watermark, list_image_watermarks
    from provguard.watermark import create_scheme, list_schemes, TextWatermarkDetector, generate

- images: :mod:`~provguard.watermark.image` (``"sd"``: the Stable Diffusion / SDXL mark; ``"provguard"``: keyed);
- texts: :mod:`~provguard.watermark.text` (KGW green lists: ``LogitsProcessor`` to embed, a tokenizer-only detector);
- :mod:`~provguard.watermark.prf` — the hash-based PRF behind every key-derived pattern.
"""
from __future__ import annotations

from provguard.lazy import lazy_exports

_IMAGE, _TEXT = "provguard.watermark.image", "provguard.watermark.text"
_EXPORTS = {
    "ImageDetection": _IMAGE, "ImageWatermark": _IMAGE, "create_image_watermark": _IMAGE,
    "list_image_watermarks": _IMAGE, "needs_key": _IMAGE,
    "TextDetection": _TEXT, "TextWatermarkDetector": _TEXT, "KGWLogitsProcessor": _TEXT, "create_scheme": _TEXT,
    "list_schemes": _TEXT, "generate": _TEXT, "load_model": _TEXT, "load_tokenizer": _TEXT,
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
