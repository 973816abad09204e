"""What deciding records, against hand-worked numbers: the run's watermark-test record (per item and
Benjamini-Hochberg step-up, worked by hand), the probe re-calibrated from known-real items (the
order statistic by hand), the decision counts, the stored policy, and the probe re-decided at a new
threshold."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest

from provguard.detectors.evidence import Evidence
from provguard.detectors.fusion import Policy
from provguard.errors import ProvguardError
from provguard.pipeline.decide import (DecisionPolicy, _rethreshold, counts, decide_one, recalibrate_probe,
                                       watermark_cutoff)


def wm(p):
    return Evidence("provguard-watermark", "synthetic", 5.0, p, "wm", "strong", "watermark", {})


# five watermark p-values of a run (one row has two), plus a row with none
ROWS = [[wm(0.001)], [wm(0.004), wm(0.03)], [wm(0.0005)], [wm(0.5)], []]


def test_per_item_record():
    pol = DecisionPolicy(Policy(watermark_alpha=0.004), fdr=None)
    eff, info = watermark_cutoff(ROWS, pol)
    assert eff is pol
    assert info == {"mode": "per-item", "tests": 5, "cutoff": 0.004, "rejected": 3,  # 0.001, 0.004, 0.0005
                    "expected_false_discoveries": pytest.approx(5 * 0.004)}


def test_fdr_record_is_the_step_up_worked_by_hand():
    # sorted p: 0.0005, 0.001, 0.004, 0.03, 0.5; BH at q = 0.01, m = 5: bounds k q / m = 0.002, 0.004,
    # 0.006, 0.008, 0.01 -> the largest k with p_(k) <= bound is 3; cutoff 3 * 0.01 / 5 = 0.006,
    # under the cap 0.05; expected false discoveries 5 * 0.006
    pol = DecisionPolicy(Policy(watermark_alpha=0.05), fdr=0.01, fdr_method="bh")
    eff, info = watermark_cutoff(ROWS, pol)
    assert info == {"mode": "fdr", "method": "bh", "fdr": 0.01, "tests": 5, "cutoff": pytest.approx(0.006),
                    "cap": 0.05, "rejected": 3, "expected_false_discoveries": pytest.approx(0.03)}
    assert eff.fusion.watermark_alpha == pytest.approx(0.006) and eff.fdr == 0.01
    assert eff.fusion.order == pol.fusion.order and pol.fusion.watermark_alpha == 0.05  # a new policy
    # the per-item alpha caps the run's cutoff
    _, capped = watermark_cutoff(ROWS, DecisionPolicy(Policy(watermark_alpha=0.002), fdr=0.01))
    assert capped["cutoff"] == 0.002 and capped["cap"] == 0.002 and capped["rejected"] == 2
    # Benjamini-Yekutieli divides q by H_5 = 137/60: bounds k * 0.002 * 60/137 = 0.000876 k, so
    # 0.0005 and 0.001 pass (<= 0.000876, 0.00175), 0.004 does not (> 0.00263): k = 2
    _, by = watermark_cutoff(ROWS, DecisionPolicy(Policy(watermark_alpha=0.05), fdr=0.01, fdr_method="by"))
    assert by["method"] == "by" and by["rejected"] == 2 and by["cutoff"] == pytest.approx(2 * 0.002 * 60 / 137)


def _table(entries):
    return pa.table({"key": [k for k, _ in entries], "evidence": [json.dumps(e) for _, e in entries]})


def _probe(score):
    return [Evidence("clip-probe", "real", score, None, "clip-probe:below-threshold", "weak", "classifier",
                     {}).to_dict()]


def test_recalibrate_probe_from_known_real_items():
    # 99 known-real items scoring 1..99 and two others; target 10%: k = ceil(100 * 0.9) = 90, so the
    # threshold is 90 and 9 of the 99 (91..99) lie above it
    entries = [(f"r{i}", _probe(float(i))) for i in range(1, 100)] + [("s", _probe(500.0)), ("t", [])]
    cal = recalibrate_probe(_table(entries), [f"r{i}" for i in range(1, 100)], 0.1)
    assert (cal["threshold"], cal["n_calibration"], cal["achieved_fpr"]) == (90.0, 99, 9 / 99)
    assert cal["target_fpr"] == 0.1
    with pytest.raises(ProvguardError, match=r"1 of the known-real items have no stored clip-probe score \(e.g. 't'\)"):
        recalibrate_probe(_table(entries), ["r1", "t"], 0.1)
    nan = entries + [("n", _probe(float("nan")))]
    with pytest.raises(ProvguardError, match="'n'"):
        recalibrate_probe(_table(nan), ["r1", "n"], 0.1)


def test_counts_add_up():
    ds = [{"verdict": "synthetic", "decision": "reject", "reasons": ["wm", "x"], "not_applicable": ["sd"]},
          {"verdict": "synthetic", "decision": "reject", "reasons": ["wm"], "not_applicable": ["sd", "c2pa"]},
          {"verdict": "synthetic", "decision": "reject", "reasons": ["meta"]},
          {"verdict": "uncertain", "decision": "reject", "reasons": []},
          {"verdict": "real", "decision": "keep", "reasons": ["probe"], "not_applicable": []},
          {"verdict": "error", "decision": "error", "reasons": ["error:unreadable"]}]
    assert counts(ds) == {"verdict": {"synthetic": 3, "uncertain": 1, "real": 1, "error": 1},
                          "decision": {"reject": 4, "keep": 1, "error": 1},
                          "reason": {"wm": 2, "meta": 1}, "not_applicable": {"sd": 2, "c2pa": 1}, "error": 1}
    assert counts([]) == {"verdict": {}, "decision": {}, "reason": {}, "not_applicable": {}, "error": 0}


def test_stored_policy_keeps_the_fdr_settings():
    p = DecisionPolicy(Policy(), False, None, None, 0.05, "by")
    d = p.to_dict()
    assert (d["fdr"], d["fdr_method"]) == (0.05, "by")
    assert DecisionPolicy.from_dict(json.loads(json.dumps(d))) == p
    assert DecisionPolicy.from_dict({"fdr": None}).fdr is None
    with pytest.raises(ProvguardError, match="fdr_method"):
        DecisionPolicy(fdr=0.05, fdr_method="holm")
    assert DecisionPolicy(fdr=None, fdr_method="holm").fdr is None  # no run-wide test, nothing to check


def test_rethreshold_keeps_the_evidence_and_records_the_thresholds():
    e = Evidence("clip-probe", "real", 0.3, 0.2, "clip-probe:below-threshold", "weak", "classifier", {"p_synthetic": 0.4})
    up = _rethreshold(e, 0.2, None)
    assert (up.detector, up.verdict, up.score, up.p_value, up.reason) == ("clip-probe", "synthetic", 0.3, 0.2,
                                                                          "clip-probe:above-threshold")
    assert up.detail == {"p_synthetic": 0.4, "threshold": 0.2, "uncertain_threshold": None}
    down = _rethreshold(e, 0.5, 0.3)  # exactly on the band's lower edge: below it
    assert (down.verdict, down.reason) == ("real", "clip-probe:below-threshold")
    assert down.detail["uncertain_threshold"] == 0.3
    broken = Evidence("clip-probe", "none", 0.3, None, "clip-probe:error", "weak", "classifier", {})
    assert _rethreshold(broken, -1.0, None) is broken  # an error row keeps its evidence, even with a finite score
    other = Evidence("c2pa", "synthetic", 1.0, None, "c2pa:ai", "strong", "signed-provenance", {})
    d = decide_one([other], None, ["c2pa"], {"c2pa": "signed-provenance"}, DecisionPolicy(classifier_threshold=2.0))
    assert d["verdict"] == "synthetic"  # only the probe's evidence is re-thresholded


def test_error_row_score_and_missing_detectors_of_the_same_tier():
    probe = Evidence("clip-probe", "real", -1.0, None, "clip-probe:below-threshold", "weak", "classifier",
                     {"p_synthetic": 0.25})
    d = decide_one([probe], "exif broken", ["clip-probe"], {"clip-probe": "classifier"}, DecisionPolicy())
    assert (d["verdict"], d["score"], d["not_applicable"]) == ("error", 0.25, [])
    # a detector of the deciding tier that did not run is flagged (it could have disagreed)
    d = decide_one([probe], None, ["clip-probe"], {"clip-probe": "classifier", "other-clf": "classifier",
                                                   "b-clf": "classifier"}, DecisionPolicy())
    assert d["reasons"][-1] == "decide:not-run:b-clf,other-clf"
