"""Hugging Face ``datasets``: a dataset saved with ``save_to_disk``, or an ``imagefolder`` / ``text`` /
``json`` folder loaded with :func:`datasets.load_dataset` — always offline (``HF_DATASETS_OFFLINE``).

Images are read undecoded (``Image(decode=False)``), so the pipeline sees the original file bytes
(metadata and watermarks intact); texts come from ``text_field``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from provguard.pipeline.items import IMAGE, TEXT, Payload, SourceItem, text_payload
from provguard.pipeline.sources.base import Source, SourceError
from provguard.pipeline.sources.parquet import image_bytes

BUILDERS = ("imagefolder", "text", "json")


def load_hf(root: str, builder: str | None):
    """The dataset at ``root`` (a ``DatasetDict`` is flattened to its splits in sorted order)."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import datasets

    if not Path(root).exists():
        raise SourceError(f"no such file or folder: {root}")
    try:
        ds = datasets.load_from_disk(root) if builder is None else datasets.load_dataset(builder, data_dir=root)
    except Exception as exc:
        raise SourceError(f"{root}: cannot load as a Hugging Face dataset ({exc})") from None
    if isinstance(ds, datasets.DatasetDict):
        return {name: ds[name] for name in sorted(ds)}
    return {"": ds}


class HFSource(Source):
    """Rows of a Hugging Face dataset; ``builder`` is None for ``save_to_disk`` folders."""

    kind = "hf"

    def __init__(self, root: str, text_field: str = "text", image_field: str | None = None, builder: str | None = None):
        super().__init__(root, text_field, image_field)
        self.builder = builder
        self._splits = None

    def spec(self):
        return {**super().spec(), "builder": self.builder}

    def splits(self):
        if self._splits is None:
            import datasets

            self._splits = {}
            for name, ds in load_hf(self.root, self.builder).items():
                for col, feat in ds.features.items():
                    if isinstance(feat, datasets.Image):
                        ds = ds.cast_column(col, datasets.Image(decode=False))
                self._splits[name] = ds
        return self._splits

    def _columns(self, ds) -> tuple[str | None, str | None]:
        import datasets

        images = [c for c, f in ds.features.items() if isinstance(f, datasets.Image)]
        image = self.image_field if self.image_field in ds.features else (images[0] if images else None)
        text = self.text_field if self.text_field in ds.features else None
        return image, text

    def scan(self) -> list[SourceItem]:
        items: list[SourceItem] = []
        for split, ds in self.splits().items():
            image, text = self._columns(ds)
            if not image and not text:
                raise SourceError(f"{self.root}: no image column and no text column {self.text_field!r} "
                                  f"(columns: {list(ds.features)}); set {{text_field}} or {{image_field}}")
            prefix = f"{split}/" if split else ""
            for row in range(len(ds)):
                for media, col in ((IMAGE, image), (TEXT, text)):
                    if col:
                        suffix = f"&{media}" if image and text else ""
                        items.append(SourceItem(len(items), f"{prefix}row={row}{suffix}", media,
                                                {"split": split, "row": row, "column": col}))
        return items

    def load(self, items: Sequence[SourceItem]) -> list[Payload]:
        by_split: dict[str, list[int]] = {}
        for it in items:
            by_split.setdefault(it.locator["split"], []).append(it.locator["row"])
        rows = {}
        for split, idx in by_split.items():
            sel = self.splits()[split].select(sorted(set(idx))).to_dict()
            for j, r in enumerate(sorted(set(idx))):
                rows[(split, r)] = {c: v[j] for c, v in sel.items()}
        out = []
        for it in items:
            value = rows[(it.locator["split"], it.locator["row"])][it.locator["column"]]
            if it.media_type == IMAGE:
                data = image_bytes(value)
                if data is None and isinstance(value, dict) and value.get("path"):
                    try:
                        data = Path(value["path"]).read_bytes()
                    except OSError as exc:
                        out.append(Payload(it, error=f"cannot read {value['path']}: {exc.strerror}"))
                        continue
                out.append(Payload(it, data=data) if data else Payload(it, error="the image cell is empty"))
            else:
                out.append(text_payload(it, value if isinstance(value, str) else None,
                                        None if isinstance(value, str) else f"the text cell is {type(value).__name__}, not text"))
        return out
