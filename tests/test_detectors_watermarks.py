"""Watermark detectors behind the Detector protocol: p-values pass through, absence is no opinion."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from provguard.detectors.evidence import Detector, Item
from provguard.detectors.fusion import fuse
from provguard.detectors.watermarks import ImageWatermarkDetector, TextWatermarkAdapter


def test_keyed_image_watermark_round_trip():
    det = ImageWatermarkDetector("provguard", key=b"detectors-test-key-0123456789abcdef")
    assert isinstance(det, Detector)
    from provguard.imaging.io import load_image
    from provguard.imaging.photos import require_photos

    rgb = load_image(require_photos(1)[0].path)
    marked = det.watermark.embed([rgb])[0]
    out = det.score_batch([Item(rgb=rgb), Item(rgb=marked), Item(rgb=np.zeros((4, 4, 3), np.uint8)),
                           Item(data=b"not an image", name="x.png")])
    plain, hit, tiny, bad = (o[0] for o in out)
    assert hit.reason == "watermark:provguard:detected" and hit.verdict == "synthetic" and hit.p_value < 1e-3
    assert plain.reason == "watermark:provguard:absent" and plain.verdict == "none" and plain.p_value > 1e-3
    assert bad.reason == "watermark:provguard:error"  # a broken file is an error ...
    assert tiny.reason == "watermark:provguard:not-applicable" and "64x64" in tiny.detail["not_applicable"]  # ... a small one is not
    assert fuse(out[2]).reasons == ["abstain:no-decisive-evidence"]  # never listed among the reasons
    assert fuse(out[1]).verdict == "synthetic" and fuse(out[0]).verdict == "uncertain"


def test_text_adapter_passes_p_values_through():
    class FakeText:
        def detect(self, texts):
            return [SimpleNamespace(p_value=1e-8 if "marked" in t else 0.4, z=9.0 if "marked" in t else 0.1,
                                    tokens_scored=50, green=40, error=None if t else "too short") for t in texts]

    det = TextWatermarkAdapter(FakeText(), method="kgw")
    out = det.score_batch([Item(text="marked text"), Item(text="plain text"), Item(text=""), Item(rgb=np.zeros((2, 2, 3), np.uint8))])
    assert [o[0].reason for o in out] == ["watermark:kgw:detected", "watermark:kgw:absent",
                                          "watermark:kgw:not-applicable", "watermark:kgw:not-applicable"]
    assert out[2][0].detail == {"not_applicable": "too short"} and out[2][0].p_value is None
    assert out[0][0].p_value == pytest.approx(1e-8) and out[0][0].tier == "watermark"
