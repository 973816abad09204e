"""Engines run the score stage over the pending shards and commit each finished shard.

Both take the same arguments and write the same shard files, so the manifest does not depend on the
engine: :func:`~provguard.pipeline.engines.local.run_local` (a decoding process pool beside the model
in this process) and :func:`~provguard.pipeline.engines.ray_engine.run_ray` (Ray Data, actor pools).
"""
from __future__ import annotations

ENGINES = ("local", "ray")


def get_engine(name: str):
    """The ``run_*`` function of engine ``name``."""
    if name == "local":
        from provguard.pipeline.engines.local import run_local

        return run_local
    if name == "ray":
        from provguard.pipeline.engines.ray_engine import run_ray

        return run_ray
    raise ValueError(f"unknown engine {name!r}; choose from {ENGINES}")
