"""Values that must never drift: key derivation, chip layout, text green lists, committed marked images.

A change to any of these makes every mark already embedded unreadable (or silently changes what a key
means), so they are pinned as literals computed once, not recomputed by the test. The marked images
in ``tests/fixtures`` were made once by ``tests/fixtures/make_pinned.py``; never regenerate them to
make a failure go away.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import binom

from provguard.keys import SecretKey
from provguard.watermark import prf
from provguard.watermark.image import create_image_watermark
from provguard.watermark.image.keyed import ChipLayout
from provguard.watermark.text import create_scheme

FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
import make_pinned  # noqa: E402  (the fixture maker: key, payload and procedural base images)


def _load_rgb(name: str) -> np.ndarray:
    return np.asarray(Image.open(FIXTURES / name).convert("RGB"))


def test_key_derivation_is_pinned():
    assert prf.derive_seed(b"pinned", "provguard-image/v1/layout") == 0xC49F9ABA487051BE
    assert prf.derive_seed(SecretKey(b"pinned"), "provguard-image/v1/layout") == 0xC49F9ABA487051BE
    assert prf.derive_seed(b"k" * 100, "x") == 0x93E15708A93295B0  # keys over 64 bytes are folded in
    stream = prf.stream_u64(prf.derive_seed(b"pinned", "x"), 3)
    assert [int(v) for v in stream] == [0x8E26923861675CB3, 0x69254D891B88E2CC, 0x2F0BE782A9B12B1E]


def test_chip_layout_is_pinned():
    lay = ChipLayout.from_key(SecretKey(b"pinned"))
    assert lay.sync[:12].tolist() == [845, 553, 730, 427, 481, 252, 113, 1016, 447, 54, 928, 939]
    assert lay.ref[:3].tolist() == [[554, 731, 28, 779, 374], [460, 336, 301, 385, 403], [525, 459, 437, 488, 290]]
    assert lay.payload[:2].tolist() == [[953, 998, 904, 602, 637], [900, 632, 1005, 575, 431]]
    assert "".join("+" if s > 0 else "-" for s in lay.sign[:48]) == "+-++--+-----+-+++++-+-+----++-+-+--+++-+-++--+-+"
    assert "".join(map(str, lay.ref_bits.tolist())) == \
        "0111001100101000000111011010111011000100000111010110101001110101"
    h = hashlib.sha256()  # the whole layout, every chip
    for a in (lay.sync, lay.ref, lay.payload):
        h.update(np.asarray(a, "<i8").tobytes())
    h.update((lay.sign > 0).astype(np.uint8).tobytes())
    h.update(lay.ref_bits.astype(np.uint8).tobytes())
    assert h.hexdigest() == "8df67263efec3fc92aaa2f15b47da0be8f52c1ee4a735feb73023f31a3639358"


@pytest.mark.parametrize("name,width,expected", [
    ("provguard-lefthash", 1, [[3, 8, 13, 17, 20, 21, 31, 34, 35, 37, 45, 54, 59, 62, 63],
                               [2, 3, 6, 12, 19, 21, 27, 36, 39, 40, 48, 51, 52, 54, 55, 56, 63]]),
    ("provguard-selfhash", 4, [[1, 9, 13, 17, 22, 30, 33, 34, 38, 40, 55, 56, 57, 62, 63],
                               [1, 4, 9, 14, 17, 22, 26, 30, 34, 38, 40, 43, 45, 56, 57, 62, 63]]),
])
def test_text_green_lists_of_a_fixed_key_are_pinned(name, width, expected):
    scheme = create_scheme(name, "pinned-text-key", gamma=0.25, context_width=width)
    prev = torch.tensor([list(range(10, 10 + scheme.prev_len)), list(range(4000, 4000 + scheme.prev_len))])
    mask = scheme.green_mask(prev, 64).numpy()
    assert [np.flatnonzero(row).tolist() for row in mask] == expected
    # the per-n-gram test (what detection uses) gives the same lists
    for row, ctx in zip(expected, prev.numpy()):
        ngrams = np.column_stack([np.repeat(ctx[None], 64, 0), np.arange(64)])
        assert np.flatnonzero(scheme.green_ngrams(ngrams)).tolist() == row


def test_committed_keyed_mark_is_still_detected():
    img = _load_rgb("keyed_5eed.png")
    wm = create_image_watermark("provguard", key=make_pinned.PINNED_KEY)
    res = wm.detect([img], fpr=1e-6)[0]
    assert res.detected and res.bits_matched >= 60 and res.bits_total == 64
    assert res.p_value == binom.sf(res.bits_matched - 1, 64, 0.5)
    assert res.payload == f"{make_pinned.KEYED_PAYLOAD:012x}"
    other = create_image_watermark("provguard", key=b"not the fixture key").detect([img], fpr=1e-3)[0]
    assert not other.detected and other.payload is None


def test_keyed_embedder_still_writes_the_pinned_pixels():
    wm = create_image_watermark("provguard", key=make_pinned.PINNED_KEY, target_psnr=make_pinned.KEYED_PSNR)
    ours = wm.embed([make_pinned.keyed_base()], payload=make_pinned.KEYED_PAYLOAD)[0].astype(int)
    pinned = _load_rgb("keyed_5eed.png").astype(int)
    diff = np.abs(ours - pinned)
    assert diff.max() <= 1 and (diff == 0).mean() >= 0.99  # float blur order may move a pixel by one level


def test_committed_sd_mark_is_still_detected():
    from imwatermark import WatermarkDecoder

    from provguard.watermark.image.sd import SD_PAYLOADS

    img = _load_rgb("sd_sdxl_stability.png")
    res = create_image_watermark("sd").detect([img], fpr=1e-3)[0]
    assert res.detected and res.payload == "sdxl" and res.bits_matched == 48 and res.bits_total == 48
    # and the reference decoder reads it the way Stability's pipeline hands pixels over
    theirs = WatermarkDecoder("bits", 48).decode(np.ascontiguousarray(img[:, :, ::-1].astype(np.float32)), "dwtDct")
    assert (np.asarray(theirs) == SD_PAYLOADS["sdxl"]).sum() >= 46


def test_sd_writer_still_writes_the_pinned_pixels():
    ours = create_image_watermark("sd").embed([make_pinned.sd_base()], payload="sdxl", pixel_path="stability")[0]
    assert np.array_equal(ours, _load_rgb("sd_sdxl_stability.png"))
