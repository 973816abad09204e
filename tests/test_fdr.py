"""Run-wide false discovery control for watermark evidence (Benjamini-Hochberg / -Yekutieli)."""
from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from provguard.errors import ProvguardError
from provguard.pipeline.decide import DecisionPolicy, decide_table
from provguard.pipeline.fdr import harmonic, step_up, watermark_p_values
from provguard.pipeline.manifest import score_table


def _brute_force(p, q, by=False):
    """Rejections by the textbook definition: try every k from m down, reject the k smallest."""
    m = len(p)
    level = q / float(sum(Fraction(1, i) for i in range(1, m + 1))) if by else q
    order = sorted(range(m), key=lambda i: p[i])
    for k in range(m, 0, -1):
        if p[order[k - 1]] <= k * level / m:
            return set(order[:k])
    return set()


def test_benjamini_hochberg_1995_worked_example():
    # the 15 p-values of Benjamini & Hochberg (1995), section 4.2: at q = 0.05 BH rejects the four smallest
    p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719,
         0.6528, 0.7590, 1.0000]
    r = step_up(p, 0.05)
    assert r.rejected == 4 and r.tests == 15
    assert sum(v <= r.cutoff for v in p) == 4
    assert r.expected_false == pytest.approx(0.05 * 4)


@pytest.mark.parametrize("method", ["bh", "by"])
def test_matches_the_textbook_definition_on_random_runs(method):
    rng = np.random.default_rng(3)
    for trial in range(200):
        m = int(rng.integers(1, 60))
        signal = rng.random(m) < 0.3
        p = np.where(signal, rng.random(m) * 1e-3, rng.random(m))
        q = float(rng.choice([0.01, 0.05, 0.2]))
        r = step_up(p, q, method)
        expected = _brute_force(list(p), q, by=method == "by")
        assert r.rejected == len(expected), trial
        assert set(np.nonzero(p <= r.cutoff)[0]) == expected, trial
        assert 0 < r.cutoff < 1


def test_cap_treats_larger_p_values_as_one():
    rng = np.random.default_rng(4)
    for _ in range(100):
        p = rng.random(40) ** 3
        cap = float(rng.choice([1e-3, 1e-2, 0.05]))
        r = step_up(p, 0.2, cap=cap)
        expected = _brute_force([v if v <= cap else 1.0 for v in p], 0.2)
        assert set(np.nonzero(p <= r.cutoff)[0]) == expected
        assert r.cutoff <= cap


def test_harmonic_number_exact_and_asymptotic():
    assert harmonic(4) == pytest.approx(25 / 12)
    exact = float(np.sum(1.0 / np.arange(1, 200_001)))
    assert harmonic(200_000) == pytest.approx(exact, rel=1e-12)


def test_false_discovery_rate_is_controlled_in_simulation():
    """Under the global null BH rejects anything with probability <= q; with signals the mean false
    discovery proportion stays <= q * m0 / m (Monte Carlo, 2,000 runs)."""
    rng = np.random.default_rng(5)
    q, m, runs = 0.1, 500, 2000
    any_rejection = sum(step_up(rng.random(m), q).rejected > 0 for _ in range(runs)) / runs
    assert 0.07 < any_rejection < 0.125  # = q for independent uniforms; Monte Carlo sd ~0.007
    fdp = []
    for _ in range(runs):
        signal = np.arange(m) < 50
        p = np.where(signal, rng.random(m) * 1e-4, rng.random(m))
        r = step_up(p, q)
        rejected = p <= r.cutoff
        fdp.append((rejected & ~signal).sum() / max(1, rejected.sum()))
    assert np.mean(fdp) <= q * 450 / 500 + 0.01
    assert np.mean(fdp) > 0.05  # not vacuous: BH uses the budget


def test_bad_levels_and_p_values_are_clear_errors():
    with pytest.raises(ProvguardError, match="fdr must be in"):
        step_up([0.1], 1.5)
    with pytest.raises(ProvguardError, match="fdr_method"):
        step_up([0.1], 0.1, "holm")
    with pytest.raises(ProvguardError, match=r"in \[0, 1\]"):
        step_up([0.1, float("nan")], 0.1)
    with pytest.raises(ProvguardError, match="fdr must be in"):
        DecisionPolicy(fdr=0.0)
    assert step_up([], 0.01).rejected == 0


def _evidence(p_sd, p_text=None):
    ev = [{"detector": "sd-watermark", "verdict": "synthetic" if p_sd < 0.5 else "none", "score": 40.0,
           "p_value": p_sd, "reason": "watermark:sd:detected" if p_sd < 0.5 else "watermark:sd:absent",
           "strength": "strong", "tier": "watermark", "detail": {}}]
    if p_text is not None:
        ev.append({"detector": "text-watermark", "verdict": "none", "score": 1.0, "p_value": p_text,
                   "reason": "watermark:text:absent", "strength": "weak", "tier": "watermark", "detail": {}})
    return ev


def _scores(evidence_rows):
    return score_table([{"index": i, "key": f"k{i}", "media_type": "image", "size": 1, "evidence": json.dumps(ev),
                         "detectors_run": ["sd-watermark"]} for i, ev in enumerate(evidence_rows)])


def test_decide_applies_one_cutoff_over_the_run():
    rng = np.random.default_rng(6)
    clean = list(rng.random(2000) * 0.999 + 1e-3)  # p in (1e-3, 1): never significant
    clean[:3] = [2e-4, 5e-4, 9e-4]                 # three real photos under the old per-item 1e-3 rule
    marked = [1e-9, 3e-9, 2e-8]
    rows = [_evidence(p) for p in clean + marked]
    per_item, t_item = decide_table(_scores(rows), {"sd-watermark": "watermark"}, DecisionPolicy(fdr=None))
    assert sum(d["decision"] == "reject" for d in per_item) == 6
    assert t_item == {"mode": "per-item", "tests": 2003, "cutoff": 1e-3, "rejected": 6,
                      "expected_false_discoveries": pytest.approx(2.003)}
    decisions, tests = decide_table(_scores(rows), {"sd-watermark": "watermark"}, DecisionPolicy(fdr=0.01))
    rejected = [i for i, d in enumerate(decisions) if d["decision"] == "reject"]
    assert rejected == [2000, 2001, 2002]  # BH: 2e-8 <= 3 * 0.01 / 2003, 2e-4 > 4 * 0.01 / 2003
    assert tests["rejected"] == 3 and tests["cutoff"] == pytest.approx(3 * 0.01 / 2003)
    assert tests["expected_false_discoveries"] == pytest.approx(0.03)


def test_every_watermark_p_value_is_a_test():
    rows = [_evidence(0.5, 0.2), _evidence(1e-12), [{"detector": "sd-watermark", "verdict": "none", "score": None,
                                                     "p_value": None, "reason": "watermark:sd:not-applicable",
                                                     "strength": "weak", "tier": "watermark", "detail": {}}]]
    assert watermark_p_values(rows) == [0.5, 0.2, 1e-12]
    _, tests = decide_table(_scores(rows), {"sd-watermark": "watermark"}, DecisionPolicy(fdr=0.05, fdr_method="by"))
    assert tests["tests"] == 3 and tests["rejected"] == 1
    assert tests["cutoff"] == pytest.approx(min(1e-3, 0.05 / (1 + 1 / 2 + 1 / 3) / 3))  # capped at watermark_alpha
