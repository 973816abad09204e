"""Exact binomial p-values and the windowed span search."""
from fractions import Fraction
from math import comb

import numpy as np
import pytest
from scipy.stats import norm

from provguard.watermark.text.stats import best_window, binomial_p_value, window_grid, z_score


def _tail(g, n, gamma):
    gamma = Fraction(gamma)
    return float(sum(comb(n, k) * gamma**k * (1 - gamma) ** (n - k) for k in range(g, n + 1)))


@pytest.mark.parametrize("g,n", [(0, 10), (3, 10), (10, 10), (25, 50), (40, 100), (60, 100), (90, 200)])
def test_p_value_is_the_exact_binomial_tail(g, n):
    assert binomial_p_value(g, n, 0.25) == pytest.approx(_tail(g, n, 0.25), rel=1e-9, abs=1e-300)


def test_p_value_vectorised_and_empty():
    p = binomial_p_value([5, 0, 3], [10, 0, 3], 0.5)
    assert p[0] == pytest.approx(_tail(5, 10, 0.5)) and p[1] == 1.0 and p[2] == pytest.approx(0.125)
    assert np.isnan(z_score(0, 0, 0.25))


def test_exact_tail_differs_from_normal_approximation_where_it_matters():
    # 100 tokens, 50 green: z = 5.77; the normal tail understates the binomial tail several-fold
    z = float(z_score(50, 100, 0.25))
    assert z == pytest.approx(25 / np.sqrt(18.75))
    exact = float(binomial_p_value(50, 100, 0.25))
    assert exact == pytest.approx(_tail(50, 100, 0.25), rel=1e-9)
    assert exact > 3 * norm.sf(z)


def test_window_grid_covers_whole_sequence_and_ends():
    starts, sizes = window_grid(300, min_window=25)
    assert (starts >= 0).all() and (starts + sizes <= 300).all()
    assert ((starts == 0) & (sizes == 300)).sum() == 1
    for s in np.unique(sizes):
        assert (starts[sizes == s] + s).max() == 300
    assert window_grid(10, 25)[1].tolist() == [10]


def test_best_window_finds_planted_span_and_corrects_p():
    rng = np.random.default_rng(3)
    seq = rng.random(1000) < 0.25
    seq[400:520] = rng.random(120) < 0.8
    w = best_window(seq, 0.25, min_window=25)
    assert w.windows_searched > 50
    assert w.p_value == pytest.approx(min(1.0, w.p_value_raw * w.windows_searched))
    assert w.start < 440 and w.end > 480 and w.p_value < 1e-10
    null = best_window(rng.random(1000) < 0.25, 0.25)
    assert null.p_value > 1e-3
    assert best_window(np.zeros(0, bool), 0.25) is None
