"""The local engine: load in this process, decode in worker processes, score in this process."""
from __future__ import annotations

import time
from typing import Callable

from provguard.pipeline.decode import Decoder
from provguard.pipeline.manifest import score_table
from provguard.pipeline.scoring import score_decoded


def run_local(source, pending, config, detectors, store, on_items: Callable[[int], None] = lambda n: None,
              **_ignored) -> dict:
    """Score ``pending`` (``[(shard, items)]``) and commit each shard as soon as its last batch is scored.

    Decoding runs ``config.workers`` processes ahead of the detectors across shard boundaries, so the
    model never waits for the next shard's files.
    """
    policy = config.policy
    load_seconds = [0.0]

    def batches():
        for shard, items in pending:
            for start in range(0, len(items), config.batch_size):
                t0 = time.perf_counter()
                payloads = source.load(items[start:start + config.batch_size])
                load_seconds[0] += time.perf_counter() - t0
                yield (shard, start + config.batch_size >= len(items)), payloads

    with Decoder(config.workers, detectors.needs_pixels) as decoder:
        rows: list[dict] = []
        mark = {"load": 0.0, "decode": 0.0, **detectors.timings()}
        wall = time.perf_counter()
        for (shard, last), decoded in decoder.pipeline(batches()):
            rows += score_decoded(decoded, detectors, policy, config.cascade)
            on_items(len(decoded))
            if last:
                now = {"load": load_seconds[0], "decode": decoder.seconds, **detectors.timings()}
                timings = {k: now[k] - mark.get(k, 0.0) for k in now}
                timings["wall"] = time.perf_counter() - wall
                store.complete(shard, score_table(rows), timings)
                rows, mark, wall = [], now, time.perf_counter()
    return {}  # nothing for the run card beyond the shard timings
