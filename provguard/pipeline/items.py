"""One addressable item of a source, and what loading it gives back.

A :class:`SourceItem` is small and picklable (it travels to worker processes and Ray actors): it says
*where* the item is (``locator``), never holds its bytes. :meth:`Source.load <provguard.pipeline.sources.Source.load>`
turns a batch of them into :class:`Payload`\\ s.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

IMAGE, TEXT, UNKNOWN = "image", "text", "unknown"
MEDIA_TYPES = (IMAGE, TEXT, UNKNOWN)
MAX_TEXT_BYTES = 8 << 20   # a text chunk larger than this is refused with an error row (8 MiB)


@dataclass(frozen=True)
class SourceItem:
    """Where one item lives.

    Attributes:
        index: position in the source's stable order (the manifest is sorted by it).
        key: unique, human-readable name (relative path, ``file.parquet#row=12``, ``shard.tar#member``).
        media_type: ``"image"``, ``"text"`` or ``"unknown"`` (an entry that cannot be an item: a folder
            named ``x.png``, a dangling symlink; it becomes an error row).
        locator: source-specific address (JSON-serialisable).
        size: bytes on disk where known, else -1.
        path_raw: the file's path as OS bytes for file-backed items (actions move these), else None.
        error: set when the scan already knows the item is unusable.
    """

    index: int
    key: str
    media_type: str
    locator: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    size: int = -1
    path_raw: bytes | None = None
    error: str | None = None


@dataclass
class Payload:
    """A loaded item: ``data`` (image bytes) or ``text``, its SHA-256, or an ``error``."""

    item: SourceItem
    data: bytes | None = None
    text: str | None = None
    error: str | None = None
    sha256: str | None = None

    def __post_init__(self):
        if self.sha256 is None:
            if self.data is not None:
                self.sha256 = hashlib.sha256(self.data).hexdigest()
            elif self.text is not None:
                self.sha256 = hashlib.sha256(self.text.encode("utf-8", "surrogatepass")).hexdigest()


def text_payload(item: SourceItem, text: str | None, error: str | None = None) -> Payload:
    """A text payload, refusing chunks over :data:`MAX_TEXT_BYTES` with an error (the run goes on)."""
    if text is not None and len(text) > MAX_TEXT_BYTES:
        return Payload(item, error=f"text of {len(text)} characters is over the {MAX_TEXT_BYTES >> 20} MiB "
                                   "limit for one item; split it into documents")
    return Payload(item, text=text, error=error)
