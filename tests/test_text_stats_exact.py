"""Text statistics at their edges: the window grid worked by hand from its documented rule, the best
window's reported counts against a direct count, ties, the Bonferroni cap, and one-token documents."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from provguard.watermark.text.stats import best_window, binomial_p_value, window_grid, z_score


def test_window_grid_worked_by_hand():
    # length 60, default min_window 25, growth sqrt 2, stride = max(1, int(size / 4)):
    # sizes 25, round(35.36) = 35, round(50.0) = 50, then round(70.7) >= 60 stops; plus the whole 60.
    # 25: stride 6 -> 0..30 step 6, plus the end-aligned 35;  35: stride 8 -> 0, 8, 16, 24, plus 25;
    # 50: stride 12 -> 0, plus 10;  60: 0
    starts, sizes = window_grid(60)
    assert starts.tolist() == [0, 6, 12, 18, 24, 30, 35, 0, 8, 16, 24, 25, 0, 10, 0]
    assert sizes.tolist() == [25] * 7 + [35] * 5 + [50] * 2 + [60]


def test_window_grid_small_windows_slide_by_one():
    # length 6, min_window 4: sizes 4 and (round(5.66) = 6 >= 6 stops) the whole 6; int(4 / 4) = 1
    starts, sizes = window_grid(6, min_window=4)
    assert starts.tolist() == [0, 1, 2, 0] and sizes.tolist() == [4, 4, 4, 6]
    starts, sizes = window_grid(7, min_window=4)  # 4: 0..3 step 1; round(5.66) = 6: stride 1, 0..1; 7
    assert starts.tolist() == [0, 1, 2, 3, 0, 1, 0] and sizes.tolist() == [4, 4, 4, 4, 6, 6, 7]


def test_one_scored_token():
    # one green token of one: P(X >= 1) = gamma; z = (1 - gamma) / sqrt(gamma (1 - gamma))
    assert float(binomial_p_value(1, 1, 0.25)) == pytest.approx(0.25)
    assert float(binomial_p_value(0, 1, 0.25)) == 1.0
    assert float(z_score(1, 1, 0.25)) == pytest.approx(0.75 / math.sqrt(0.1875))


def test_z_score_of_an_empty_document_is_nan_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = z_score([0, 4], [0, 8], 0.5)
    assert np.isnan(z[0]) and z[1] == pytest.approx(0.0)


def _direct(seq, w, gamma):
    """The reported window's green count and raw tail, counted directly from the sequence."""
    g = int(np.count_nonzero(seq[w.start:w.end]))
    return g, float(binomial_p_value(g, w.end - w.start, gamma))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_window_reports_its_own_counts(seed):
    rng = np.random.default_rng(seed)
    seq = rng.random(300) < 0.25
    seq[:90] = rng.random(90) < 0.9  # a marked passage at the very start (windows starting at 0 win)
    w = best_window(seq, 0.25, min_window=10)
    g, raw = _direct(seq, w, 0.25)
    assert w.start == 0 and w.green == g and w.p_value_raw == pytest.approx(raw, rel=1e-12)
    assert w.windows_searched == len(window_grid(300, 10)[0]) != len(window_grid(300, 25)[0])
    assert w.p_value == pytest.approx(raw * w.windows_searched, rel=1e-12)
    # and it is the smallest raw p-value over every window of the grid, counted directly
    starts, sizes = window_grid(300, 10)
    every = [float(binomial_p_value(int(seq[s:s + n].sum()), n, 0.25)) for s, n in zip(starts, sizes)]
    assert w.p_value_raw == pytest.approx(min(every), rel=1e-12)


def test_ties_go_to_the_longest_window_and_p_is_capped_at_one():
    # no green token: every window has p = 1, so the whole sequence is reported, and 1 * W is capped at 1
    w = best_window(np.zeros(60, bool), 0.25)
    assert (w.start, w.end, w.green) == (0, 60, 0)
    assert w.p_value == 1.0 and w.p_value_raw == 1.0 and w.windows_searched == 15
