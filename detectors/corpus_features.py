"""Features of every view of every corpus image, computed once per (corpus, tower, layers, views) and cached.

Views per image (see :mod:`provguard.detectors.augment`): ``train0 .. train{k-1}`` (seeded training
augmentations), ``original`` (the file as it is), ``fair`` (format-fair JPEG q90, short side <= 512)
and ``degraded`` (fair, then 0.5x and JPEG q75). A multi-layer tower is stored per layer, raw, so that
any combination of layers can be studied without another forward pass.

Cache: ``cache_dir()/corpus/<key>.npz`` (plain float32 arrays, no pickle), ``key`` hashing the corpus,
the tower's weights and layers, the number of training views, the seed and :data:`VIEWS_VERSION`.
"""
from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np

from provguard.detectors import augment
from provguard.detectors.backbones import cache_dir
from provguard.detectors.corpus import CorpusImage, corpus_sha256
from provguard.detectors.preprocessing import normalise, resize_crop
from provguard.imaging.io import decode_image

EVAL_VIEWS = ("original", "fair", "degraded")
VIEWS_VERSION = 1  # bump when augment.py changes what a view is


def train_view_names(count: int) -> list[str]:
    return [f"train{i}" for i in range(count)]


def image_views(rgb: np.ndarray, key: str, train_views: int, seed: int) -> dict[str, np.ndarray]:
    """All views of one ``uint8 (H, W, 3)`` image, by name."""
    views = dict(zip(train_view_names(train_views), augment.training_views(rgb, key, train_views, seed)))
    fair = augment.format_fair(rgb)
    views.update(original=rgb, fair=fair, degraded=augment.jpeg(augment.rescale(fair, 0.5), 75))
    return views


def _cache_key(images: list[CorpusImage], tower, train_views: int, seed: int) -> str:
    spec = f"v{VIEWS_VERSION}|{corpus_sha256(images)}|{tower.id}|{tower.weights_hash}|{tower.layer}|{train_views}|{seed}"
    return hashlib.sha256(spec.encode()).hexdigest()[:24]


def corpus_features(images: list[CorpusImage], tower, train_views: int = 2, seed: int = 0, batch_size: int = 16,
                    progress: Callable[[int], None] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """``{view: {layer: float32 (N, D_layer)}}`` for every image (rows in ``images`` order).

    ``tower`` is an :class:`~provguard.detectors.backbones.OnnxTower` (``embed_parts``); every view
    of a batch of images runs in one forward pass. Cached on disk (see the module docstring).
    """
    path = cache_dir() / "corpus" / f"{_cache_key(images, tower, train_views, seed)}.npz"
    names = train_view_names(train_views) + list(EVAL_VIEWS)
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {v: {p: z[f"{v}/{p}"] for p in tower.parts} for v in names}
    rows: dict[str, dict[str, list[np.ndarray]]] = {v: {p: [] for p in tower.parts} for v in names}
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        crops, labels = [], []
        for im in chunk:
            for v, rgb in image_views(decode_image(im.path), im.sha256, train_views, seed).items():
                crops.append(resize_crop(rgb, tower.preprocess))
                labels.append(v)
        parts = tower.embed_parts(normalise(np.stack(crops), tower.preprocess))
        for p, arr in parts.items():
            for v in names:
                rows[v][p].append(arr[[i for i, lab in enumerate(labels) if lab == v]])
        if progress is not None:
            progress(len(chunk))
    out = {v: {p: np.concatenate(rows[v][p]) for p in tower.parts} for v in names}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.npz")
    np.savez(tmp, **{f"{v}/{p}": a for v, d in out.items() for p, a in d.items()})
    tmp.replace(path)
    return out
