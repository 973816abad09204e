"""Conformal thresholds, Clopper-Pearson intervals, the uncertain band, and evaluation metrics."""
from __future__ import annotations

import numpy as np
import pytest

from provguard.detectors import evaluation as E
from provguard.detectors.calibration import (CalibrationError, calibrate, clopper_pearson, conformal_threshold,
                                             min_calibration_size)


def test_conformal_picks_the_right_order_statistic():
    s = np.arange(1, 100, dtype=float)          # n = 99
    assert conformal_threshold(s, 0.01) == 99.0  # k = ceil(100 * 0.99) = 99
    assert conformal_threshold(s, 0.1) == 90.0   # k = ceil(100 * 0.9) = 90
    with pytest.raises(CalibrationError, match="at least 99"):
        conformal_threshold(s[:98], 0.01)
    assert min_calibration_size(1e-3) == 999


def test_finite_sample_guarantee_holds_on_average():
    """E[P(new real > t)] <= alpha over many calibration draws (and is close to it, not wildly below)."""
    rng = np.random.default_rng(0)
    alpha, n, fprs = 0.05, 59, []
    for _ in range(2000):
        t = conformal_threshold(rng.standard_normal(n), alpha)
        from scipy.stats import norm
        fprs.append(norm.sf(t))
    mean = float(np.mean(fprs))
    assert mean <= alpha + 0.002 and mean > 0.8 * alpha


def test_clopper_pearson_known_values():
    lo, hi = clopper_pearson(0, 100)
    assert lo == 0.0 and hi == pytest.approx(0.03621669, rel=1e-5)
    lo, hi = clopper_pearson(5, 100)
    assert lo == pytest.approx(0.01643, abs=1e-4) and hi == pytest.approx(0.11284, abs=1e-4)


def test_calibrate_reports_achieved_fpr_and_band():
    rng = np.random.default_rng(1)
    real = rng.standard_normal(500)
    cal = calibrate(real, 0.01, uncertain_fpr=0.1)
    assert cal.achieved_fpr <= 0.01 and cal.fpr_ci[0] <= cal.achieved_fpr <= cal.fpr_ci[1]
    assert cal.uncertain_threshold < cal.threshold
    calls = cal.decide(np.array([cal.threshold + 1, (cal.threshold + cal.uncertain_threshold) / 2, -10]))
    assert list(calls) == ["synthetic", "uncertain", "real"]
    with pytest.raises(CalibrationError):
        calibrate(real, 0.1, uncertain_fpr=0.05)


def test_auc_matches_sklearn_and_tpr_needs_enough_reals():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    r, s = rng.standard_normal(300), rng.standard_normal(200) + 1.5
    y = np.r_[np.zeros(300), np.ones(200)]
    assert E.auc(r, s) == pytest.approx(roc_auc_score(y, np.r_[r, s]))
    rep = E.summarize(r, s)
    assert rep["tpr_at_fpr"]["0.001"] is None and 0 < rep["tpr_at_fpr"]["0.01"] < 1
    t = E.tpr_at_fpr(r, s, 0.01)
    assert t["achieved_fpr"] <= 0.01 and t["ci"][0] <= t["tpr"] <= t["ci"][1]


def test_ece_zero_for_calibrated_and_large_for_overconfident():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=20000)
    y = rng.uniform(size=20000) < p
    assert E.expected_calibration_error(p, y) < 0.02
    assert E.expected_calibration_error(np.where(y, 0.0, 1.0), y) == pytest.approx(1.0)


def test_per_source_and_robustness_reencode_both_classes():
    rng = np.random.default_rng(4)
    assert set(E.per_source(rng.standard_normal(50), rng.standard_normal(20), ["a"] * 10 + ["b"] * 10)) == {"a", "b"}
    seen = []

    def score_fn(arrays):  # "detects" blockiness: differs between a smooth and a noisy image only by content
        seen.append([a.shape for a in arrays])
        return np.array([float(np.abs(np.diff(a.astype(int), axis=1)).mean()) for a in arrays])

    smooth = [np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (64, 1, 3)) for _ in range(3)]
    noisy = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    curve = E.robustness_curve(score_fn, smooth, noisy)
    assert list(curve) == ["none", "jpeg95", "jpeg85", "jpeg75", "jpeg50", "resize0.5", "webp80"]
    assert curve["none"]["auc"] == 1.0
    # resize hits both classes: every array scored under "resize0.5" is 32x32
    assert seen[10] == [(32, 32, 3)] * 3 and seen[11] == [(32, 32, 3)] * 3
    jpeg = E.jpeg(50)(noisy[0])
    assert jpeg.shape == (64, 64, 3) and not np.array_equal(jpeg, noisy[0])
