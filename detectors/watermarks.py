"""Watermark detectors as :class:`~provguard.detectors.evidence.Detector`\\ s.

Each watermark detector already returns an exact p-value under "not watermarked"; the adapters
pass it through untouched (fusion decides at ``Policy.watermark_alpha``). A mark that is not found
is *no opinion* — unmarked content is what most real and most synthetic content looks like.

Reasons: ``watermark:<method>:detected`` (verdict synthetic, strength strong) and
``watermark:<method>:absent`` (verdict none), ``watermark:<method>:not-applicable`` (the item is fine
but the method cannot read it: an image below its minimum size, a text item for an image mark, an
empty or too-short text), ``watermark:<method>:error`` (cannot be checked: a broken item).
"""
from __future__ import annotations

from typing import Any, Sequence

from provguard.detectors.evidence import NONE, STRONG, SYNTHETIC, TIER_WATERMARK, WEAK, Evidence, Item, not_applicable
from provguard.errors import InputError, NotApplicable


def _evidence(name: str, method: str, detected: bool, p_value: float, statistic: float, detail: dict) -> Evidence:
    return Evidence(detector=name, verdict=SYNTHETIC if detected else NONE, score=float(statistic),
                    p_value=float(p_value), reason=f"watermark:{method}:{'detected' if detected else 'absent'}",
                    strength=STRONG if detected else WEAK, tier=TIER_WATERMARK, detail=detail)


def _error(name: str, method: str, message: str) -> Evidence:
    return Evidence(detector=name, verdict=NONE, score=float("nan"), p_value=None,
                    reason=f"watermark:{method}:error", strength=WEAK, tier=TIER_WATERMARK, detail={"error": message})


class ImageWatermarkDetector:
    """Adapter for a :mod:`provguard.watermark.image` method (its registry entry gives the ``cost``).

    ``fpr`` is passed to the watermark's own ``detect`` (its ``detected`` flag); fusion re-decides
    from the p-value at the policy's ``watermark_alpha``.
    """

    tier = TIER_WATERMARK

    def __init__(self, method: str, key: Any = None, fpr: float = 1e-3, watermark=None):
        from provguard.watermark.image import create_image_watermark, image_watermark_info

        self.method, self.fpr = method, fpr
        self.name = f"{method}-watermark"
        self.cost = image_watermark_info(method).cost
        self.watermark = watermark or create_image_watermark(method, key=key)

    def _one(self, rgb) -> Evidence:
        try:
            r = self.watermark.detect([rgb], fpr=self.fpr)[0]
        except NotApplicable as exc:
            return not_applicable(self.name, f"watermark:{self.method}", str(exc), TIER_WATERMARK)
        except InputError as exc:
            return _error(self.name, self.method, str(exc))
        return self._convert(r)

    def _convert(self, r) -> Evidence:
        detail = {"bits_matched": r.bits_matched, "bits_total": r.bits_total, "payload": r.payload, **(r.detail or {})}
        return _evidence(self.name, self.method, bool(r.p_value <= self.fpr), r.p_value, r.statistic, detail)

    def score_batch(self, items: Sequence[Item]) -> list[list[Evidence]]:
        arrays, out = [], [None] * len(items)
        for i, it in enumerate(items):
            try:
                arrays.append((i, it.rgb()))
            except InputError as exc:
                out[i] = [_error(self.name, self.method, str(exc))]
        if arrays:
            try:
                results = [self._convert(r) for r in self.watermark.detect([a for _, a in arrays], fpr=self.fpr)]
            except InputError:  # one image the method cannot take: score them one by one
                results = [self._one(a) for _, a in arrays]
            for (i, _), ev in zip(arrays, results):
                out[i] = [ev]
        return out


class TextWatermarkAdapter:
    """Adapter for a :mod:`provguard.watermark.text` detector (anything with ``detect(texts)`` returning
    results that carry ``p_value``, ``z``, ``tokens_scored`` and ``error``, the last meaning that nothing
    could be scored: empty or too-short text). Items without ``text`` get "not applicable" evidence."""

    tier, cost = TIER_WATERMARK, 0.002

    def __init__(self, detector, method: str = "text", fpr: float = 1e-3):
        self.detector, self.method, self.fpr = detector, method, fpr
        self.name = f"{method}-watermark"

    def score_batch(self, items: Sequence[Item]) -> list[list[Evidence]]:
        texts = [it.text for it in items]
        idx = [i for i, t in enumerate(texts) if t is not None]
        family = f"watermark:{self.method}"
        out: list[list[Evidence]] = [[not_applicable(self.name, family, "not a text item", TIER_WATERMARK)]
                                     for _ in items]
        for i, r in zip(idx, self.detector.detect([texts[i] for i in idx]) if idx else []):
            if getattr(r, "error", None):  # nothing to score: an empty or too-short text
                out[i] = [not_applicable(self.name, family, r.error, TIER_WATERMARK)]
            else:
                detail = {"tokens_scored": getattr(r, "tokens_scored", None), "green": getattr(r, "green", None)}
                out[i] = [_evidence(self.name, self.method, bool(r.p_value <= self.fpr), r.p_value, getattr(r, "z", 0.0), detail)]
        return out
