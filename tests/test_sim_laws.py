"""The simulator against the exact laws of self-consuming loops (within 4 Monte Carlo standard errors)."""
import pytest
import torch

from provguard.sim import validate as V

torch.set_num_threads(1)


@pytest.mark.parametrize("title,check", V.CHECKS, ids=[t for t, _ in V.CHECKS])
def test_exact_law(title, check):
    laws = check(2000)
    assert laws
    for law in laws:
        assert law.se > 0 or law.simulated == law.theory, law
        assert law.ok, f"{law.name}: theory {law.theory:.5g}, simulated {law.simulated:.5g} +- {law.se:.2g} (z={law.z:.2f})"


def test_law_check_can_fail():
    """A wrong theory value is caught: the same draws against lambda^t instead of lambda^(t-1)."""
    laws = V.gaussian_log_moments(2000, "stats", lam=0.8)
    import math
    shifted = V.Law("wrong", laws[0].theory + math.log(0.8), laws[0].simulated, laws[0].se)
    assert not shifted.ok
