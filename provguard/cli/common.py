"""Shared command-line plumbing: input discovery, JSON/table output, exit codes, progress bars."""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Iterable, Sequence

import click

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_FATAL = 3

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})


def discover_files(inputs: Sequence[str], suffixes: frozenset[str]) -> list[tuple[Path, Path]]:
    """Expand files and folders into ``(path, relative_name)`` pairs, sorted, without duplicates.

    Files named explicitly are kept whatever their suffix (so a mislabelled file gets a per-file error
    rather than being skipped silently); folders are walked recursively for ``suffixes``.
    Raises :class:`click.UsageError` for a path that does not exist.
    """
    found: dict[Path, Path] = {}
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            for root, _dirs, files in os.walk(path):
                for name in files:
                    child = Path(root) / name
                    if child.suffix.lower() in suffixes:
                        found.setdefault(child.resolve(), child.relative_to(path))
        elif path.exists():
            found.setdefault(path.resolve(), Path(path.name))
        else:
            raise click.UsageError(f"no such file or folder: {raw}")
    return sorted(((p, rel) for p, rel in found.items()), key=lambda pr: str(pr[1]))


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


def emit_json(payload) -> None:
    """Print ``payload`` as JSON on stdout (see :func:`to_json`)."""
    click.echo(to_json(payload))


def format_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """A plain left-aligned text table."""
    cells = [[str(c) for c in header]] + [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def progress(iterable: Iterable, total: int | None, desc: str, enabled: bool):
    """A tqdm progress bar on stderr when ``enabled`` and stderr is a terminal-ish stream."""
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="file", file=sys.stderr, leave=False,
                disable=None if total is None or total > 1 else True)


def fail(message: str, code: int = EXIT_FATAL) -> None:
    """Print ``error: message`` on stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
