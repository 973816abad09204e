"""The Parquet manifest: one row per item, scores and evidence plus the current decision.

Columns (all runs):

==================  ============  =======================================================
column              type          meaning
==================  ============  =======================================================
``index``           int64         position in the source's stable order
``key``             string        unique item name (relative path, ``file#row=N``, ``tar#member``)
``path``            string        file path (file-backed sources), else null
``path_raw``        binary        the same path as exact OS bytes (non-UTF-8 names)
``media_type``      string        image / text / unknown
``size``            int64         bytes (-1 unknown)
``sha256``          string        of the item's bytes (text: UTF-8)
``verdict``         string        synthetic / real / uncertain / error
``decision``        string        keep / reject / error
``score``           float64       fused score in [0, 1] (null: nothing scored)
``reasons``         list<string>  reason codes, deciding ones first
``tier``            string        deciding tier (null: none)
``error``           string        why the item could not be read or decoded (null: fine)
``detectors_run``   list<string>  detectors that looked at the item (cascade)
``evidence``        string        JSON list of every :class:`~provguard.detectors.evidence.Evidence`
``<det>.score``     float64       per detector: its statistic
``<det>.p_value``   float64       per detector: exact p-value where known
``<det>.reason``    string        per detector: its reason code
==================  ============  =======================================================
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

SCORE_SCHEMA = pa.schema([
    ("index", pa.int64()), ("key", pa.string()), ("path", pa.string()), ("path_raw", pa.binary()),
    ("media_type", pa.string()), ("size", pa.int64()), ("sha256", pa.string()), ("error", pa.string()),
    ("detectors_run", pa.list_(pa.string())), ("evidence", pa.string()),
])
DECISION_FIELDS = [("verdict", pa.string()), ("decision", pa.string()), ("score", pa.float64()),
                   ("reasons", pa.list_(pa.string())), ("tier", pa.string())]


def score_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Rows from :mod:`~provguard.pipeline.scoring` as a table with :data:`SCORE_SCHEMA`."""
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in SCORE_SCHEMA} for r in rows], schema=SCORE_SCHEMA)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write atomically (temporary name, fsync, rename): a crash never leaves half a file."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def per_detector_columns(evidence_json: Sequence[str], names: Sequence[str]) -> dict[str, list]:
    """``<det>.score``, ``<det>.p_value``, ``<det>.reason`` for each detector name (first piece of its evidence)."""
    cols: dict[str, list] = {f"{n}.{c}": [] for n in names for c in ("score", "p_value", "reason")}
    for blob in evidence_json:
        first: dict[str, dict] = {}
        for e in json.loads(blob or "[]"):
            # metadata evidence is named after its container (c2pa, png-text, xmp, exif, ...)
            first.setdefault(e["detector"] if e["detector"] in names else "metadata", e)
        for n in names:
            e = first.get(n)
            score = None if e is None or e["score"] is None else float(e["score"])
            cols[f"{n}.score"].append(score if score is not None and math.isfinite(score) else None)
            cols[f"{n}.p_value"].append(None if e is None else e["p_value"])
            cols[f"{n}.reason"].append(None if e is None else e["reason"])
    return cols


def build_manifest(scores: pa.Table, decisions: Sequence[dict[str, Any]], detector_names: Sequence[str]) -> pa.Table:
    """The full manifest: score columns + decision columns + per-detector columns."""
    table = scores
    for name, typ in DECISION_FIELDS:
        table = table.append_column(pa.field(name, typ), pa.array([d[name] for d in decisions], type=typ))
    for name, values in per_detector_columns(scores.column("evidence").to_pylist(), detector_names).items():
        typ = pa.string() if name.endswith(".reason") else pa.float64()
        table = table.append_column(pa.field(name, typ), pa.array(values, type=typ))
    return table


def read_manifest(path: str | Path) -> pa.Table:
    """Read a manifest (or shard) file."""
    return pq.read_table(path)
