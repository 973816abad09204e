"""Items -> feature vectors through a backbone, with an on-disk cache keyed by content hash.

Re-scoring the same file (or the same in-memory pixels) with the same backbone and layer is free:
the vector is read back from a SQLite table (``cache_dir()/embeddings.sqlite``; raw little-endian
float32 blobs, nothing executable). Keys: ``(backbone id, weights sha256, layer, content hash)``.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Sequence

import numpy as np

from provguard.detectors.backbones import ImageTower, cache_dir
from provguard.detectors.evidence import Item
from provguard.detectors.preprocessing import preprocess_batch
from provguard.errors import InputError
from provguard.imaging.io import AnimatedImageError, decode_image


class EmbeddingCache:
    """A persistent map ``content hash -> float32 vector`` per (backbone, weights, layer)."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else cache_dir() / "embeddings.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=30)
        self._db.execute("CREATE TABLE IF NOT EXISTS emb (tower TEXT, key TEXT, dim INTEGER, vec BLOB, "
                         "PRIMARY KEY (tower, key))")

    @staticmethod
    def tower_key(tower: ImageTower) -> str:
        return f"{tower.id}|{tower.weights_hash}|{tower.layer}"

    def get(self, tower: ImageTower, keys: Sequence[str]) -> dict[str, np.ndarray]:
        tk, found = self.tower_key(tower), {}
        for i in range(0, len(keys), 500):
            chunk = list(keys[i:i + 500])
            q = f"SELECT key, dim, vec FROM emb WHERE tower=? AND key IN ({','.join('?' * len(chunk))})"
            for key, dim, blob in self._db.execute(q, [tk, *chunk]):
                vec = np.frombuffer(blob, dtype="<f4")
                if vec.shape[0] == dim:
                    found[key] = vec.astype(np.float32)
        return found

    def put(self, tower: ImageTower, vectors: dict[str, np.ndarray]) -> None:
        tk = self.tower_key(tower)
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?, ?)",
                                 [(tk, k, int(v.shape[0]), np.asarray(v, "<f4").tobytes()) for k, v in vectors.items()])

    def close(self) -> None:
        self._db.close()


def _pixels(item: Item) -> np.ndarray:
    """The item's pixels; an animated file gives its first frame (one picture is what a tower judges)."""
    try:
        return item.rgb()
    except AnimatedImageError:
        return decode_image(item.data, name=item.name, first_frame=True)


class Embedder:
    """Embed items in batches, decoding and preprocessing only what the cache does not hold.

    ``embed(items)`` returns ``(vectors (N, dim) float32 with NaN rows for failures, errors list
    of str|None)``: one undecodable file never stops the batch.
    """

    def __init__(self, tower: ImageTower, cache: EmbeddingCache | None = None, batch_size: int = 16):
        self.tower, self.cache, self.batch_size = tower, cache, batch_size

    def embed(self, items: Sequence[Item], progress=None) -> tuple[np.ndarray, list[str | None]]:
        out = np.full((len(items), self.tower.dim), np.nan, np.float32)
        errors: list[str | None] = [None] * len(items)
        keys = [it.content_hash() for it in items]
        hits = self.cache.get(self.tower, keys) if self.cache else {}
        todo = []
        for i, k in enumerate(keys):
            if k in hits:
                out[i] = hits[k]
            else:
                todo.append(i)
        for start in range(0, len(todo), self.batch_size):
            chunk, arrays, ok = todo[start:start + self.batch_size], [], []
            for i in chunk:
                try:
                    arrays.append(_pixels(items[i]))
                    ok.append(i)
                except InputError as exc:
                    errors[i] = str(exc)
            if ok:
                vecs = self.tower.embed(preprocess_batch(arrays, self.tower.preprocess))
                out[ok] = vecs
                if self.cache:
                    self.cache.put(self.tower, {keys[i]: v for i, v in zip(ok, vecs)})
            for i in chunk:
                items[i].release_pixels()
            if progress is not None:
                progress(len(chunk))
        return out, errors
