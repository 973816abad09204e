"""LinearProbe keeps scikit-learn's estimator contract where it applies (issue 12, item 5).

The checks below are scikit-learn's own. Those left out do not apply to a provenance probe by design:
they fit labels other than 0 (real) / 1 (synthetic), or call ``predict`` on a probe that has not been
calibrated (``predict`` refuses an uncalibrated threshold; ``decision_function`` is the raw score).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks

from provguard.detectors.probe import LinearProbe, ProbeError

APPLICABLE = ("check_no_attributes_set_in_init", "check_parameters_default_constructible",
              "check_get_params_invariance", "check_set_params", "check_estimators_unfitted",
              "check_fit_check_is_fitted", "check_estimator_repr", "check_estimator_cloneable",
              "check_decision_proba_consistency", "check_classifiers_one_label", "check_n_features_in")


@pytest.mark.parametrize("name", APPLICABLE)
def test_scikit_learn_checks_that_apply(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(estimator_checks, name)("LinearProbe", LinearProbe())


def test_clone_params_and_fitted_state_only_from_fit():
    probe = LinearProbe(kind="svm", C=0.5)
    assert probe.get_params() == {"kind": "svm", "C": 0.5, "normalize": True, "class_weight": "balanced",
                                  "max_iter": 5000}
    copy = clone(probe.set_params(C=2.0))
    assert copy.get_params()["C"] == 2.0 and copy is not probe
    assert not hasattr(copy, "coef_") and not hasattr(copy, "n_features_in_")
    for method in ("decision_function", "predict_proba", "predict"):
        with pytest.raises(NotFittedError):
            getattr(copy, method)(np.ones((2, 3)))
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (20, 3)), rng.normal(2, 1, (20, 3))])
    y = np.repeat([0, 1], 20)
    fitted = copy.fit(X, y)
    assert fitted.n_features_in_ == 3 and fitted.get_params()["C"] == 2.0  # fit leaves the parameters alone
    assert not hasattr(clone(fitted), "coef_")  # a clone is unfitted
    with pytest.raises(ProbeError, match="calibrat"):
        fitted.predict(X)  # fitted but not calibrated: no threshold to apply
