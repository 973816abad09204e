"""Model families of the simulator, by name (``create_family(cfg, device)``)."""
from __future__ import annotations

import importlib

_FAMILIES = {
    "gaussian": "provguard.sim.families.gaussian:GaussianFamily",
    "gmm": "provguard.sim.families.gmm:GMMFamily",
    "categorical": "provguard.sim.families.categorical:CategoricalFamily",
    "ddpm": "provguard.sim.families.images:ImageFamily",
}


def list_families() -> list[str]:
    return sorted(_FAMILIES)


def create_family(cfg, device):
    """Instantiate the family ``cfg.model`` on ``device``."""
    module, attr = _FAMILIES[cfg.model].split(":")
    return getattr(importlib.import_module(module), attr)(cfg, device)
