"""Metric and random-stream properties."""
import math

import numpy as np
import pytest
import torch
from scipy import linalg, stats

from provguard.sim import metrics as M
from provguard.sim.rng import ChainStreams, splitmix64
from provguard.watermark.prf import splitmix64 as prf_splitmix64


def test_splitmix_matches_prf():
    x = np.array([0, 1, 12345, 2 ** 63 + 7, 2 ** 64 - 1], dtype=np.uint64)
    got = splitmix64(torch.from_numpy(x.view(np.int64))).numpy().view(np.uint64)
    assert (got == prf_splitmix64(x)).all()


def test_streams_are_prefix_stable_and_batch_independent():
    a = ChainStreams(3, torch.arange(5))
    b = ChainStreams(3, torch.tensor([4, 2]))
    assert torch.equal(a.normal(2, "x", (7, 3))[[4, 2]], b.normal(2, "x", (7, 3)))
    assert torch.equal(a.uniform(1, "u", (10,))[:, :6], a.uniform(1, "u", (6,)))
    assert not torch.equal(a.uniform(1, "u", (6,)), a.uniform(2, "u", (6,)))


@pytest.mark.parametrize("shape", [0.5, 0.8, 3.0, 40.0])
def test_gamma_sampler_distribution(shape):
    s = ChainStreams(0, torch.arange(20000))
    g = s.gamma(0, "g", torch.full((20000, 1), shape))[:, 0].numpy()
    assert stats.kstest(g, stats.gamma(shape).cdf).pvalue > 1e-3


def test_frechet_matches_scipy_and_survives_collapse():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T, b @ b.T
    m1, m2 = rng.normal(size=6), rng.normal(size=6)
    ref = ((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    got = M.frechet(*(torch.tensor(v)[None] for v in (m1, s1, m2, s2)))
    assert float(got) == pytest.approx(ref, rel=1e-8)
    collapsed = torch.zeros(1, 6, 6)
    collapsed[0, 0, 0] = 1e-300
    val = M.frechet(torch.zeros(1, 6), collapsed, torch.zeros(1, 6), torch.eye(6)[None])
    assert math.isfinite(float(val)) and float(val) == pytest.approx(6.0)


def test_prdc_detects_mode_collapse():
    s = ChainStreams(1, torch.arange(4))
    real = s.normal(0, "r", (300, 4))
    narrow = 0.3 * s.normal(0, "f", (300, 4))
    out = M.prdc(real, narrow, 5)
    assert float(out["precision"].mean()) > 0.9 and float(out["recall"].mean()) < 0.5


def test_n_eff_inverts_the_one_over_n_law():
    assert float(M.n_eff(torch.tensor([0.01]), 2.0)) == pytest.approx(200.0)


def test_one_dimensional_prdc_and_kid_equal_the_matrix_versions():
    """The O(n log n) 1-D PRDC and O(n) 1-D KID against the distance-matrix code on the same points
    embedded in 2-D (a zero second coordinate keeps every distance; sqrt(2) scaling keeps x.y/d)."""
    s = ChainStreams(5, torch.arange(6))
    a, b = s.normal(0, "a", (200, 1)), 0.7 * s.normal(0, "b", (150, 1)) + 0.3
    lift = lambda x: torch.cat([x * math.sqrt(2), torch.zeros_like(x)], -1)
    one, two = M.prdc(a, b, 5), M.prdc(lift(a), lift(b), 5)
    for name in one:
        assert torch.equal(one[name], two[name]), name
    assert torch.allclose(M.kid(a, b), M.kid(lift(a), lift(b)), rtol=1e-9, atol=1e-12)
    assert float(one["precision"].min()) < 1.0  # not a trivial case


def test_binomial_draws_are_exact_and_batch_independent():
    n = torch.tensor([40, 40, 7, 0, 40] * 4000)
    p = torch.tensor([0.3, 0.3, 0.9, 0.5, 1.0] * 4000)
    s = ChainStreams(2, torch.arange(len(n)))
    k = s.binomial(1, "k", n, p)
    assert torch.equal(s.subset(torch.arange(3, 9)).binomial(1, "k", n[3:9], p[3:9]), k[3:9])
    assert bool((k[3::5] == 0).all()) and bool((k[4::5] == 40).all())
    for sel, (nn, pp) in ((slice(0, None, 5), (40, 0.3)), (slice(2, None, 5), (7, 0.9))):
        counts = np.bincount(k[sel].numpy(), minlength=nn + 1)
        expected = stats.binom.pmf(np.arange(nn + 1), nn, pp) * counts.sum()
        keep = expected > 5
        chi2 = (((counts - expected) ** 2 / expected)[keep]).sum()
        assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3
