"""Fashion-MNIST (Xiao et al. 2017) from the Debian package ``dataset-fashion-mnist`` - nothing downloads.

Files: ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` under ``/usr/share/datasets/fashion-mnist``
(or ``$PROVGUARD_FASHION_MNIST``). Images are IDX (16-byte header), labels IDX (8-byte header).
"""
from __future__ import annotations

import gzip
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from provguard.errors import ProvguardError

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
SPLITS = {"train": 60000, "t10k": 10000, "test": 10000}


class DatasetMissing(ProvguardError):
    """The data set is not installed; the message says how to install it."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    return Path(root or os.environ.get("PROVGUARD_FASHION_MNIST") or DEFAULT_ROOT)


@lru_cache(maxsize=4)
def _load(root: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "t10k" if split in ("t10k", "test") else "train"
    img_path = Path(root) / f"{prefix}-images-idx3-ubyte.gz"
    lab_path = Path(root) / f"{prefix}-labels-idx1-ubyte.gz"
    for p in (img_path, lab_path):
        if not p.is_file():
            raise DatasetMissing(f"Fashion-MNIST is not installed ({p} is missing): run `make setup`, or "
                                 f"`sudo apt-get update && sudo apt-get install dataset-fashion-mnist`, or point "
                                 f"$PROVGUARD_FASHION_MNIST at a folder with the four *-ubyte.gz files")
    images = np.frombuffer(gzip.open(img_path).read(), np.uint8, offset=16).reshape(-1, 28, 28)
    labels = np.frombuffer(gzip.open(lab_path).read(), np.uint8, offset=8)
    if len(images) != len(labels) or len(images) != SPLITS[split]:
        raise DatasetMissing(f"Fashion-MNIST files under {root} are truncated or corrupt "
                             f"({len(images)} images, {len(labels)} labels; expected {SPLITS[split]})")
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_fashion_mnist(split: str = "train", root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N, 28, 28], labels uint8 [N])`` of ``split`` ("train", 60,000; "t10k"/"test", 10,000).

    Read-only arrays, cached per process. Raises :class:`DatasetMissing` naming the install command.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)} (got {split!r})")
    return _load(str(data_root(root)), split)
