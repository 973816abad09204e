"""The content filter's reported numbers against closed forms (public API only: SimConfig, Engine, summary).

On 1-D standard normal real data the content score is the surprisal ``x**2 / 2``, so a filter at
false-positive rate ``f`` must cut at ``z**2 / 2`` with ``z = Phi^-1(1 - f/2)`` (the two-sided normal
quantile, up to the conformal calibration's sampling error), and keep ``(1 - f) n_r`` real samples
per generation on average (exactly ``n_r (1 - 2 Phi(-c))`` for the cut ``c`` it used).
"""
import math

import pytest
import torch
from scipy.stats import norm

from provguard.sim.config import SimConfig
from provguard.sim.engine import Engine

torch.set_num_threads(1)


@pytest.mark.parametrize("f", [0.05, 0.2])
def test_content_filter_cut_off_is_the_normal_quantile_and_keeps_1_minus_f(f):
    n_real, chains = 200, 400
    cfg = SimConfig(loop="fresh", dim=1, n_real=n_real, n_synth=0, generations=1, filter_kind="content",
                    filter_fpr=f, chains=chains, metrics="fast")
    eng = Engine([cfg])
    threshold = float(eng.thresholds[0])
    z = norm.ppf(1 - f / 2)
    # calibration on 20,000 held-out real draws: the cut's standard error is about
    # sqrt(f (1 - f) / n) / (2 phi(z)) in |x|, times z in the surprisal z**2 / 2
    se = z * math.sqrt(f * (1 - f) / 20000) / (2 * norm.pdf(z))
    assert threshold == pytest.approx(z * z / 2, abs=5 * se)
    kept = eng.run().summary()[0]["kept_real"]
    c = math.sqrt(2 * threshold)
    exact = n_real * (1 - 2 * norm.sf(c))  # for the cut actually used
    mc_se = math.sqrt(n_real * f * (1 - f) / chains)
    assert kept == pytest.approx(exact, abs=5 * mc_se)
    assert kept == pytest.approx((1 - f) * n_real, abs=5 * mc_se + 5 * n_real * math.sqrt(f * (1 - f) / 20000))
