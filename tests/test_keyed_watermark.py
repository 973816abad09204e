"""provguard's keyed image watermark: quality, robustness, exact null, payload, keys."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from conftest import psnr
from provguard.imaging.attacks import ATTACKS
from provguard.keys import SecretKey
from provguard.watermark import prf
from provguard.watermark.image import create_image_watermark
from provguard.watermark.image.keyed import (DATA_BITS, REF_BITS, ChipLayout, chase_decode, crc16,
                                             payload_to_bits)

KEY = b"test-key-0"


@pytest.fixture(scope="module")
def wm():
    return create_image_watermark("provguard", key=KEY)


@pytest.fixture(scope="module")
def marked(wm, photos_512):
    return wm.embed(photos_512[:4], payload=0xC0FFEE)


def test_psnr_is_at_least_40_db(photos_512, marked):
    values = [psnr(a, b) for a, b in zip(photos_512[:4], marked)]
    assert min(values) >= 40.0, values
    assert max(values) < 43.0  # the strength knob is honoured, not an accident of clipping


def test_clean_marks_are_detected_with_the_payload(wm, marked):
    for res in wm.detect(marked, fpr=1e-3):
        assert res.detected and res.p_value < 1e-9
        assert res.bits_matched >= 58 and res.bits_total == REF_BITS
        assert res.payload == "000000c0ffee"
        assert res.detail["shift"] == [0, 0] and abs(res.detail["scale"] - 1) < 0.01


@pytest.mark.parametrize("attack", ["jpeg50-420", "webp75", "resize0.5", "crop0.75", "shift4", "blur1",
                                    "noise5", "brightness-20", "contrast+20", "recompress3"])
def test_survives_the_required_transformations(wm, marked, attack):
    results = wm.detect([ATTACKS[attack](m) for m in marked], fpr=1e-3)
    assert all(r.detected for r in results), [(r.bits_matched, r.detail) for r in results]


def test_geometry_is_recovered(wm, marked):
    res = wm.detect([ATTACKS["shift4"](marked[0]), ATTACKS["resize0.5"](marked[0])])
    assert res[0].detail["shift"] == [4, 4]
    assert abs(res[1].detail["scale"] - 2.0) < 0.03  # read at half size: resampled by 2


def test_wrong_key_and_unmarked_images_are_not_detected(marked, photos_512):
    other = create_image_watermark("provguard", key=b"another key")
    assert not any(r.detected for r in other.detect(marked, fpr=1e-3))
    right = create_image_watermark("provguard", key=KEY)
    assert not any(r.detected for r in right.detect(photos_512[4:8], fpr=1e-3))


def test_null_distribution_is_binomial(photos_512):
    """Under 'not marked with this key', reference-bit matches are Binomial(64, 1/2) exactly.

    A detector that chose its alignment using the reference bits would inflate the matches and fail.
    """
    images = photos_512[:3] + [create_image_watermark("provguard", key=b"decoy").embed([photos_512[3]])[0]]
    matches, reported = [], []
    for k in range(30):
        det = create_image_watermark("provguard", key=f"null-{k}".encode())
        for r in det.detect(images):
            matches.append(r.bits_matched)
            reported.append(r.p_value)
            assert r.statistic == r.bits_matched and r.detected == (r.p_value <= 1e-3)
    matches = np.array(matches)  # 120 draws
    # the p-value the detector reports is the exact binomial tail P(Bin(64, 1/2) >= matches)
    np.testing.assert_array_equal(reported, binom.sf(matches - 1, REF_BITS, 0.5))
    assert abs(matches.mean() - 32) < 4 * 4 / np.sqrt(len(matches))  # sd of Bin(64,1/2) = 4
    assert 0.5 * 16 < matches.var() < 1.6 * 16
    p = binom.sf(matches - 1, REF_BITS, 0.5)
    assert (p < 0.05).mean() < 0.05 + 3 * np.sqrt(0.05 * 0.95 / len(p))


def test_key_layout_is_pinned_and_device_independent():
    """The key's chip layout comes from the hash PRF: the same bits on every machine and device.

    Literals computed once (more in ``tests/test_pinned.py``): a change to the derivation would make
    every existing mark unreadable.
    """
    lay = ChipLayout.from_key(SecretKey(b"pinned"))
    assert lay.sync.shape == (384,) and lay.ref.shape == (64, 5) and lay.payload.shape == (64, 5)
    assert len(np.unique(np.concatenate([lay.sync, lay.ref.ravel(), lay.payload.ravel()]))) == 1024
    assert "".join(map(str, lay.ref_bits[:16].tolist())) == "0111001100101000"
    assert lay.sync[:4].tolist() == [845, 553, 730, 427]
    assert int(prf.stream_u64(prf.derive_seed(b"pinned", "x"), 1)[0]) == 0x8E26923861675CB3


def test_prf_is_fair_and_domain_separated():
    a = prf.bits(prf.derive_seed(b"k", "a"), 100_000)
    b = prf.bits(prf.derive_seed(b"k", "b"), 100_000)
    assert abs(a.mean() - 0.5) < 4 * 0.5 / np.sqrt(len(a))
    assert abs((a == b).mean() - 0.5) < 4 * 0.5 / np.sqrt(len(a))
    perm = prf.permutation(prf.derive_seed(b"k", "p"), 1000)
    assert sorted(perm.tolist()) == list(range(1000))
    # splitmix64 reference value (Vigna's test vector: seed 0 -> first output 0xE220A8397B1DCDAF)
    assert int(prf.stream_u64(0, 1)[0]) == 0xE220A8397B1DCDAF


def test_payload_forms_and_errors():
    assert payload_to_bits(0xC0FFEE).tolist() == payload_to_bits("0xc0ffee").tolist()
    assert payload_to_bits(b"\x00\x00\x00\xc0\xff\xee").tolist() == payload_to_bits("c0ffee").tolist()
    assert payload_to_bits(None).sum() == 0 and len(payload_to_bits(None)) == DATA_BITS
    with pytest.raises(ValueError, match="48 bits"):
        payload_to_bits(1 << 48)
    with pytest.raises(ValueError, match="hexadecimal"):
        payload_to_bits("not hex")


def test_chase_decoding_repairs_the_weakest_bits():
    data = payload_to_bits(0x123456789A)
    word = np.concatenate([data, crc16(data)])
    rng = np.random.default_rng(0)
    soft = (2.0 * word - 1) * rng.uniform(1, 2, word.size)
    weak = rng.choice(word.size, 3, replace=False)
    soft[weak] = -0.1 * np.sign(soft[weak])  # three wrong, barely-reliable bits
    fixed, flipped = chase_decode(soft)
    assert flipped == 3 and np.array_equal(fixed, word)
    soft[:20] *= -1  # too many strong errors: no CRC-valid word within reach
    assert chase_decode(soft)[1] is None


def test_any_pillow_mode_is_converted_and_too_small_is_refused(wm, photos_512):
    from PIL import Image

    from provguard.errors import InputError
    from provguard.imaging.io import decode_image

    rgba = Image.fromarray(photos_512[0]).convert("RGBA")
    import io
    buf = io.BytesIO()
    rgba.save(buf, format="PNG")
    img = decode_image(buf.getvalue())
    assert wm.detect(wm.embed([img]))[0].detected
    with pytest.raises(InputError, match="at least 128x128"):
        wm.embed([np.zeros((100, 300, 3), np.uint8)])
    with pytest.raises(InputError, match="at least 64x64"):
        wm.detect([np.zeros((40, 300, 3), np.uint8)])


def test_key_is_never_shown():
    wm = create_image_watermark("provguard", key=b"super-secret-key")
    assert "super-secret" not in repr(wm) and "super-secret" not in repr(wm.key)
