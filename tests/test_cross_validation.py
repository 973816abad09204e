"""Leave-one-group-out scoring and group-balanced sample weights (checked against hand computations)."""
from __future__ import annotations

import numpy as np
import pytest

from provguard.detectors import cross_validation as CV
from provguard.detectors.probe import LinearProbe


def test_group_balanced_weights_by_hand():
    groups = np.array(["a", "a", "a", "b", "b"])
    y = np.array([1, 1, 1, 0, 1])
    # cells (a,1) x3, (b,0) x1, (b,1) x1; each class then sums to 5/2
    assert np.allclose(CV.group_balanced_weights(groups, y), [5 / 12] * 3 + [2.5, 1.25])
    r3 = 1 / np.sqrt(3)
    k = 2.5 / (3 * r3 + 1)
    assert np.allclose(CV.group_balanced_weights(groups, y, power=0.5), [r3 * k] * 3 + [2.5, k])
    assert np.allclose(CV.group_balanced_weights(groups, y, power=0.0), [2.5 / 4] * 3 + [2.5, 2.5 / 4])


def test_group_and_label_do_not_merge_into_one_cell():
    # "a1" with label 0 and "a" with label 10 would collide without a separator
    w = CV.group_balanced_weights(np.array(["a1", "a", "a"]), np.array([0, 10, 10]))
    assert np.allclose(w, [1.5, 0.75, 0.75])


def test_sample_weights_equal_duplicated_rows():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 5)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.standard_normal(60) > 0).astype(int)
    w = rng.integers(1, 4, 60)
    weighted = LinearProbe(C=1.0, class_weight=None).fit(X, y, sample_weight=w)
    repeated = LinearProbe(C=1.0, class_weight=None).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    assert np.allclose(weighted.coef_, repeated.coef_, atol=1e-3)
    plain = LinearProbe(C=1.0, class_weight=None).fit(X, y)
    assert not np.allclose(weighted.coef_, plain.coef_, atol=1e-2)
    # the training record tells a weighted fit from an unweighted one on the same rows
    assert weighted.training_["embeddings_sha256"] != plain.training_["embeddings_sha256"]
    assert LinearProbe(C=1.0).fit(X, y).training_["embeddings_sha256"] == plain.training_["embeddings_sha256"]


@pytest.mark.parametrize("power", [None, 1.0])
def test_oof_scores_fit_each_fold_on_the_other_groups(power):
    rng = np.random.default_rng(0)
    n, d = 40, 6
    y = np.tile([0, 1], n // 2)
    groups = np.repeat(["g0", "g1", "g2", "g3"], n // 4)
    views = [rng.standard_normal((n, d)) + y[:, None] for _ in range(2)]
    held = rng.standard_normal((n, d)) + y[:, None]
    seen = []

    def weigh(g, lab):
        seen.append(set(g.tolist()))
        assert len(g) == len(lab) == 2 * (n - n // 4)
        return CV.group_balanced_weights(g, lab, power)

    make = lambda: LinearProbe(C=1.0, class_weight="balanced" if power is None else None)  # noqa: E731
    out = CV.oof_scores(views, y, groups, {"held": held}, make, weigh=None if power is None else weigh)["held"]
    for g in ["g0", "g1", "g2", "g3"]:
        test = groups == g
        X = np.concatenate([v[~test] for v in views])
        Y = np.tile(y[~test], 2)
        w = None if power is None else CV.group_balanced_weights(np.tile(groups[~test], 2), Y, power)
        ref = make().fit(X, Y, sample_weight=w).decision_function(held[test])
        assert np.allclose(out[test], ref, atol=1e-5)
    if power is not None:
        assert seen == [{"g1", "g2", "g3"}, {"g0", "g2", "g3"}, {"g0", "g1", "g3"}, {"g0", "g1", "g2"}]
