"""Shards: the unit of work and of resume.

The scan's item list is frozen in ``plan.parquet`` before any scoring, and split into fixed ranges of
``shard_size`` items. A shard is finished when ``shards/shard-NNNNN.parquet`` (written atomically) and
its marker ``shard-NNNNN.done`` (rows, file SHA-256, config fingerprint, timings) both exist and
agree. A run killed at any instant (even ``kill -9``) therefore leaves only finished shards and
temporary files; resuming redoes exactly the unfinished shards, and :meth:`ShardStore.gather` checks
that every index appears exactly once.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from provguard.errors import ProvguardError
from provguard.hashing import file_sha256
from provguard.pipeline.items import SourceItem
from provguard.pipeline.manifest import write_parquet
from provguard.pipeline.rundir import RunDir, read_json, write_json

PLAN_SCHEMA = pa.schema([("index", pa.int64()), ("key", pa.string()), ("media_type", pa.string()),
                         ("locator", pa.string()), ("size", pa.int64()), ("path_raw", pa.binary()),
                         ("error", pa.string())])


class ShardStore:
    """Plan, shard files and completion markers of one run directory."""

    def __init__(self, run: RunDir, shard_size: int, fingerprint: str):
        self.run, self.shard_size, self.fingerprint = run, shard_size, fingerprint

    # -- plan ------------------------------------------------------------------------------------
    def write_plan(self, items: list[SourceItem]) -> None:
        rows = [{"index": it.index, "key": it.key, "media_type": it.media_type, "locator": json.dumps(it.locator),
                 "size": it.size, "path_raw": it.path_raw, "error": it.error} for it in items]
        write_parquet(pa.Table.from_pylist(rows, schema=PLAN_SCHEMA), self.run.plan)

    def read_plan(self) -> list[SourceItem]:
        t = pq.read_table(self.run.plan).to_pylist()
        return [SourceItem(r["index"], r["key"], r["media_type"], json.loads(r["locator"]), r["size"],
                           r["path_raw"], r["error"]) for r in t]

    @staticmethod
    def plan_digest(items: list[SourceItem]) -> str:
        """Source fingerprint: SHA-256 over (key, size) of every item in order."""
        h = hashlib.sha256()
        for it in items:
            h.update(f"{it.key}\0{it.size}\n".encode("utf-8", "surrogateescape"))
        return h.hexdigest()

    # -- shards ----------------------------------------------------------------------------------
    def _paths(self, shard: int) -> tuple[Path, Path]:
        return self.run.shards / f"shard-{shard:05d}.parquet", self.run.shards / f"shard-{shard:05d}.done"

    def split(self, items: list[SourceItem]) -> list[tuple[int, list[SourceItem]]]:
        return [(s // self.shard_size, items[s:s + self.shard_size]) for s in range(0, len(items), self.shard_size)]

    def is_done(self, shard: int) -> bool:
        data, marker = self._paths(shard)
        if not (data.exists() and marker.exists()):
            return False
        try:
            m = read_json(marker)
        except ProvguardError:
            return False
        return m.get("fingerprint") == self.fingerprint and m.get("sha256") == file_sha256(data)

    def pending(self, items: list[SourceItem]) -> list[tuple[int, list[SourceItem]]]:
        return [(s, chunk) for s, chunk in self.split(items) if not self.is_done(s)]

    def complete(self, shard: int, table: pa.Table, timings: dict[str, float]) -> None:
        """Write shard ``shard`` and then its marker (the marker is the commit point)."""
        self.run.shards.mkdir(parents=True, exist_ok=True)
        data, marker = self._paths(shard)
        write_parquet(table, data)
        write_json(marker, {"rows": table.num_rows, "sha256": file_sha256(data), "fingerprint": self.fingerprint,
                            "timings": timings})

    def timings(self, n_items: int) -> dict[str, float]:
        """Seconds per stage summed over finished shards (a resumed run adds up all its sessions)."""
        total: dict[str, float] = {}
        for s in range((n_items + self.shard_size - 1) // self.shard_size):
            marker = self._paths(s)[1]
            if marker.exists():
                for k, v in read_json(marker).get("timings", {}).items():
                    total[k] = total.get(k, 0.0) + v
        return total

    def iter_tables(self, n_items: int) -> Iterator[pa.Table]:
        for s in range((n_items + self.shard_size - 1) // self.shard_size):
            yield pq.read_table(self._paths(s)[0])

    def gather(self, n_items: int) -> pa.Table:
        """All shards in order; raises if any index is missing or duplicated."""
        table = pa.concat_tables(list(self.iter_tables(n_items)))
        idx = table.column("index").to_pylist()
        if idx != list(range(n_items)):
            raise ProvguardError(f"{self.run.root}: the shards do not cover items 0..{n_items - 1} exactly once")
        return table


def describe(items: list[SourceItem]) -> dict[str, Any]:
    """Counts by media type (for the run card)."""
    out: dict[str, Any] = {}
    for it in items:
        out[it.media_type] = out.get(it.media_type, 0) + 1
    return out
