"""The Ray Data engine: the same score stage on a Ray cluster (or a local Ray instance).

Each pending shard's item descriptors become a Ray dataset (``ray.data.from_items``); a pool of
scoring actors (``map_batches`` with ``concurrency``) each builds the detectors once, loads the
items' bytes from the source (the source must be reachable from every node: a shared file system or
object store path), decodes and scores them; the driver writes the shard files and markers exactly
as the local engine does, so the manifest is identical. GPU actors (``num_gpus=1``) are requested
when ``config.device`` is ``cuda``, or ``auto`` and the cluster has GPUs.

Point it at a cluster with ``RAY_ADDRESS=ray://head:10001`` (or ``ray start --address``); without it a
local Ray instance is started with ``num_cpus=config.workers``.
"""
from __future__ import annotations

import json
import os
import time
from typing import Callable

from provguard.errors import ProvguardError
from provguard.pipeline.items import SourceItem
from provguard.pipeline.manifest import score_table


class _ScoreActor:
    """Ray actor: detectors built once; ``__call__`` scores one batch of item descriptors."""

    def __init__(self, config_json: str, key_bytes: bytes | None):
        import threading

        from provguard.detectors.fusion import Policy
        from provguard.pipeline.config import RunConfig
        from provguard.pipeline.sources import source_from_spec

        self.config = RunConfig.from_dict(json.loads(config_json))
        self.key_bytes = key_bytes
        self.source = source_from_spec(self.config.source)
        self.policy = Policy(**self.config.policy)
        self._local = threading.local()  # Ray may call from another thread; the embedding cache is per thread

    def _detectors(self):
        if not hasattr(self._local, "detectors"):
            from provguard.keys import SecretKey
            from provguard.pipeline.detector_set import build_detectors

            key = SecretKey(self.key_bytes) if self.key_bytes else None
            device = None if self.config.device == "auto" else self.config.device
            self._local.detectors = build_detectors(self.config, key, device)
        return self._local.detectors

    def __call__(self, batch: dict) -> dict:
        from provguard.pipeline.decode import Decoder
        from provguard.pipeline.scoring import score_decoded

        items = [SourceItem(int(i), k, m, json.loads(loc), int(s), bytes(p) if p is not None and len(p) else None, e or None)
                 for i, k, m, loc, s, p, e in zip(batch["index"], batch["key"], batch["media_type"], batch["locator"],
                                                   batch["size"], batch["path_raw"], batch["error"])]
        detectors = self._detectors()
        with Decoder(0, detectors.needs_pixels) as dec:
            rows = []
            for _, decoded in dec.pipeline([(None, self.source.load(items))]):
                rows += score_decoded(decoded, detectors, self.policy, self.config.cascade)
        return {"row": [json.dumps({**r, "path_raw": r["path_raw"].hex() if r["path_raw"] else None}) for r in rows]}


def _init_ray(config):
    try:
        import ray
    except ImportError:
        raise ProvguardError("--engine ray needs Ray: pip install 'provguard[ray]' (or \"ray[data]>=2.9\")") from None
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, config.workers), include_dashboard=False, log_to_driver=False)
    return ray


def run_ray(source, pending, config, detectors, store, on_items: Callable[[int], None] = lambda n: None,
            key=None, **_ignored) -> None:
    """Score ``pending`` shards on Ray Data and commit each shard from the driver."""
    ray = _init_ray(config)
    gpus = ray.cluster_resources().get("GPU", 0)
    use_gpu = config.device == "cuda" or (config.device == "auto" and gpus > 0)
    actors = max(1, config.workers)
    for shard, items in pending:
        start = time.perf_counter()
        rows = [{"index": it.index, "key": it.key, "media_type": it.media_type, "locator": json.dumps(it.locator),
                 "size": it.size, "path_raw": it.path_raw or b"", "error": it.error or ""} for it in items]
        ds = ray.data.from_items(rows).map_batches(
            _ScoreActor, fn_constructor_args=(json.dumps(config.to_dict()), bytes(key) if key is not None else None),
            batch_size=config.batch_size, concurrency=actors, num_gpus=1 if use_gpu else 0, batch_format="numpy")
        scored = [json.loads(r["row"]) for r in ds.take_all()]
        for r in scored:
            r["path_raw"] = bytes.fromhex(r["path_raw"]) if r["path_raw"] else None
        scored.sort(key=lambda r: r["index"])
        store.complete(shard, score_table(scored), {"wall": time.perf_counter() - start})
        on_items(len(items))
