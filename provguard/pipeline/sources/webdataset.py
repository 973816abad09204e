"""webdataset tar shards: every image or text member of ``*.tar`` files is one item.

Members are keyed ``shard.tar#member/name.jpg``. A truncated tar keeps the members that were
complete and adds one error row for the damaged tail; a member that cannot be read is an error row.
"""
from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import Sequence

from provguard.pipeline.items import IMAGE, UNKNOWN, Payload, SourceItem, text_payload
from provguard.pipeline.sources.base import Source, SourceError
from provguard.pipeline.sources.folder import media_of
from provguard.textio import decode_text as decode_text_bytes


class WebDatasetSource(Source):
    """Members of one tar or of every ``*.tar`` under a folder, in archive order."""

    kind = "webdataset"

    def _tars(self) -> list[Path]:
        root = Path(self.root)
        if root.is_file():
            return [root]
        if root.is_dir():
            return sorted(root.rglob("*.tar"))
        raise SourceError(f"no such file or folder: {self.root}")

    def scan(self) -> list[SourceItem]:
        items: list[SourceItem] = []
        for tar_path in self._tars():
            rel = tar_path.name if tar_path == Path(self.root) else str(tar_path.relative_to(self.root))
            seen = 0
            try:
                with tarfile.open(tar_path, "r:*") as tf:
                    for member in tf:
                        seen += 1
                        media = media_of(member.name)
                        if media and member.isfile():
                            end = member.offset_data + member.size
                            error = None if end <= os.path.getsize(tar_path) else "truncated member (the tar ends inside it)"
                            items.append(SourceItem(len(items), f"{rel}#{member.name}", media,
                                                    {"tar": str(tar_path), "member": member.name,
                                                     "offset": member.offset_data}, member.size, None, error))
            except (tarfile.TarError, OSError, EOFError) as exc:
                items.append(SourceItem(len(items), f"{rel}#<after member {seen}>", UNKNOWN, {"tar": str(tar_path)},
                                        -1, None, f"damaged tar after {seen} members: {exc}"))
        return items

    def load(self, items: Sequence[SourceItem]) -> list[Payload]:
        """Members are read by their recorded data offset, so a damaged tail never hides good members."""
        out, handles = [], {}
        try:
            for it in items:
                if it.error:
                    out.append(Payload(it, error=it.error))
                    continue
                try:
                    fh = handles.get(it.locator["tar"]) or handles.setdefault(it.locator["tar"], open(it.locator["tar"], "rb"))
                    fh.seek(it.locator["offset"])
                    data = fh.read(it.size)
                except OSError as exc:
                    out.append(Payload(it, error=f"cannot read tar member: {exc.strerror or exc}"))
                    continue
                if len(data) != it.size:
                    out.append(Payload(it, error="truncated member (the tar ends inside it)"))
                elif it.media_type == IMAGE:
                    out.append(Payload(it, data=data))
                else:
                    text, error = decode_text_bytes(data)
                    out.append(text_payload(it, text, error))
        finally:
            for fh in handles.values():
                fh.close()
        return out
