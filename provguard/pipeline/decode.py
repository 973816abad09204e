"""Pixel decoding off the main process, a few batches ahead of the detectors.

:class:`Decoder` keeps ``depth`` batches in flight in a process pool: while the cascade (the model)
scores batch *i*, workers decode batches *i+1..i+depth*. With ``workers=0`` everything is decoded in
the calling process (no pool; used by tests and tiny runs). A file that cannot be decoded gives its
error message, which becomes the row's ``error``.
"""
from __future__ import annotations

import collections
import io
import multiprocessing
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Iterable, Iterator

import numpy as np

from provguard.detectors.evidence import Item
from provguard.errors import InputError
from provguard.pipeline.items import IMAGE, Payload


def decode_one(data: bytes, name: str) -> tuple[np.ndarray | None, str | None, float]:
    """``(rgb uint8 (H, W, 3) or None, error or None, seconds)`` for one image's bytes."""
    from provguard.imaging.io import decode_image

    start = time.perf_counter()
    try:
        return decode_image(data, name=name), None, time.perf_counter() - start
    except InputError as exc:
        return None, str(exc), time.perf_counter() - start


def header_error(data: bytes, name: str) -> str | None:
    """A cheap check without decoding pixels (metadata-only runs): can Pillow identify the file?"""
    from PIL import Image, UnidentifiedImageError

    if not data:
        return f"{name}: the file is empty (0 bytes); re-download or re-export it"
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
    except UnidentifiedImageError:
        return f"{name}: not an image Pillow can read (wrong extension, or not an image file)"
    except Exception as exc:  # Pillow raises many types for corrupt headers
        return f"{name}: corrupt image header ({exc})"
    return None


class DecodedItem(Item):
    """An :class:`Item` whose pixels were decoded elsewhere (or whose decoding failed)."""

    def __init__(self, payload: Payload, rgb: np.ndarray | None, error: str | None):
        super().__init__(path=None, data=payload.data, rgb=rgb, name=payload.item.key)
        self._error = error

    def rgb(self) -> np.ndarray:
        if self._error is not None:
            raise InputError(self._error)
        return super().rgb()


class Decoder:
    """Turns batches of payloads into batches of ``(payload, item, decode error)`` with prefetch.

    Args:
        workers: decoding processes (0: decode inline).
        pixels: whether any detector needs pixels; if not, only :func:`header_error` runs.
        depth: batches decoded ahead of the consumer.
    """

    def __init__(self, workers: int = 2, pixels: bool = True, depth: int = 2):
        self.workers, self.pixels, self.depth = workers, pixels, depth
        self.seconds = 0.0  # decode time summed over workers
        self._pool = None

    def __enter__(self) -> "Decoder":
        if self.workers > 0 and self.pixels:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def _submit(self, payloads: list[Payload]) -> list:
        jobs = []
        for p in payloads:
            if p.error is not None or p.item.media_type != IMAGE or p.data is None:
                jobs.append(None)
            elif not self.pixels:
                jobs.append((None, header_error(p.data, p.item.key), 0.0))
            elif self._pool is not None:
                jobs.append(self._pool.submit(decode_one, p.data, p.item.key))
            else:
                jobs.append(decode_one(p.data, p.item.key))
        return jobs

    def _collect(self, payloads: list[Payload], jobs: list) -> list[tuple[Payload, Item | None, str | None]]:
        out = []
        for p, job in zip(payloads, jobs):
            if job is None:
                item = Item(text=p.text, name=p.item.key) if p.text is not None else None
                out.append((p, item, None))
                continue
            rgb, error, seconds = job.result() if isinstance(job, Future) else job
            self.seconds += seconds
            out.append((p, DecodedItem(p, rgb, error), error))
        return out

    def pipeline(self, batches: Iterable[tuple[Any, list[Payload]]]) -> Iterator[tuple[Any, list]]:
        """``(tag, payloads)`` in -> ``(tag, [(payload, item, decode error), ...])`` out, in order,
        keeping up to ``depth`` batches in flight (tags let a caller mark shard boundaries)."""
        queue: collections.deque = collections.deque()
        for tag, payloads in batches:
            queue.append((tag, payloads, self._submit(payloads)))
            if len(queue) > self.depth:
                tag0, p0, j0 = queue.popleft()
                yield tag0, self._collect(p0, j0)
        while queue:
            tag0, p0, j0 = queue.popleft()
            yield tag0, self._collect(p0, j0)
