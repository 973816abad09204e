"""Fusion at its edges, each expectation read off the documented rules in ``detectors/fusion.py``:
the watermark at exactly its alpha, strength ranks, the score a tier reports when several opinions
agree, reasons (lead first, no duplicates, never "not applicable"), the abstain score, validation
messages, the stored form, and where the cascade stops."""
from __future__ import annotations

import json

import pytest

from provguard.detectors.evidence import Evidence, Item
from provguard.detectors.fusion import Policy, Verdict, cascade, fuse
from provguard.errors import ProvguardError
from test_detectors_fusion import Fake  # the recording fake detector, shared


def ev(tier, verdict, strength="medium", p=None, reason=None, **detail):
    return Evidence("t", verdict, 1.0, p, reason or f"{tier}:{verdict}:{strength}", strength, tier, detail)


def test_watermark_at_exactly_alpha_decides_and_just_above_does_not():
    pol = Policy(watermark_alpha=0.01)
    assert fuse([ev("watermark", "synthetic", "strong", p=0.01)], pol).verdict == "synthetic"  # p <= alpha
    assert fuse([ev("watermark", "synthetic", "strong", p=0.0100001)], pol).verdict == "uncertain"
    # a watermark with no opinion or no p-value decides nothing, however small its p
    assert fuse([ev("watermark", "none", "strong", p=1e-12)]).verdict == "uncertain"
    assert fuse([ev("watermark", "synthetic", "strong", p=None)]).verdict == "uncertain"


@pytest.mark.parametrize("strength,need,decides", [
    ("strong", "strong", True), ("medium", "strong", False), ("weak", "strong", False),
    ("strong", "medium", True), ("medium", "medium", True), ("weak", "medium", False),
    ("strong", "weak", True), ("medium", "weak", True), ("weak", "weak", True)])
def test_strength_ranks_strong_over_medium_over_weak(strength, need, decides):
    syn = fuse([ev("unsigned-metadata", "synthetic", strength)], Policy(synthetic_min_strength=need))
    assert (syn.verdict == "synthetic") is decides
    real = fuse([ev("signed-provenance", "real", strength)], Policy(real_min_strength=need))
    assert (real.verdict == "real") is decides


def test_agreeing_opinions_report_the_most_extreme_score():
    # two decisive watermarks: synthetic takes the largest 1 - p
    v = fuse([ev("watermark", "synthetic", "strong", p=1e-4), ev("watermark", "synthetic", "strong", p=1e-6)])
    assert v.score == pytest.approx(1 - 1e-6)
    # two classifiers clearing the item: real takes the smallest P(synthetic)
    v = fuse([ev("classifier", "real", p_synthetic=0.3, reason="c1"), ev("classifier", "real", p_synthetic=0.1, reason="c2")])
    assert (v.verdict, v.score) == ("real", pytest.approx(0.1))
    # a declaration without a p-value scores 1 (synthetic) or 0 (real)
    assert fuse([ev("unsigned-metadata", "synthetic")]).score == 1.0
    assert fuse([ev("classifier", "synthetic")]).score == 1.0
    assert fuse([ev("classifier", "real")]).score == 0.0


def test_reasons_lead_with_the_deciding_tier_once_each_and_skip_not_applicable():
    na = ev("watermark", "none", "weak", reason="sd-watermark:not-applicable")
    evs = [ev("classifier", "real", p_synthetic=0.2, reason="probe:below"), na,
           ev("unsigned-metadata", "synthetic", reason="png:ai"), ev("unsigned-metadata", "synthetic", reason="png:ai")]
    v = fuse(evs)
    assert v.reasons == ["png:ai", "probe:below"] and v.tier == "unsigned-metadata"
    assert na in v.evidence and len(v.evidence) == 4
    conflict = fuse([ev("classifier", "real", reason="c"), ev("signed-provenance", "synthetic", "strong", reason="a"),
                     ev("signed-provenance", "real", "strong", reason="b")])
    assert (conflict.verdict, conflict.score, conflict.tier) == ("uncertain", None, "signed-provenance")
    assert conflict.reasons == ["fusion:conflict", "a", "b", "c"]
    abstain = fuse([na, ev("classifier", "none", p_synthetic=0.4, reason="band")])
    assert abstain.reasons == ["band", "abstain:no-decisive-evidence"] and abstain.tier is None


def test_abstain_score_is_the_largest_detector_score():
    v = fuse([ev("watermark", "none", "strong", p=0.3), ev("classifier", "none", p_synthetic=0.6),
              ev("unsigned-metadata", "none")])
    assert v.verdict == "uncertain" and v.score == pytest.approx(0.7)  # max(1 - 0.3, 0.6); metadata has none
    assert fuse([ev("unsigned-metadata", "none"), ev("classifier", "none")]).score is None


def test_evidence_in_a_tier_outside_the_order_is_kept_last_and_never_decides():
    pol = Policy(order=("classifier",))
    v = fuse([ev("signed-provenance", "synthetic", "strong", reason="sig"), ev("classifier", "real", reason="clf")], pol)
    assert (v.verdict, v.tier) == ("real", "classifier")
    assert [e.reason for e in v.evidence] == ["clf", "sig"] and v.reasons == ["clf", "sig"]


def test_policy_validation_messages(tmp_path):
    with pytest.raises(ProvguardError, match="policy order must be distinct tiers"):
        Policy(order=("classifier", "pixels"))
    with pytest.raises(ProvguardError, match="policy strength must be one of"):
        Policy(real_min_strength="certain")
    with pytest.raises(ProvguardError, match="policy strength must be one of"):
        Policy(synthetic_min_strength="certain")
    for alpha in (0.0, 1.0, 1.5):
        with pytest.raises(ProvguardError, match=r"watermark_alpha must be in \(0, 1\)"):
            Policy(watermark_alpha=alpha)
    assert Policy(order=["classifier", "watermark"]).order == ("classifier", "watermark")  # a list becomes a tuple
    f = tmp_path / "p.json"
    f.write_text("{not json")
    with pytest.raises(ProvguardError, match="cannot read the policy as JSON"):
        Policy.from_file(f)
    with pytest.raises(ProvguardError, match="cannot read the policy as JSON"):
        Policy.from_file(tmp_path / "missing.json")
    f.write_text("[1, 2]")
    with pytest.raises(ProvguardError, match="not an object"):
        Policy.from_file(f)


def test_policy_and_verdict_stored_forms():
    pol = Policy(order=("watermark", "classifier"), watermark_alpha=0.02, classifier_can_clear=False)
    assert pol.to_dict() == {"order": ("watermark", "classifier"), "synthetic_min_strength": "medium",
                             "real_min_strength": "strong", "watermark_alpha": 0.02, "use_unsigned_metadata": True,
                             "classifier_can_clear": False}
    e = ev("watermark", "synthetic", "strong", p=1e-5, reason="wm")
    v = fuse([e])
    d = v.to_dict()
    assert d == {"verdict": "synthetic", "score": pytest.approx(1 - 1e-5), "reasons": ["wm"], "tier": "watermark",
                 "evidence": [e.to_dict()], "detectors_run": []}
    json.dumps(d)


def test_cascade_orders_by_tier_then_cost_and_keeps_going_in_the_deciding_tier():
    items = [Item(text=str(i)) for i in range(3)]
    # two detectors of the watermark tier: the cheaper runs first; a synthetic call there is not final
    # while another watermark detector is still to run (it could conflict), so the second still runs
    cheap = Fake("cheap", "watermark", 0.001, lambda i: [ev("watermark", "synthetic", "strong", p=1e-9, reason="w1")]
                 if i == 0 else [])
    dear = Fake("dear", "watermark", 0.5, lambda i: [ev("watermark", "real", "strong", reason="w2")] if i == 0 else [])
    clf = Fake("clf", "classifier", 0.07, lambda i: [ev("classifier", "real", p_synthetic=0.1, reason="c")])
    out = cascade(items, [clf, dear, cheap])
    assert cheap.seen == ["0", "1", "2"] and dear.seen == ["0", "1", "2"]
    # settled once the watermark tier is done: a watermark's "real" is never decisive (a missing mark is
    # no evidence), so the call stays synthetic and the classifier is skipped
    assert out[0].detectors_run == ["cheap", "dear"]
    assert out[0].verdict == "synthetic" and clf.seen == ["1", "2"]
    assert [v.detectors_run for v in out[1:]] == [["cheap", "dear", "clf"]] * 2
    assert cascade([], [clf]) == [] and cascade(items[:1], [])[0].detectors_run == []


def test_cascade_never_stops_on_an_uncertain_call():
    items = [Item(text="0")]
    meta = Fake("meta", "signed-provenance", 1e-4, lambda i: [ev("signed-provenance", "synthetic", "strong", reason="a"),
                                                             ev("signed-provenance", "real", "strong", reason="b")])
    clf = Fake("clf", "classifier", 0.07, lambda i: [ev("classifier", "real", p_synthetic=0.1)])
    out = cascade(items, [meta, clf], Policy())
    assert clf.seen == ["0"] and out[0].verdict == "uncertain" and out[0].detectors_run == ["meta", "clf"]


def test_verdict_defaults():
    v = Verdict("real", 0.0, [], None)
    assert v.evidence == [] and v.detectors_run == []
