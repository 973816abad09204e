"""Exact detectors have uniform p-values under the null (Kolmogorov-Smirnov on many draws).

Their statistics are counts, so the reported p-value ``P(X >= x)`` is discrete; the randomised
p-value ``p - U * P(X = x)`` (U uniform, independent) is then *exactly* Uniform(0, 1) under the null,
and we test that. It is built from the p-value the detector reports, so an off-by-one tail
(``P(X > x)``) or a normal approximation fails too.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom, kstest

from provguard.watermark.image import create_image_watermark
from provguard.watermark.text import TextWatermarkDetector, create_scheme
from provguard.watermark.text.stats import binomial_p_value

RNG = np.random.default_rng(1234)


def _randomised(p: np.ndarray, pmf: np.ndarray) -> np.ndarray:
    return p - RNG.random(len(p)) * pmf


def test_keyed_image_p_values_are_uniform_under_the_null(photos_512):
    images = [np.ascontiguousarray(img[y:y + 128, x:x + 128]) for img in photos_512[:4] for y, x in ((0, 0), (300, 200))]
    p, m = [], []
    for k in range(30):
        for r in create_image_watermark("provguard", key=f"uniform-{k}".encode()).detect(images, fpr=1e-3):
            p.append(r.p_value)
            m.append(r.bits_matched)
    p, m = np.array(p), np.array(m)  # 240 draws
    u = _randomised(p, binom.pmf(m, 64, 0.5))
    assert (u >= 0).all() and (u <= 1).all()
    assert kstest(u, "uniform").pvalue > 1e-3, (m.mean(), m.var())


@pytest.mark.parametrize("name,width", [("provguard-lefthash", 1), ("provguard-selfhash", 3)])
def test_text_p_values_are_uniform_under_the_null(name, width):
    docs = [RNG.integers(0, 50_000, int(n)).tolist() for n in RNG.integers(20, 200, 600)]
    p, g, t, gamma = [], [], [], 0.25
    for k in range(3):  # three keys, 200 documents each
        scheme = create_scheme(name, f"uniform-{k}", gamma=gamma, context_width=width)
        for r in TextWatermarkDetector(None, scheme, find_spans=False).score_ids(docs[k * 200:(k + 1) * 200]):
            p.append(r.p_value)
            g.append(r.green)
            t.append(r.tokens_scored)
    p, g, t = np.array(p), np.array(g), np.array(t)
    np.testing.assert_allclose(p, binom.sf(g - 1, t, gamma), rtol=1e-12)  # what is reported is the exact tail
    assert kstest(_randomised(p, binom.pmf(g, t, gamma)), "uniform").pvalue > 1e-3


def test_binomial_p_value_is_uniform_when_randomised():
    t = RNG.integers(1, 300, 5000)
    g = RNG.binomial(t, 0.25)
    p = binomial_p_value(g, t, 0.25)
    assert kstest(_randomised(p, binom.pmf(g, t, 0.25)), "uniform").pvalue > 1e-3
    # the check has power: the off-by-one tail P(X > g) is far from uniform
    assert kstest(_randomised(binom.sf(g, t, 0.25), binom.pmf(g, t, 0.25)), "uniform").pvalue < 1e-6
