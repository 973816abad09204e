"""Text watermarks: KGW green-list embedding, model-free batched detection, transformers interop.

Embed with :class:`KGWLogitsProcessor` (or :func:`generate` for a batch of prompts); detect with
:class:`TextWatermarkDetector`, which needs only a tokenizer and the key. Schemes are built by name
with :func:`create_scheme` (:func:`list_schemes`): ``provguard-*`` (device-independent hash PRF, any
secret bytes as key) and ``transformers-*`` (transformers' ``WatermarkingConfig`` green lists,
integer ``hashing_key``). Models and tokenizers load from a folder, a ``.gguf`` file, a bundled name
or a hub id with :func:`load_model` / :func:`load_tokenizer`.

Heavy imports (transformers) happen in :mod:`.generation` and :mod:`.loading`, loaded on first use.
"""
from __future__ import annotations

import importlib

from provguard.watermark.text.detector import TextDetection, TextSpan, TextWatermarkDetector
from provguard.watermark.text.normalize import normalize_text
from provguard.watermark.text.schemes import (DEFAULT_SCHEME, GreenListScheme, ProvguardScheme,
                                              TransformersScheme, create_scheme, list_schemes)
from provguard.watermark.text.stats import best_window, binomial_p_value, z_score

_LAZY = {
    "KGWLogitsProcessor": "provguard.watermark.text.generation",
    "Generation": "provguard.watermark.text.generation",
    "generate": "provguard.watermark.text.generation",
    "load_model": "provguard.watermark.text.loading",
    "load_tokenizer": "provguard.watermark.text.loading",
    "load_vocab_size": "provguard.watermark.text.loading",
    "list_bundled": "provguard.watermark.text.loading",
}

__all__ = ["DEFAULT_SCHEME", "GreenListScheme", "ProvguardScheme", "TransformersScheme", "TextDetection",
           "TextSpan", "TextWatermarkDetector", "best_window", "binomial_p_value", "create_scheme",
           "list_schemes", "normalize_text", "z_score", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
