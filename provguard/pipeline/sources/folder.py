"""A folder tree of images (jpg, png, webp, gif, bmp, tiff) and texts (txt, md, jsonl).

The walk never follows symlinked folders (no loops) and turns every odd entry that *looks* like an
item — a folder named ``x.png``, a dangling symlink, a symlink loop — into an error row rather than
skipping it silently. Non-UTF-8 file names are kept exactly (``path_raw``) and shown with
backslash escapes in keys.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Sequence

from provguard.imaging.io import IMAGE_SUFFIXES
from provguard.pipeline.items import IMAGE, TEXT, Payload, SourceItem, text_payload
from provguard.pipeline.sources.base import Source, SourceError
from provguard.textio import TEXT_SUFFIXES, read_documents


def display(name: str) -> str:
    """A valid-UTF-8 rendering of an OS path string (undecodable bytes as ``\\xNN``)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def media_of(name: str) -> str | None:
    """``"image"``/``"text"`` by file suffix, or None for anything else."""
    suffix = os.path.splitext(name)[1].lower()
    return IMAGE if suffix in IMAGE_SUFFIXES else TEXT if suffix in TEXT_SUFFIXES else None


def _stat_error(path: str) -> str | None:
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop: the link points back at itself"
        if exc.errno == errno.ENOENT:
            return f"dangling symlink (target {display(os.readlink(path))} does not exist)"
        return f"cannot stat: {exc.strerror}"
    return None


class FolderSource(Source):
    """Files under ``root`` (or ``root`` itself if it is a file)."""

    kind, file_backed = "folder", True

    def _entries(self) -> list[tuple[str, str, str | None, str | None]]:
        """``(relative name, full path, media, error)`` for every candidate entry, sorted by name."""
        root = self.root
        if os.path.isfile(root):
            return [(os.path.basename(root), root, media_of(root), None)]
        out, stack = [], [""]
        while stack:
            rel_dir = stack.pop()
            try:
                entries = list(os.scandir(os.path.join(root, rel_dir)))
            except OSError as exc:
                out.append((rel_dir or ".", os.path.join(root, rel_dir), None, f"cannot list folder: {exc.strerror}"))
                continue
            for entry in entries:
                rel = os.path.join(rel_dir, entry.name) if rel_dir else entry.name
                media = media_of(entry.name)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(rel)
                    if media:
                        out.append((rel, entry.path, media, "a folder, not a file (its contents are scanned too)"))
                elif entry.is_symlink() and (err := _stat_error(entry.path)):
                    if media:
                        out.append((rel, entry.path, media, err))
                elif entry.is_symlink() and os.path.isdir(entry.path):
                    if media:
                        out.append((rel, entry.path, media, "a symlinked folder (not followed)"))
                elif media:
                    out.append((rel, entry.path, media, None))
        return sorted(out, key=lambda e: os.fsencode(e[0]))

    def scan(self) -> list[SourceItem]:
        if not os.path.exists(self.root) and not os.path.islink(self.root):
            raise SourceError(f"no such file or folder: {self.root}")
        items: list[SourceItem] = []
        for rel, path, media, error in self._entries():
            size = -1
            if error is None:
                try:
                    size = os.stat(path).st_size
                except OSError as exc:
                    error = f"cannot stat: {exc.strerror}"
            if media == TEXT and error is None and rel.lower().endswith(".jsonl"):
                for doc in read_documents(Path(path), display(rel), self.text_field):
                    key = display(rel) if doc.line is None else f"{display(rel)}#line={doc.line}"
                    items.append(SourceItem(len(items), key, TEXT, {"rel": display(rel), "line": doc.line},
                                            size, os.fsencode(path), doc.error))
                continue
            items.append(SourceItem(len(items), display(rel), media, {"rel": display(rel)}, size,
                                    os.fsencode(path), error))
        return items

    def load(self, items: Sequence[SourceItem]) -> list[Payload]:
        out, jsonl_cache = [], {}
        for it in items:
            path = os.fsdecode(it.path_raw)
            if it.error:
                out.append(Payload(it, error=it.error))
            elif it.media_type == IMAGE:
                try:
                    out.append(Payload(it, data=Path(path).read_bytes()))
                except OSError as exc:
                    out.append(Payload(it, error=f"cannot read file: {exc.strerror or exc}"))
            elif it.locator.get("line") is not None:
                if path not in jsonl_cache:
                    jsonl_cache[path] = {d.line: d for d in read_documents(Path(path), it.key, self.text_field)}
                doc = jsonl_cache[path].get(it.locator["line"])
                out.append(text_payload(it, doc.text if doc else None,
                                        doc.error if doc else "the line is gone: the file changed since the scan"))
            else:
                doc = next(read_documents(Path(path), it.key))
                out.append(text_payload(it, doc.text, doc.error))
        return out
