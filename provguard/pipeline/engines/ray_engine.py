"""The Ray Data engine: the same score stage on a Ray cluster (or a local Ray instance).

All pending shards become **one** Ray dataset scored by **one** pool of actors (``map_batches`` with
a callable class and ``concurrency=--workers``; ``num_gpus=1`` per actor when ``--device cuda``, or
``auto`` and the cluster has GPUs). Each actor builds the detectors once.

Reading: provguard's own scan still decides the item set and keys (so both engines see the same
items), but the bytes of a folder source's files (images and whole-file texts) are fetched by Ray's
reader, ``ray.data.read_binary_files(paths, include_paths=True)``. Items Ray has no reader for travel
as descriptor rows (``ray.data.from_items``) and the actors load them with the source's own
:meth:`~provguard.pipeline.sources.base.Source.load`: JSONL lines, non-UTF-8 file names, items the
scan already marked bad, and the container sources. Parquet (``read_parquet`` gives no row
position, and keys are ``file#row=N``), webdataset tars (``read_webdataset`` groups members into
samples and drops the per-member keys and truncated-member rows) and ``datasets`` folders stay on
descriptors. The run card's ``ray_reader`` lists the readers used.

The driver collects the scored rows as they stream in and commits a shard (file + marker, exactly
as the local engine does) as soon as its last row arrives, so resume and the manifest do not depend
on the engine. Nothing crashes the run for a bad item: a file gone since the scan is loaded (and
reported) by the driver like the local engine would; if Ray's reader itself fails, the remaining
items are redone on descriptors. The source must be readable from every node (shared file system).

Point it at a cluster with ``RAY_ADDRESS=ray://head:10001`` (or ``ray start --address``); without it
a local Ray instance is started with ``num_cpus=config.workers + 1`` (one slot for the read tasks, or
the actors would hold every CPU and the reader could never run).
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import time
from typing import Callable, Sequence

from provguard.errors import ProvguardError
from provguard.pipeline.items import IMAGE, Payload, SourceItem, text_payload
from provguard.pipeline.manifest import score_table

log = logging.getLogger(__name__)


def ray_path(source, item: SourceItem) -> str | None:
    """The path ``read_binary_files`` fetches for ``item``, or None when the item goes on a descriptor."""
    if source.kind != "folder" or item.error or item.path_raw is None or item.locator.get("line") is not None:
        return None
    if item.path_raw.lower().endswith(b".jsonl"):  # one file, many items: the source splits it
        return None
    try:
        return item.path_raw.decode("utf-8")  # Arrow file systems take UTF-8 paths only
    except UnicodeDecodeError:
        return None


def payload_from_bytes(item: SourceItem, data: bytes) -> Payload:
    """What :meth:`FolderSource.load` gives for an image or whole-file text, from bytes Ray read."""
    from provguard.textio import decode_text

    return Payload(item, data=data) if item.media_type == IMAGE else text_payload(item, *decode_text(data))


def score_items(source, items: Sequence[SourceItem], detectors, policy, cascade: bool,
                payloads: list[Payload] | None = None) -> list[dict]:
    """Rows for ``items`` (loaded by ``source`` unless ``payloads`` are given), decoded in this process."""
    from provguard.pipeline.decode import Decoder
    from provguard.pipeline.scoring import score_decoded

    rows: list[dict] = []
    with Decoder(0, detectors.needs_pixels) as dec:
        for _, decoded in dec.pipeline([(None, payloads if payloads is not None else source.load(items))]):
            rows += score_decoded(decoded, detectors, policy, cascade)
    return rows


class _ScoreActor:
    """Ray actor: detectors built once; ``__call__`` scores one batch of ``{path, bytes, index}`` rows.

    A reader row has ``index == -1`` and is matched to its item by path; a descriptor row has the
    item's index and ``source.load`` fetches it.
    """

    def __init__(self, config_json: str, key_bytes: bytes | None, plan):
        import threading

        import ray

        from provguard.pipeline.config import RunConfig
        from provguard.pipeline.sources import source_from_spec

        items, paths = ray.get(plan) if isinstance(plan, ray.ObjectRef) else plan
        self.by_index = {it.index: it for it in items}
        self.by_path = {p: self.by_index[i] for p, i in paths.items()}
        self.config = RunConfig.from_dict(json.loads(config_json))
        self.key_bytes = key_bytes
        self.source = source_from_spec(self.config.source)
        self.policy = self.config.policy
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
        read, described = [], []
        for path, data, index in zip(batch["path"], batch["bytes"], batch["index"]):
            if index < 0:
                read.append(payload_from_bytes(self.by_path[str(path)], bytes(data)))
            else:
                described.append(self.by_index[int(index)])
        payloads = read + (self.source.load(described) if described else [])
        rows = score_items(self.source, [], self._detectors(), self.policy, self.config.cascade, payloads)
        return {"index": [r["index"] for r in rows], "row": [pickle.dumps(r) for r in rows]}


def _reader_rows(batch: dict) -> dict:
    """``read_binary_files`` output in the shared row layout (``index = -1``: matched by path)."""
    import numpy as np

    return {"path": batch["path"], "bytes": batch["bytes"], "index": np.full(len(batch["path"]), -1, dtype=np.int64)}


def _init_ray(config):
    try:
        import ray
    except ImportError:
        raise ProvguardError("--engine ray needs Ray: pip install 'provguard[ray]' (or \"ray[data]>=2.9\")") from None
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, config.workers) + 1, include_dashboard=False, log_to_driver=False)  # + read tasks
    return ray


def build_dataset(ray, items: list[SourceItem], paths: dict[str, int]):
    """``(dataset, readers used)``: Ray's reader for ``paths``, descriptor rows for the other items."""
    parts, readers = [], []
    if paths:
        parts.append(ray.data.read_binary_files(list(paths), include_paths=True, ignore_missing_paths=True)
                     .map_batches(_reader_rows, batch_format="numpy"))
        readers.append("read_binary_files")
    by_path = set(paths.values())
    rest = [{"path": "", "bytes": b"", "index": it.index} for it in items if it.index not in by_path]
    if rest:
        parts.append(ray.data.from_items(rest))
        readers.append("from_items")
    return (parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]), readers


def run_ray(source, pending, config, detectors, store, on_items: Callable[[int], None] = lambda n: None,
            key=None, **_ignored) -> dict:
    """Score ``pending`` shards as one Ray dataset, committing each shard from the driver when complete.

    Returns ``{"ray_reader": [...]}`` (the readers used) for the run card.
    """

    ray = _init_ray(config)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    use_gpu = config.device == "cuda" or (config.device == "auto" and gpus > 0)
    actors = max(1, min(config.workers, gpus) if use_gpu and gpus else config.workers)
    items = [it for _, chunk in pending for it in chunk]
    chunks = dict(pending)
    shard_of = {it.index: shard for shard, chunk in pending for it in chunk}
    left = {shard: len(chunk) for shard, chunk in pending}
    rows: dict[int, dict] = {}
    wall = [time.perf_counter()]

    def take(index: int, row: dict) -> None:
        shard = shard_of[index]
        rows[index] = row
        left[shard] -= 1
        if left[shard] == 0:  # the shard's last row: commit it now (resume keeps it)
            done = sorted((rows.pop(it.index) for it in chunks[shard]), key=lambda r: r["index"])
            store.complete(shard, score_table(done), {"wall": time.perf_counter() - wall[0]})
            wall[0] = time.perf_counter()

    seen: set[int] = set()

    def consume(paths: dict[str, int]) -> list[str]:
        todo = [it for it in items if it.index not in seen]
        paths = {p: i for p, i in paths.items() if i not in seen}
        ds, readers = build_dataset(ray, todo, paths)
        args = (json.dumps(config.to_dict()), bytes(key) if key is not None else None, ray.put((todo, paths)))
        ds = ds.map_batches(_ScoreActor, fn_constructor_args=args,
                            batch_size=config.batch_size, concurrency=actors, num_gpus=1 if use_gpu else 0,
                            batch_format="numpy")
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for index, raw in zip(batch["index"], batch["row"]):
                seen.add(int(index))
                take(int(index), pickle.loads(raw))
            on_items(len(batch["index"]))
        return readers

    paths = {p: it.index for it in items if (p := ray_path(source, it))}
    try:
        readers = consume(paths)
    except Exception as exc:  # Ray's reader failed (unreadable file, odd path): redo the rest on descriptors
        if not paths:
            raise
        log.warning("Ray's reader failed (%s); scoring the remaining items from descriptors", exc)
        readers = ["read_binary_files (failed)"] + consume({})
    missing = [it for it in items if it.index not in seen]  # files gone since the scan (ignore_missing_paths)
    if missing:
        policy = config.policy
        for row in score_items(source, missing, detectors, policy, config.cascade):
            take(row["index"], row)
        on_items(len(missing))
    return {"ray_reader": readers}
