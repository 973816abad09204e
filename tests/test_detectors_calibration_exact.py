"""The probe calibration's reported numbers at their edges, against independent derivations.

Thresholds against the order-statistic formula worked by hand, Clopper-Pearson intervals against
scipy's own exact binomial interval (``binomtest(...).proportion_ci(method="exact")``) and the closed
forms at ``k = 0`` and ``k = n``, the decision rule at scores exactly on a threshold, and the stored
form of a calibration.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from provguard.detectors.calibration import (Calibration, CalibrationError, calibrate, clopper_pearson,
                                             conformal_threshold, min_calibration_size)


def _exact_ci(k: int, n: int, level: float) -> tuple[float, float]:
    ci = binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    return ci.low, ci.high


@pytest.mark.parametrize("alpha", [0.9, 0.6, 0.5, 0.34, 0.25, 0.1, 0.05, 0.01])
def test_min_calibration_size_is_the_smallest_n_with_a_threshold(alpha):
    """Brute force: the smallest n for which conformal_threshold answers instead of refusing."""
    def exists(n):
        try:
            conformal_threshold(np.arange(n, dtype=float), alpha)
            return True
        except CalibrationError:
            return False

    smallest = next(n for n in range(1, 200) if exists(n))
    assert min_calibration_size(alpha) == smallest
    assert not exists(smallest - 1)


@pytest.mark.parametrize("alpha", [0.0, -0.1, 1.0, 1.5, 2.0])
def test_target_fpr_outside_the_open_unit_interval_is_refused(alpha):
    with pytest.raises(CalibrationError, match=r"target FPR must be in \(0, 1\)"):
        conformal_threshold(np.arange(1000, dtype=float), alpha)
    with pytest.raises(CalibrationError, match="target FPR"):
        calibrate(np.arange(1000, dtype=float), alpha)


@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (0, 7), (7, 7), (3, 10), (1, 50), (49, 50)])
@pytest.mark.parametrize("level", [0.95, 0.8])
def test_clopper_pearson_equals_scipys_exact_interval(k, n, level):
    lo, hi = clopper_pearson(k, n, level)
    ref_lo, ref_hi = _exact_ci(k, n, level)
    assert lo == pytest.approx(ref_lo, rel=1e-9, abs=1e-15) and hi == pytest.approx(ref_hi, rel=1e-9, abs=1e-15)


def test_clopper_pearson_closed_forms_at_the_ends():
    a = 0.025
    # k = 0: [0, 1 - a^(1/n)]; k = n: [a^(1/n), 1]; no trials: [0, 1]
    assert clopper_pearson(0, 1) == (0.0, pytest.approx(1 - a))
    assert clopper_pearson(1, 1) == (pytest.approx(a), 1.0)
    assert clopper_pearson(5, 5) == (pytest.approx(a ** (1 / 5)), 1.0)
    assert clopper_pearson(0, 0) == (0.0, 1.0)


def test_threshold_achieved_fpr_and_interval_on_integer_scores():
    # scores 1..100, target 5%: k = ceil(101 * 0.95) = ceil(95.95) = 96, so the threshold is 96 and
    # exactly 4 of the 100 scores (97..100) lie strictly above it
    cal = calibrate(np.arange(1, 101), 0.05, level=0.9)
    assert cal.threshold == 96.0 and cal.achieved_fpr == 4 / 100
    assert cal.n_calibration == 100 and isinstance(cal.n_calibration, int)
    assert cal.target_fpr == 0.05 and isinstance(cal.target_fpr, float)
    assert cal.fpr_ci == pytest.approx(_exact_ci(4, 100, 0.9), rel=1e-9)
    assert cal.uncertain_threshold is None and cal.uncertain_fpr is None


def test_ties_at_the_threshold_are_not_counted_as_flagged():
    # 90 scores of 0 and 10 of 1, target 5%: k = ceil(101 * 0.95) = 96 -> the 96th smallest is 1;
    # nothing lies strictly above it, so the achieved FPR is 0 (flagging is score > threshold)
    scores = np.r_[np.zeros(90), np.ones(10)]
    cal = calibrate(scores, 0.05)
    assert cal.threshold == 1.0 and cal.achieved_fpr == 0.0
    assert cal.fpr_ci == pytest.approx(_exact_ci(0, 100, 0.95), rel=1e-9)
    assert list(cal.decide(np.array([1.0, 1.0 + 1e-12]))) == ["real", "synthetic"]


def test_non_finite_scores_are_dropped_before_counting():
    scores = np.r_[np.arange(1, 101, dtype=float), np.nan, np.inf, -np.inf]
    cal = calibrate(scores, 0.05)
    assert cal.threshold == 96.0 and cal.achieved_fpr == 4 / 100 and cal.n_calibration == 100


def test_decide_at_the_band_edges():
    cal = Calibration(threshold=2.0, target_fpr=0.01, achieved_fpr=0.0, fpr_ci=(0.0, 0.1), n_calibration=10,
                      uncertain_threshold=1.0, uncertain_fpr=0.1)
    got = cal.decide([0.5, 1.0, 1.5, 2.0, 2.5])
    assert list(got) == ["real", "real", "uncertain", "uncertain", "synthetic"]
    plain = Calibration(threshold=2.0, target_fpr=0.01, achieved_fpr=0.0, fpr_ci=(0.0, 0.1), n_calibration=10)
    assert list(plain.decide([1.999, 2.0, 2.001])) == ["real", "real", "synthetic"]


def test_uncertain_band_must_be_wider_than_the_target():
    real = np.arange(1, 1001, dtype=float)
    with pytest.raises(CalibrationError, match=r"uncertain band's FPR \(0.05\) must exceed the target FPR \(0.05\)"):
        calibrate(real, 0.05, uncertain_fpr=0.05)
    cal = calibrate(real, 0.01, uncertain_fpr=0.1)
    # k = ceil(1001 * 0.9) = 901 for the band, ceil(1001 * 0.99) = 991 for the target
    assert (cal.uncertain_threshold, cal.threshold) == (901.0, 991.0)
    assert cal.uncertain_fpr == 0.1 and isinstance(cal.uncertain_fpr, float)


def test_to_dict_and_from_dict_round_trip():
    cal = calibrate(np.arange(1, 1001, dtype=float), 0.01, uncertain_fpr=0.1)
    d = cal.to_dict()
    assert d["fpr_ci"] == list(cal.fpr_ci) and isinstance(d["fpr_ci"], list)
    assert d == {"threshold": 991.0, "target_fpr": 0.01, "achieved_fpr": 9 / 1000, "fpr_ci": list(cal.fpr_ci),
                 "n_calibration": 1000, "uncertain_threshold": 901.0, "uncertain_fpr": 0.1,
                 "score": "decision_function"}
    back = Calibration.from_dict({**d, "by_source": {"x": 1}})  # extra keys, as a probe file has, are ignored
    assert back == cal and isinstance(back.fpr_ci, tuple)
    assert math.isclose(back.fpr_ci[1], _exact_ci(9, 1000, 0.95)[1], rel_tol=1e-9)
