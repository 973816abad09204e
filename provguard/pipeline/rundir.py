"""The run directory's layout, atomic JSON/text writes, and the lock that stops two runs sharing it.

::

    RUN_DIR/
      config.json        the RunConfig (+ fingerprint); written first, checked on --resume
      plan.parquet       the scanned items (index, key, locator, shard): frozen at the first scan
      shards/            shard-00000.parquet + shard-00000.done (completion marker: rows, sha256, timings)
      manifest.parquet   all shards + decision columns (rewritten by `provguard decide`)
      kept.txt           one key per line
      rejected.jsonl     {"key", "path", "verdict", "reasons", "score"} per rejected item
      errors.jsonl       {"key", "path", "error"} per item that could not be read or decoded
      run.json           the run card
      summary.txt        the human summary
      report.html        `provguard report` output
      quarantine/        move-rejected: the moved files, under their relative paths
      journal.jsonl      move-rejected / restore: one line per step, fsynced before each move
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from provguard.errors import ProvguardError
from provguard.formatting import to_json


class RunDir:
    """Paths inside one run directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.config = self.root / "config.json"
        self.plan = self.root / "plan.parquet"
        self.shards = self.root / "shards"
        self.manifest = self.root / "manifest.parquet"
        self.kept = self.root / "kept.txt"
        self.rejected = self.root / "rejected.jsonl"
        self.errors = self.root / "errors.jsonl"
        self.card = self.root / "run.json"
        self.summary = self.root / "summary.txt"
        self.report = self.root / "report.html"
        self.quarantine = self.root / "quarantine"
        self.journal = self.root / "journal.jsonl"
        self._lock_fh = None

    def exists(self) -> bool:
        return self.config.exists()

    def require(self) -> "RunDir":
        """Raise unless this is a finished run directory (has a manifest)."""
        if not self.manifest.exists():
            raise ProvguardError(f"{self.root} is not a finished provguard run directory (no manifest.parquet); "
                                 "run `provguard filter SOURCE --out RUN_DIR` first")
        return self

    def lock(self) -> None:
        """Take an exclusive lock (released by the OS even after kill -9)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.root / ".lock", "w")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ProvguardError(f"{self.root} is in use by another provguard process") from None


def write_text(path: Path, text: str) -> None:
    """Atomic text write."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    """Atomic JSON write (NaN/inf written as null)."""
    write_text(path, to_json(obj) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProvguardError(f"cannot read {path}: {exc}") from None
