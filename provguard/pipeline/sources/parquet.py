"""Parquet files (one file or a folder of ``*.parquet``) with an image-bytes column and/or a text column.

The image column may be ``binary`` or a struct with a ``bytes`` field (the layout Hugging Face
``datasets`` writes for its ``Image`` feature). A file that cannot be opened becomes one error row;
a row whose bytes are not an image becomes an error row when it is decoded.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from provguard.pipeline.items import IMAGE, TEXT, UNKNOWN, Payload, SourceItem, text_payload
from provguard.pipeline.sources.base import Source, SourceError


def image_bytes(value) -> bytes | None:
    """Bytes from a binary cell or an ``{"bytes": ..., "path": ...}`` struct cell."""
    if isinstance(value, dict):
        value = value.get("bytes")
    return bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else None


def pick_columns(names: list[str], types: dict[str, str], text_field: str, image_field: str | None) -> tuple[str | None, str | None]:
    """``(image column, text column)``: the named ones, else the first binary/struct-with-bytes column."""
    image = image_field if image_field in names else None
    if image is None and image_field is None:
        image = next((n for n in names if types[n] in ("binary", "large_binary") or "bytes:" in types[n]), None)
    text = text_field if text_field in names else None
    return image, text


class ParquetSource(Source):
    """Rows of Parquet files; each row is one image item, one text item, or both (two items)."""

    kind = "parquet"

    def _files(self) -> list[Path]:
        root = Path(self.root)
        if root.is_file():
            return [root]
        if root.is_dir():
            return sorted(root.rglob("*.parquet"))
        raise SourceError(f"no such file or folder: {self.root}")

    def scan(self) -> list[SourceItem]:
        import pyarrow.parquet as pq

        items: list[SourceItem] = []
        found_column = False
        for f in self._files():
            rel = str(f.relative_to(self.root)) if f != Path(self.root) else f.name
            try:
                pf = pq.ParquetFile(f)
                schema = pf.schema_arrow
                image, text = pick_columns(schema.names, {n: str(schema.field(n).type) for n in schema.names},
                                           self.text_field, self.image_field)
                rows = pf.metadata.num_rows
            except Exception as exc:  # pyarrow raises several types for a corrupt file
                items.append(SourceItem(len(items), rel, UNKNOWN, {"file": str(f)}, os.path.getsize(f), None,
                                        f"cannot read Parquet file: {exc}"))
                continue
            found_column |= bool(image or text)
            for row in range(rows):
                for media, col in ((IMAGE, image), (TEXT, text)):
                    if col:
                        items.append(SourceItem(len(items), f"{rel}#row={row}" + ("" if not (image and text) else f"&{media}"),
                                                media, {"file": str(f), "row": row, "column": col}))
        if items and not found_column:
            raise SourceError(f"{self.root}: no image column (binary) and no text column {self.text_field!r}; "
                              "set {text_field} or {image_field}")
        return items

    def load(self, items: Sequence[SourceItem]) -> list[Payload]:
        import pyarrow.parquet as pq

        tables: dict[tuple[str, str], list] = {}
        out = []
        for it in items:
            if it.error:
                out.append(Payload(it, error=it.error))
                continue
            key = (it.locator["file"], it.locator["column"])
            try:
                if key not in tables:
                    tables[key] = pq.read_table(key[0], columns=[key[1]]).column(0).to_pylist()
                value = tables[key][it.locator["row"]]
            except Exception as exc:
                out.append(Payload(it, error=f"cannot read row: {exc}"))
                continue
            if it.media_type == IMAGE:
                data = image_bytes(value)
                out.append(Payload(it, data=data) if data else Payload(it, error="the image cell is empty or not bytes"))
            else:
                out.append(text_payload(it, value if isinstance(value, str) else None,
                                        None if isinstance(value, str) else f"the text cell is {type(value).__name__}, not text"))
        return out
