"""Text output shared by the core and the command line: strict JSON and plain text tables.

Lives below :mod:`provguard.pipeline`, :mod:`provguard.sim` and :mod:`provguard.cli` so that the core
never imports the command line (the CLI re-exports these names from :mod:`provguard.cli.common`).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence


def _json_default(obj):
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _finite(obj):
    """Replace non-finite floats (not valid JSON) with None, recursively."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def to_json(payload, indent: int | None = 2) -> str:
    """Strict JSON text: NaN/inf become null; numpy/torch scalars and paths are converted."""
    return json.dumps(_finite(payload), default=_json_default, indent=indent)


def format_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """A plain left-aligned text table."""
    cells = [[str(c) for c in header]] + [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
