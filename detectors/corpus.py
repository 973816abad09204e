"""A labelled training corpus on disk: ``MANIFEST.tsv`` (one row per file) beside ``ai/`` and ``real/``.

The layout is that of the genimage-train corpus (columns ``file``, ``class`` = ``ai`` | ``real``,
``source_repo``, ``generator_family``, ``format``, ``width``, ``height``, ``sha256``, ...). provguard
never copies corpus images; it reads them where they are and records the corpus's hash in what it
ships, so a probe names the exact data it learned from.
"""
from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from provguard.errors import InputError

REQUIRED_COLUMNS = ("file", "class", "source_repo", "generator_family", "sha256")


@dataclass(frozen=True)
class CorpusImage:
    """One manifest row: ``label`` 1 = synthetic (``class`` ai), 0 = real; ``group`` = source repository."""

    path: Path
    label: int
    group: str
    family: str
    format: str
    sha256: str
    short_side: int = 0  # px, from the manifest's width/height (0 when absent)


def read_corpus(folder: str | Path, verify: bool = True) -> list[CorpusImage]:
    """Rows of ``folder/MANIFEST.tsv`` in manifest order; with ``verify``, every file's SHA-256 is checked.

    Raises :class:`InputError` naming the problem (no manifest, missing columns, a missing or changed
    file, an unknown class) instead of training on a corpus that is not the one described.
    """
    folder = Path(folder)
    manifest = folder / "MANIFEST.tsv"
    if not manifest.is_file():
        raise InputError(f"{folder}: no MANIFEST.tsv; pass the corpus folder (e.g. ../shared/data/genimage-train)")
    with open(manifest, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    missing = [c for c in REQUIRED_COLUMNS if rows and c not in rows[0]]
    if not rows or missing:
        raise InputError(f"{manifest}: {'no rows' if not rows else 'missing columns ' + ', '.join(missing)}")
    out = []
    for i, r in enumerate(rows, start=2):
        if r["class"] not in ("ai", "real"):
            raise InputError(f"{manifest}:{i}: class must be 'ai' or 'real', got {r['class']!r}")
        path = folder / r["file"]
        if not path.is_file():
            raise InputError(f"{manifest}:{i}: {path} is missing; restore the corpus before training")
        if verify and hashlib.sha256(path.read_bytes()).hexdigest() != r["sha256"]:
            raise InputError(f"{manifest}:{i}: {path} does not match its SHA-256; the corpus was modified")
        short = min(int(r["width"]), int(r["height"])) if r.get("width", "").isdigit() and r.get("height", "").isdigit() else 0
        out.append(CorpusImage(path, int(r["class"] == "ai"), r["source_repo"], r["generator_family"],
                               r.get("format", ""), r["sha256"], short))
    return out


def corpus_sha256(images: list[CorpusImage]) -> str:
    """SHA-256 over the sorted ``(sha256, label)`` pairs: the identity of a training set."""
    h = hashlib.sha256()
    for sha, label in sorted((im.sha256, im.label) for im in images):
        h.update(f"{sha}:{label}\n".encode())
    return h.hexdigest()
