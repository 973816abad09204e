"""Library hooks for people who filter inside their data-loading code, and for producers who mark.

- :class:`ProvenanceFilter` — call it on a batch (images as arrays / PIL images / bytes / paths, or
  texts), get a keep-mask and the evidence. Same detectors, cascade and decision rules as
  ``provguard filter``.
- Hugging Face ``datasets``: :func:`score_dataset` adds ``provguard_*`` columns with a batched ``map``;
  :func:`filter_dataset` keeps the rows not judged synthetic. Both work on ``Dataset`` and
  ``IterableDataset`` (lazy).
- PyTorch: :class:`ManifestDataset` keeps the items a run's manifest kept (no model in
  ``__getitem__``); :class:`FilteredIterableDataset` filters a stream in batches;
  :func:`filtering_collate` drops rejected items from a batch.
- Generation side: :class:`WatermarkingPublisher` watermarks a model's images and texts before they
  are published; :meth:`WatermarkingPublisher.wrap` decorates any function returning images.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from provguard.detectors.evidence import Item

PREFIX = "provguard_"


def to_item(value: Any, name: str = "<memory>") -> Item:
    """An :class:`Item` from an RGB array, a PIL image, bytes, a path, or a datasets image cell."""
    if isinstance(value, Item):
        return value
    if isinstance(value, dict) and ("bytes" in value or "path" in value):
        return Item(data=value["bytes"], name=name) if value.get("bytes") else Item(path=value["path"], name=name)
    if isinstance(value, (bytes, bytearray)):
        return Item(data=bytes(value), name=name)
    if isinstance(value, (str, Path)):
        return Item(path=value, name=name)
    if isinstance(value, np.ndarray):
        return Item(rgb=np.ascontiguousarray(value, dtype=np.uint8), name=name)
    if hasattr(value, "convert"):  # PIL image
        return Item(rgb=np.asarray(value.convert("RGB"), dtype=np.uint8), name=name)
    raise TypeError(f"cannot judge a {type(value).__name__}: pass an array, a PIL image, bytes or a path")


@dataclass
class BatchResult:
    """``keep`` (bool mask), and per item ``verdicts``, ``scores``, ``reasons``, ``evidence`` (dicts)."""

    keep: np.ndarray
    verdicts: list[str]
    scores: list[float | None]
    reasons: list[list[str]]
    evidence: list[list[dict]]


class ProvenanceFilter:
    """Judge batches with provguard's detectors; see the module docstring.

    Args:
        watermarks: image watermarks to check (``"sd"``, ``"provguard"``; the latter needs ``key``).
        key: secret for keyed image/text watermarks (bytes, str or :class:`~provguard.keys.SecretKey`).
        probe: path of a calibrated probe (the CLIP classifier joins the cascade), ``"default"`` for the
            probe shipped with provguard, or None (classifier off: loaders stay fast).
        text_scheme / tokenizer: text watermark scheme and tokenizer (needs ``key``), or None.
        target_fpr: false-positive rate for watermark p-values.
        reject_uncertain: drop items the evidence leaves uncertain.
    """

    def __init__(self, watermarks: Sequence[str] = ("sd",), key=None, probe: str | None = None,
                 text_scheme: str | None = None, tokenizer: str = "smollm2-135m-instruct", target_fpr: float = 1e-3,
                 reject_uncertain: bool = False, device: str | None = None, cascade: bool = True):
        from provguard.keys import as_key
        from provguard.pipeline.config import RunConfig
        from provguard.pipeline.decide import DecisionPolicy
        from provguard.pipeline.detector_set import build_detectors

        self.key = as_key(key) if key is not None else None
        config, self.notes = RunConfig.create(None, watermarks=watermarks, key=self.key,
                                              probe="none" if probe is None else probe, text_watermark=text_scheme,
                                              tokenizer=tokenizer, target_fpr=target_fpr, cascade=cascade)
        self.config, self.detectors = config, build_detectors(config, self.key, device)
        self.policy = DecisionPolicy(config.policy, reject_uncertain, fdr=None)  # batches stream: the per-item rule
        self.configured = {d.name: d.tier for d in self.detectors.image + self.detectors.text}

    def __call__(self, batch: Sequence[Any], kind: str = "image") -> BatchResult:
        """Judge ``batch`` (``kind="image"`` or ``"text"``: a list of strings)."""
        from provguard.pipeline.decide import decide_one
        from provguard.pipeline.scoring import run_detectors

        items = [Item(text=t, name=f"text[{i}]") for i, t in enumerate(batch)] if kind == "text" else \
            [to_item(v, f"image[{i}]") for i, v in enumerate(batch)]
        dets = self.detectors.text if kind == "text" else self.detectors.image
        out = BatchResult(np.zeros(len(items), bool), [], [], [], [])
        for i, (evs, ran) in enumerate(run_detectors(items, dets, self.policy.fusion, self.config.cascade)):
            d = decide_one(evs, None, ran, self.configured, self.policy)
            out.keep[i] = d["decision"] == "keep"
            out.verdicts.append(d["verdict"])
            out.scores.append(d["score"])
            out.reasons.append(d["reasons"])
            out.evidence.append([e.to_dict() for e in evs])
        return out


# -- Hugging Face datasets ---------------------------------------------------------------------
def _map_fn(pfilter: ProvenanceFilter, image_column: str | None, text_column: str | None):
    if (image_column is None) == (text_column is None):
        raise ValueError("pass exactly one of image_column= or text_column=")

    def fn(batch: dict) -> dict:
        column, kind = (image_column, "image") if image_column else (text_column, "text")
        r = pfilter(batch[column], kind=kind)
        return {f"{PREFIX}keep": r.keep.tolist(), f"{PREFIX}verdict": r.verdicts,
                f"{PREFIX}score": [float("nan") if s is None else s for s in r.scores],
                f"{PREFIX}reasons": r.reasons}
    return fn


def score_dataset(ds, image_column: str | None = None, text_column: str | None = None,
                  pfilter: ProvenanceFilter | None = None, batch_size: int = 32, **filter_kwargs):
    """``ds`` with ``provguard_keep``, ``provguard_verdict``, ``provguard_score``, ``provguard_reasons``
    columns, computed with a batched ``map`` (lazy for an ``IterableDataset``).

    Image columns are read undecoded where possible (``Image(decode=False)``) so metadata and the
    original bytes reach the detectors.
    """
    import datasets

    pfilter = pfilter or ProvenanceFilter(**filter_kwargs)
    if image_column and isinstance(getattr(ds, "features", None) or {}, dict) and ds.features \
            and isinstance(ds.features.get(image_column), datasets.Image):
        ds = ds.cast_column(image_column, datasets.Image(decode=False))
    return ds.map(_map_fn(pfilter, image_column, text_column), batched=True, batch_size=batch_size)


def filter_dataset(ds, image_column: str | None = None, text_column: str | None = None,
                   pfilter: ProvenanceFilter | None = None, batch_size: int = 32, **filter_kwargs):
    """Only the rows kept by the filter (with the ``provguard_*`` columns, so drops stay auditable upstream)."""
    scored = score_dataset(ds, image_column, text_column, pfilter, batch_size, **filter_kwargs)
    return scored.filter(lambda keep: keep, input_columns=f"{PREFIX}keep")


# -- PyTorch -----------------------------------------------------------------------------------
def _torch_dataset_bases():
    import torch.utils.data as tud

    return tud.Dataset, tud.IterableDataset


class ManifestDataset(_torch_dataset_bases()[0]):
    """A ``torch.utils.data.Dataset`` of the items of ``dataset`` that a run's manifest kept.

    ``keys[i]`` is the manifest key of ``dataset[i]`` (e.g. its path relative to the filtered folder).
    Items absent from the manifest are dropped too (never judged is not kept). No model runs here.
    """

    def __init__(self, dataset, manifest: str | Path, keys: Sequence[str]):
        import pyarrow.parquet as pq

        path = Path(manifest)
        path = path / "manifest.parquet" if path.is_dir() else path
        t = pq.read_table(path, columns=["key", "decision"]).to_pydict()
        kept = {k for k, d in zip(t["key"], t["decision"]) if d == "keep"}
        if len(keys) != len(dataset):
            raise ValueError(f"keys has {len(keys)} entries for a dataset of {len(dataset)} items")
        self.dataset, self.indices = dataset, [i for i, k in enumerate(keys) if k in kept]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.dataset[self.indices[i]]


class FilteredIterableDataset(_torch_dataset_bases()[1]):
    """Wraps an iterable of samples; judges them in batches of ``batch_size`` and yields the kept ones.

    ``get`` extracts what to judge from a sample (default: the sample itself, or ``sample[0]`` for tuples).
    """

    def __init__(self, source: Iterable, pfilter: ProvenanceFilter, get: Callable | None = None,
                 batch_size: int = 32, kind: str = "image"):
        self.source, self.pfilter, self.batch_size, self.kind = source, pfilter, batch_size, kind
        self.get = get or (lambda s: s[0] if isinstance(s, tuple) else s)

    def __iter__(self) -> Iterator:
        buf: list = []
        for sample in self.source:
            buf.append(sample)
            if len(buf) == self.batch_size:
                yield from self._flush(buf)
                buf = []
        if buf:
            yield from self._flush(buf)

    def _flush(self, buf: list) -> Iterator:
        keep = self.pfilter([self.get(s) for s in buf], kind=self.kind).keep
        return (s for s, k in zip(buf, keep) if k)


def filtering_collate(pfilter: ProvenanceFilter, collate_fn: Callable | None = None, get: Callable | None = None,
                      kind: str = "image") -> Callable:
    """A ``collate_fn`` that drops rejected samples from each batch, then calls ``collate_fn``."""
    from torch.utils.data import default_collate

    inner = collate_fn or default_collate
    get = get or (lambda s: s[0] if isinstance(s, tuple) else s)

    def collate(samples: list):
        keep = pfilter([get(s) for s in samples], kind=kind).keep
        return inner([s for s, k in zip(samples, keep) if k])
    return collate


# -- generation side ---------------------------------------------------------------------------
class WatermarkingPublisher:
    """Marks what a model produces before it is published.

    ``images(list)`` embeds the image watermark (``"provguard"`` keyed, or ``"sd"``) and returns
    uint8 arrays; ``generate_text(model, tokenizer, prompts)`` generates with the KGW text watermark;
    ``wrap(fn)`` decorates a function that returns an image or a list of images (arrays or PIL).
    """

    def __init__(self, key=None, image_method: str = "provguard", text_scheme: str = "provguard-lefthash",
                 payload: int | None = None, delta: float = 2.0):
        from provguard.keys import as_key

        self.key = as_key(key) if key is not None else None
        self.image_method, self.text_scheme, self.payload, self.delta = image_method, text_scheme, payload, delta
        self._wm = None

    def _image_watermark(self):
        if self._wm is None:
            from provguard.watermark.image import create_image_watermark

            self._wm = create_image_watermark(self.image_method, key=self.key)
        return self._wm

    def images(self, images: Sequence[Any]) -> list[np.ndarray]:
        arrays = [to_item(im).rgb() for im in images]
        return self._image_watermark().embed(arrays, payload=self.payload)

    def generate_text(self, model, tokenizer, prompts: Sequence[str], **generate_kwargs) -> list[str]:
        from provguard.watermark.text import create_scheme, generate

        scheme = create_scheme(self.text_scheme, key=self.key)
        return [g.text for g in generate(model, tokenizer, prompts, scheme, delta=self.delta, **generate_kwargs)]

    def wrap(self, fn: Callable) -> Callable:
        """``fn`` returning an image or a list of images -> the same, watermarked (as uint8 arrays)."""
        def wrapped(*args, **kwargs):
            out = fn(*args, **kwargs)
            single = not isinstance(out, (list, tuple))
            marked = self.images([out] if single else list(out))
            return marked[0] if single else marked
        wrapped.__wrapped__ = fn
        return wrapped
