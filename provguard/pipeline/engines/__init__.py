"""Engines run the score stage over the pending shards and commit each finished shard.

Both take the same arguments and write the same shard files, so the manifest does not depend on the
engine: :func:`~provguard.pipeline.engines.local.run_local` (a decoding process pool beside the model
in this process) and :func:`~provguard.pipeline.engines.ray_engine.run_ray` (Ray Data, actor pools).
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Protocol

from provguard.errors import BadArgument

#: engine name -> "module:function" (loaded on first use: Ray is optional)
ENGINES = {"local": "provguard.pipeline.engines.local:run_local",
           "ray": "provguard.pipeline.engines.ray_engine:run_ray"}


class Engine(Protocol):
    """Scores ``pending`` (``[(shard, items)]``) with ``detectors``, commits each finished shard to
    ``store``, and returns what the run card records about the engine (``{}`` when nothing)."""

    def __call__(self, source, pending, config, detectors, store, *, on_items: Callable[[int], None],
                 key=None) -> dict[str, Any]: ...


def list_engines() -> list[str]:
    """Names accepted by :func:`get_engine` (and ``--engine``)."""
    return sorted(ENGINES)


def get_engine(name: str) -> Engine:
    """The engine registered as ``name``."""
    if name not in ENGINES:
        raise BadArgument(f"unknown engine {name!r}; {{name}} is one of {', '.join(list_engines())}", "engine")
    module, attr = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), attr)
