"""The common currency of every detector: :class:`Item` in, :class:`Evidence` out.

A detector looks at one item (an image file, an in-memory image or a text) and returns one or more
pieces of evidence. Evidence never says more than its detector knows: a missing signal is "no
opinion" (``verdict="none"``), never "real".

Reason codes are ``family:detail`` strings (``c2pa:trusted:trainedAlgorithmicMedia``,
``png-text:comfyui``, ``clip-probe:above-threshold``); the *family* (text before the first colon)
names the tier that fusion places the evidence in, see :mod:`provguard.detectors.fusion`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

SYNTHETIC = "synthetic"
REAL = "real"
NONE = "none"          # no opinion
UNCERTAIN = "uncertain"  # fused verdict only: evidence was weighed and did not settle the question

STRONG, MEDIUM, WEAK = "strong", "medium", "weak"
STRENGTHS = (STRONG, MEDIUM, WEAK)

# Tiers, in the default fusion order (cheapest-and-most-trustworthy first).
TIER_SIGNED = "signed-provenance"
TIER_WATERMARK = "watermark"
TIER_UNSIGNED = "unsigned-metadata"
TIER_CLASSIFIER = "classifier"
TIERS = (TIER_SIGNED, TIER_WATERMARK, TIER_UNSIGNED, TIER_CLASSIFIER)


@dataclass
class Evidence:
    """One signal about one item.

    Attributes:
        detector: the detector's name, e.g. ``"c2pa"``, ``"png-text"``, ``"sd-watermark"``.
        verdict: ``"synthetic"``, ``"real"`` or ``"none"`` (no opinion).
        score: the detector's statistic, higher = more synthetic (units are the detector's own:
            a probe's logit, a watermark's z-score, 1.0 for a declared label).
        p_value: P(statistic >= observed | not synthetic) where it is known, else ``None``.
        reason: machine-readable code ``family:detail``.
        strength: ``"strong"`` (cryptographically signed or exact-p-value), ``"medium"`` (unsigned
            but specific, e.g. a generator's text chunk), ``"weak"`` (reported for audit only).
        tier: one of :data:`TIERS`; where fusion weighs this evidence.
        detail: anything a person needs to audit the call (JSON-serialisable).
    """

    detector: str
    verdict: str
    score: float
    p_value: float | None
    reason: str
    strength: str = WEAK
    tier: str = TIER_UNSIGNED
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.verdict not in (SYNTHETIC, REAL, NONE):
            raise ValueError(f"Evidence.verdict must be synthetic/real/none, got {self.verdict!r}")
        if self.strength not in STRENGTHS:
            raise ValueError(f"Evidence.strength must be one of {STRENGTHS}, got {self.strength!r}")
        if self.tier not in TIERS:
            raise ValueError(f"Evidence.tier must be one of {TIERS}, got {self.tier!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"detector": self.detector, "verdict": self.verdict, "score": float(self.score),
                "p_value": None if self.p_value is None else float(self.p_value), "reason": self.reason,
                "strength": self.strength, "tier": self.tier, "detail": self.detail}


class Item:
    """One thing to judge: an image file (``path``), image bytes, an RGB array, or a text.

    Decoding is lazy and cached, so cheap detectors (metadata) never pay for pixels.
    """

    def __init__(self, path: str | Path | None = None, data: bytes | None = None,
                 rgb: np.ndarray | None = None, text: str | None = None, name: str | None = None):
        if path is None and data is None and rgb is None and text is None:
            raise ValueError("Item needs a path, bytes, an RGB array or a text")
        self.path = Path(path) if path is not None else None
        self._data = data
        self._rgb = rgb
        self.text = text
        self.name = name or (str(path) if path is not None else "<memory>")

    @property
    def data(self) -> bytes | None:
        """The file's bytes (read once), or ``None`` for an array/text item."""
        if self._data is None and self.path is not None:
            self._data = self.path.read_bytes()
        return self._data

    def rgb(self) -> np.ndarray:
        """``uint8`` RGB ``(H, W, 3)``; raises :class:`~provguard.errors.InputError` on bad files."""
        if self._rgb is None:
            from provguard.imaging.io import decode_image

            if self.data is None:
                raise ValueError(f"{self.name}: a text item has no pixels")
            self._rgb = decode_image(self.data, name=self.name)
        return self._rgb

    def release_pixels(self) -> None:
        """Drop decoded pixels that can be decoded again from the file or bytes (saves memory)."""
        if self.path is not None or self._data is not None:
            self._rgb = None

    def content_hash(self) -> str:
        """SHA-256 of the file bytes (``file:``) or of the array (``rgb:``): the embedding-cache key."""
        if self.data is not None:
            return "file:" + hashlib.sha256(self.data).hexdigest()
        if self._rgb is not None:
            return rgb_hash(self._rgb)
        return "text:" + hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def rgb_hash(rgb: np.ndarray) -> str:
    """Content key of an in-memory ``uint8`` image (shape is part of the key)."""
    arr = np.ascontiguousarray(rgb, dtype=np.uint8)
    h = hashlib.sha256(repr(arr.shape).encode())
    h.update(arr.tobytes())
    return "rgb:" + h.hexdigest()


#: reason suffix of "not applicable" evidence: the detector could not look, for a legitimate reason
NOT_APPLICABLE = "not-applicable"


def not_applicable(detector: str, family: str, why: str, tier: str) -> Evidence:
    """Evidence that ``detector`` cannot run on this item for a legitimate reason (an image below the
    method's minimum size, no alpha channel, no text): verdict none, reason ``<family>:not-applicable``,
    ``detail["not_applicable"] = why``. It is not an error (the file is fine), never a reason for a
    decision, and runs count it per detector."""
    return Evidence(detector, NONE, float("nan"), None, f"{family}:{NOT_APPLICABLE}", WEAK, tier,
                    {"not_applicable": why})


def is_not_applicable(e: Evidence | dict) -> bool:
    """Whether ``e`` (an :class:`Evidence` or its dict) is "not applicable" evidence."""
    reason = e["reason"] if isinstance(e, dict) else e.reason
    return reason.endswith(":" + NOT_APPLICABLE)


@runtime_checkable
class Detector(Protocol):
    """Anything that turns items into evidence.

    ``tier`` places the detector in the fusion order; ``cost`` (seconds per item, rough) orders the
    cascade within a tier. ``score_batch`` returns, for each item, a list of evidence (possibly
    empty: "nothing to say"); it must not raise for one bad item — it returns evidence with
    ``reason="<family>:error"`` and the message in ``detail["error"]`` instead, or
    :func:`not_applicable` evidence when the item is fine but outside what the detector can read.
    """

    name: str
    tier: str
    cost: float

    def score_batch(self, items: Sequence[Item]) -> list[list[Evidence]]: ...
