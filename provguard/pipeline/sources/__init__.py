"""Sources: where items come from. :func:`open_source` picks one from a path and an optional format.

========================  ==============================================================
format                    what
========================  ==============================================================
``folder``                a folder tree of images and txt/md/jsonl texts (or one file)
``parquet``               ``*.parquet`` with an image-bytes and/or a text column
``hf``                    a ``datasets`` dataset saved with ``save_to_disk``
``hf-imagefolder`` etc.   a folder loaded with ``load_dataset("imagefolder"|"text"|"json")``
``webdataset``            ``*.tar`` shards
``auto`` (default)        ``hf`` if the folder has ``dataset_info.json``/``dataset_dict.json``,
                          ``parquet``/``webdataset`` for such a file, else ``folder``
========================  ==============================================================
"""
from __future__ import annotations

from pathlib import Path

from provguard.pipeline.sources.base import Source, SourceError
from provguard.pipeline.sources.folder import FolderSource
from provguard.pipeline.sources.hf import BUILDERS, HFSource
from provguard.pipeline.sources.parquet import ParquetSource
from provguard.pipeline.sources.webdataset import WebDatasetSource

FORMATS = ("auto", "folder", "parquet", "hf", *(f"hf-{b}" for b in BUILDERS), "webdataset")


def detect_format(root: str) -> str:
    """The format ``auto`` resolves to for ``root``."""
    p = Path(root)
    if p.is_dir() and ((p / "dataset_info.json").exists() or (p / "dataset_dict.json").exists()
                       or (p / "state.json").exists()):
        return "hf"
    if p.is_file() and p.suffix.lower() == ".parquet":
        return "parquet"
    if p.is_file() and p.suffix.lower() == ".tar":
        return "webdataset"
    return "folder"


def open_source(root: str, fmt: str = "auto", text_field: str = "text", image_field: str | None = None) -> Source:
    """A :class:`Source` for ``root``; raises :class:`SourceError` for a missing path or unknown format."""
    if not Path(root).exists() and not Path(root).is_symlink():
        raise SourceError(f"no such file or folder: {root}")
    fmt = detect_format(root) if fmt == "auto" else fmt
    if fmt == "folder":
        return FolderSource(root, text_field, image_field)
    if fmt == "parquet":
        return ParquetSource(root, text_field, image_field)
    if fmt == "webdataset":
        return WebDatasetSource(root, text_field, image_field)
    if fmt == "hf" or fmt.startswith("hf-"):
        builder = fmt[3:] if fmt.startswith("hf-") else None
        if builder is not None and builder not in BUILDERS:
            raise SourceError(f"unknown dataset builder {builder!r}; choose from {BUILDERS}")
        return HFSource(root, text_field, image_field, builder)
    raise SourceError(f"unknown source format {fmt!r}; choose from {FORMATS}")



def source_from_spec(spec: dict) -> Source:
    """Re-open the source a run's config recorded (:meth:`Source.spec`)."""
    fmt = {"hf": f"hf-{spec['builder']}" if spec.get("builder") else "hf"}.get(spec["kind"], spec["kind"])
    return open_source(spec["root"], fmt, spec.get("text_field", "text"), spec.get("image_field"))


__all__ = ["FORMATS", "Source", "SourceError", "detect_format", "open_source", "source_from_spec"]
