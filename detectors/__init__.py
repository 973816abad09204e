"""``provguard.detectors``: everything that says "this item is synthetic", fused into one verdict.

Modules (each one job):

- :mod:`~provguard.detectors.evidence` — :class:`Evidence`, :class:`Item`, the :class:`Detector` protocol, tiers.
- :mod:`~provguard.detectors.preprocessing` — short-side bicubic resize + centre crop, normalisation.
- :mod:`~provguard.detectors.backbones` — image towers (ONNX, open_clip), :func:`create_backbone`.
- :mod:`~provguard.detectors.onnx_graph`, :mod:`~provguard.detectors.convert` — ONNX surgery, INT8 -> fp32 open_clip.
- :mod:`~provguard.detectors.embedding` — batched embedding with a content-hash cache.
- :mod:`~provguard.detectors.probe` — :class:`LinearProbe` (safetensors + JSON), published-head import.
- :mod:`~provguard.detectors.calibration` — conformal threshold at a target FPR, Clopper-Pearson CI.
- :mod:`~provguard.detectors.evaluation` — AUC, TPR@FPR, ECE, per-source, robustness curves.
- :mod:`~provguard.detectors.containers`, :mod:`~provguard.detectors.metadata` — metadata provenance;
  :mod:`~provguard.detectors.exif` (the EXIF tags it needs), :mod:`~provguard.detectors.generators`
  (which tool wrote a text), :mod:`~provguard.detectors.stealth` (LSB metadata in the pixels).
- :mod:`~provguard.detectors.classifier`, :mod:`~provguard.detectors.watermarks` — detectors for fusion.
- :mod:`~provguard.detectors.fusion` — :class:`Policy`, :func:`fuse`, the cost :func:`cascade`.

Nothing heavy is imported here: ``import provguard.detectors`` is free; the public API below is
exported lazily (PEP 562), each name loading its module on first use.
"""
from __future__ import annotations

from provguard.lazy import lazy_exports

_EXPORTS = {
    "Evidence": "evidence", "Item": "evidence", "Detector": "evidence",
    "Policy": "fusion", "Verdict": "fusion", "fuse": "fusion", "cascade": "fusion",
    "MetadataDetector": "metadata", "ImageWatermarkDetector": "watermarks", "TextWatermarkAdapter": "watermarks",
    "ProbeDetector": "classifier", "load_probe_and_tower": "classifier",
    "LinearProbe": "probe", "create_backbone": "backbones", "list_backbones": "backbones",
    "calibrate": "calibration", "resolve_probe": "default_probe",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, {k: f"provguard.detectors.{m}" for k, m in _EXPORTS.items()})
