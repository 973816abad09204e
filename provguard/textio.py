"""Read text documents from .txt/.md files (one document each) and .jsonl files (one per line).

It sits below the watermark code, so sources (and their decoding workers) import it without torch.

Every problem becomes a :class:`Document` with ``error`` set (empty file, binary file, invalid UTF-8,
bad JSON, missing or non-string field) so a run over many files never stops on one bad input.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

TEXT_SUFFIXES = frozenset({".txt", ".md", ".jsonl"})


@dataclass
class Document:
    """One text to score. ``line`` is the 1-based line number for jsonl, else None."""

    path: str
    line: int | None = None
    text: str | None = None
    prompt: str | None = None
    error: str | None = None


def decode_text(data: bytes) -> tuple[str | None, str | None]:
    """``(text, error)`` for raw file bytes."""
    if not data.strip():
        return None, "empty file"
    if b"\x00" in data[:8192]:
        return None, "binary file (contains NUL bytes): not a text document"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        return None, f"invalid UTF-8 at byte {exc.start}: re-encode the file as UTF-8"


def _jsonl_documents(name: str, text: str, text_field: str, prompt_field: str | None) -> Iterator[Document]:
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield Document(name, number, error=f"invalid JSON: {exc.msg}")
            continue
        if not isinstance(record, dict) or text_field not in record:
            yield Document(name, number, error=f"no field {text_field!r} in this record (set --text-field)")
            continue
        value = record[text_field]
        if not isinstance(value, str):
            yield Document(name, number, error=f"field {text_field!r} is {type(value).__name__}, not text")
            continue
        prompt = record.get(prompt_field) if prompt_field else None
        yield Document(name, number, text=value, prompt=prompt if isinstance(prompt, str) else None)


def read_documents(path: Path, name: str | None = None, text_field: str = "text",
                   prompt_field: str | None = None) -> Iterator[Document]:
    """Documents in ``path`` (reported as ``name``): one for .txt/.md/other, one per line for .jsonl."""
    name = name or str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        yield Document(name, error=f"cannot read file: {exc.strerror or exc}")
        return
    text, error = decode_text(data)
    if error:
        yield Document(name, error=error)
    elif path.suffix.lower() == ".jsonl":
        yield from _jsonl_documents(name, text, text_field, prompt_field)
    else:
        yield Document(name, text=text)
