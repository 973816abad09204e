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
    """Family names in registry order."""
    return list(_FAMILIES)


def family_class(name: str) -> type:
    """The :class:`~provguard.sim.families.base.Family` subclass registered as ``name`` (its class
    attributes declare its capabilities: ``continuous``, ``has_density``, ``has_stats_path``, ...)."""
    module, attr = _FAMILIES[name].split(":")
    return getattr(importlib.import_module(module), attr)


def families_with(capability: str) -> list[str]:
    """Names of the families whose class declares ``capability`` true, in registry order."""
    return [name for name in _FAMILIES if getattr(family_class(name), capability)]


def create_family(cfg, device):
    """Instantiate the family ``cfg.model`` on ``device``."""
    return family_class(cfg.model)(cfg, device)
