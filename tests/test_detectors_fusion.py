"""Fusion order, user policy and the cost cascade."""
from __future__ import annotations

import json

import numpy as np
import pytest

from provguard.detectors.evidence import Evidence, Item
from provguard.detectors.fusion import Policy, cascade, fuse
from provguard.errors import ProvguardError


def ev(tier, verdict, strength="medium", p=None, reason=None, **detail):
    return Evidence("t", verdict, 1.0, p, reason or f"{tier}:{verdict}:{strength}", strength, tier, detail)


def test_documented_order_signed_beats_everything():
    v = fuse([ev("classifier", "synthetic", p_synthetic=0.99), ev("signed-provenance", "real", "strong"),
              ev("unsigned-metadata", "synthetic")])
    assert (v.verdict, v.tier, v.score) == ("real", "signed-provenance", 0.0)
    assert v.reasons[0] == "signed-provenance:real:strong" and len(v.reasons) == 3


def test_watermark_decides_at_its_p_value_only():
    weak = ev("watermark", "synthetic", "strong", p=0.01)
    assert fuse([weak]).verdict == "uncertain"                     # 0.01 > default alpha 1e-3
    assert fuse([weak], Policy(watermark_alpha=0.05)).verdict == "synthetic"
    v = fuse([ev("watermark", "synthetic", "strong", p=1e-6), ev("classifier", "real", p_synthetic=0.1)])
    assert v.verdict == "synthetic" and v.tier == "watermark" and v.score == pytest.approx(1 - 1e-6)


def test_untrusted_c2pa_real_claim_is_not_decisive_but_ai_claim_is():
    assert fuse([ev("signed-provenance", "real", "medium")]).verdict == "uncertain"
    assert fuse([ev("signed-provenance", "synthetic", "medium")]).verdict == "synthetic"
    assert fuse([ev("signed-provenance", "synthetic", "medium")], Policy(synthetic_min_strength="strong")).verdict == "uncertain"


def test_unsigned_metadata_can_be_switched_off():
    evs = [ev("unsigned-metadata", "synthetic"), ev("classifier", "real", p_synthetic=0.2)]
    assert fuse(evs).verdict == "synthetic"
    v = fuse(evs, Policy(use_unsigned_metadata=False))
    assert v.verdict == "real" and v.tier == "classifier" and v.score == pytest.approx(0.2)
    assert fuse(evs, Policy(use_unsigned_metadata=False, classifier_can_clear=False)).verdict == "uncertain"


def test_user_order_and_conflicts():
    evs = [ev("unsigned-metadata", "synthetic"), ev("classifier", "real", p_synthetic=0.1)]
    assert fuse(evs, Policy(order=("classifier", "unsigned-metadata", "watermark", "signed-provenance"))).verdict == "real"
    v = fuse([ev("signed-provenance", "synthetic", "strong", reason="a"), ev("signed-provenance", "real", "strong", reason="b")])
    assert v.verdict == "uncertain" and v.reasons[0] == "fusion:conflict"


def test_abstain_when_nothing_decides():
    v = fuse([])
    assert (v.verdict, v.score, v.reasons) == ("uncertain", None, ["abstain:no-decisive-evidence"])
    v = fuse([ev("classifier", "none", reason="clip-probe:uncertain-band", p_synthetic=0.6)])
    assert v.verdict == "uncertain" and v.score == pytest.approx(0.6) and "clip-probe:uncertain-band" in v.reasons


def test_policy_validation_and_file(tmp_path):
    with pytest.raises(ProvguardError):
        Policy(order=("classifier", "classifier"))
    with pytest.raises(ProvguardError):
        Policy(watermark_alpha=0)
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"watermark_alpha": 0.01, "use_unsigned_metadata": False}))
    assert Policy.from_file(f).watermark_alpha == 0.01
    f.write_text(json.dumps({"threshold": 0.5}))
    with pytest.raises(ProvguardError, match="unknown policy fields"):
        Policy.from_file(f)


class Fake:
    """A detector that records which items it saw and says what ``fn(index)`` returns."""

    def __init__(self, name, tier, cost, fn):
        self.name, self.tier, self.cost, self.fn, self.seen = name, tier, cost, fn, []

    def score_batch(self, items):
        self.seen += [it.text for it in items]
        return [self.fn(int(it.text)) for it in items]


def test_cascade_runs_the_classifier_only_where_needed():
    items = [Item(text=str(i)) for i in range(6)]
    meta = Fake("metadata", "signed-provenance", 1e-4,
                lambda i: [ev("signed-provenance", "synthetic", "strong")] if i == 0 else
                [ev("unsigned-metadata", "synthetic")] if i == 1 else [])
    wm = Fake("wm", "watermark", 0.01, lambda i: [ev("watermark", "synthetic", "strong", p=1e-9)] if i == 2 else
              [ev("watermark", "none", "weak", p=0.5)])
    clf = Fake("clf", "classifier", 0.07, lambda i: [ev("classifier", "synthetic" if i == 3 else "real", p_synthetic=i / 10)])
    out = cascade(items, [clf, wm, meta])  # given in the wrong order on purpose
    assert [v.verdict for v in out] == ["synthetic", "synthetic", "synthetic", "synthetic", "real", "real"]
    assert meta.seen == [str(i) for i in range(6)]
    assert wm.seen == ["1", "2", "3", "4", "5"]          # item 0 settled by signed provenance
    assert clf.seen == ["3", "4", "5"]                   # 1 (unsigned metadata) and 2 (watermark) settled
    assert out[0].detectors_run == ["metadata"] and out[4].detectors_run == ["metadata", "wm", "clf"]
    # the cascade gives exactly what running everything and fusing would give
    full = [fuse(meta.fn(i) + wm.fn(i) + clf.fn(i)) for i in range(6)]
    assert [v.verdict for v in full] == [v.verdict for v in out]
