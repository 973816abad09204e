"""The :class:`Source` interface shared by every kind of input."""
from __future__ import annotations

import abc
from typing import Any, Sequence

from provguard.errors import BadArgument
from provguard.pipeline.items import Payload, SourceItem


class SourceError(BadArgument):
    """The source as a whole cannot be read (does not exist, unknown format, missing column): the
    source argument (parameter ``source``) is the thing to change."""

    def __init__(self, message: str, parameter: str | None = "source"):
        super().__init__(message, parameter)


class Source(abc.ABC):
    """Enumerates items in a stable order (:meth:`scan`) and loads batches of them (:meth:`load`).

    ``file_backed`` sources hold one file per item, so actions (copy-kept, move-rejected) can act on
    them; container sources (Parquet, datasets, tars) only get manifests and lists.
    """

    kind: str = "?"
    file_backed: bool = False

    def __init__(self, root: str, text_field: str = "text", image_field: str | None = None):
        self.root, self.text_field, self.image_field = str(root), text_field, image_field

    def spec(self) -> dict[str, Any]:
        """What identifies this source in a run's configuration."""
        return {"kind": self.kind, "root": self.root, "text_field": self.text_field, "image_field": self.image_field}

    @abc.abstractmethod
    def scan(self) -> list[SourceItem]:
        """Every item, indexed 0..n-1 in a stable order; unusable entries carry ``error``."""

    @abc.abstractmethod
    def load(self, items: Sequence[SourceItem]) -> list[Payload]:
        """Payloads for ``items`` (same order); a bad item gives a payload with ``error``, never raises."""
