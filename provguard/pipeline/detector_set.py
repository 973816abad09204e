"""Build the detector cascade a :class:`~provguard.pipeline.config.RunConfig` names.

Every detector is one of :mod:`provguard.detectors`' own (metadata, image/text watermark adapters,
the calibrated CLIP probe); this module only wires them and times them. Image detectors and text
detectors form two cascades, since no detector reads both.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from provguard.detectors.evidence import Evidence, Item
from provguard.errors import ProvguardError


class TimedDetector:
    """Wraps a detector and adds up the seconds its ``score_batch`` takes (``seconds``)."""

    def __init__(self, inner):
        self.inner, self.seconds, self.items = inner, 0.0, 0
        self.name, self.tier, self.cost = inner.name, inner.tier, inner.cost

    def score_batch(self, items: Sequence[Item]) -> list[list[Evidence]]:
        start = time.perf_counter()
        try:
            return self.inner.score_batch(items)
        finally:
            self.seconds += time.perf_counter() - start
            self.items += len(items)


@dataclass
class DetectorSet:
    """The two cascades plus what the run card records about them."""

    image: list[TimedDetector] = field(default_factory=list)
    text: list[TimedDetector] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_pixels(self) -> bool:
        """Whether any image detector decodes pixels (otherwise decoding is skipped)."""
        return any(d.name != "metadata" for d in self.image)

    def timings(self) -> dict[str, float]:
        return {d.name: d.seconds for d in self.image + self.text}


def _text_detector(spec, key, fpr: float):
    """The text-watermark detector for a :class:`~provguard.pipeline.config.TextWatermarkSpec`."""
    from provguard.detectors.watermarks import TextWatermarkAdapter
    from provguard.watermark.text import TextWatermarkDetector, create_scheme, load_tokenizer

    tokenizer = load_tokenizer(spec.tokenizer)
    vocab = None
    if spec.scheme.startswith("transformers"):
        from provguard.watermark.text import load_vocab_size

        vocab = load_vocab_size(spec.tokenizer, tokenizer)
    scheme = create_scheme(spec.scheme, key, spec.gamma, spec.context_width, vocab)
    return TextWatermarkAdapter(TextWatermarkDetector(tokenizer, scheme, fpr=fpr), method="text")


def build_detectors(config, key=None, device: str | None = None, probe_objects=None) -> DetectorSet:
    """Detectors for ``config`` (a :class:`~provguard.pipeline.config.RunConfig`); ``key`` is the secret
    for keyed watermarks, checked against ``config.key_digest`` (ignored when the config needs none).

    ``probe_objects`` = ``(probe, tower)`` already loaded (used by hooks that keep a model warm).
    Raises :class:`ProvguardError` when something the config asks for cannot be built.
    """
    from provguard.detectors.metadata import MetadataDetector
    from provguard.detectors.watermarks import ImageWatermarkDetector
    from provguard.pipeline.config import key_digest

    key = key if config.key_digest else None
    if key_digest(key) != config.key_digest:
        raise ProvguardError("the key given is not the key this run was started with (its digest differs)")
    out = DetectorSet()
    out.image.append(TimedDetector(MetadataDetector(config.trust_anchors.path if config.trust_anchors else None)))
    for method in config.watermarks:  # RunConfig.create kept only the keyed methods it has a key for
        detector = ImageWatermarkDetector(method, key=key, fpr=config.target_fpr)
        out.image.append(TimedDetector(detector))
        null = detector.watermark.null_summary()  # the run card records a calibrated null (e.g. sd_null)
        if null is not None:
            out.info[f"{method}_null"] = null
    if config.probe:
        from provguard.detectors.classifier import ProbeDetector, load_probe_and_tower
        from provguard.detectors.embedding import EmbeddingCache

        probe, tower = probe_objects or load_probe_and_tower(config.probe.path, device=device)
        out.image.append(TimedDetector(ProbeDetector(probe, tower, EmbeddingCache(), batch_size=config.batch_size)))
        out.info["backbone"] = {"id": tower.id, "weights_sha256": tower.weights_hash, "layer": tower.layer}
        out.info["probe_calibration"] = probe.calibration_
    if config.text_watermark:
        out.text.append(TimedDetector(_text_detector(config.text_watermark, key, config.target_fpr)))
    return out
