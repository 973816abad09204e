"""The keyed watermark against independent numpy/scipy oracles: CRC, chip values, the rendered tile,
the residual, the texture mask and the embedder's pixels, the alignment search and the read-out.

Each oracle is written from the module docstring and the constants, with scipy's Gaussian filters in
place of provguard's torch ones (both truncate at 3 sigma; torch's "reflect" padding is scipy's
"mirror", "circular" is "wrap"), so a changed constant, sign, rounding or pooling in ``keyed.py``
changes provguard's numbers but not the oracle's.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from scipy.stats import binom

from provguard.imaging.color import luma
from provguard.watermark.image import signal
from provguard.watermark.image.keyed import (ChipLayout, ProvguardWatermark, bits_to_hex, chase_decode, crc16,
                                             normalised_residual, payload_to_bits, render_tile, scale_factor)

KEY = b"keyed-exact-test-key"
TILE, CELL, GRID = 128, 4, 32


def _blur(x: np.ndarray, sigma: float, mode: str) -> np.ndarray:
    return ndimage.gaussian_filter(x.astype(np.float64), sigma, mode=mode, truncate=3.0)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return luma(torch.from_numpy(np.array(rgb))).double().numpy()


def _photo_like(h: int, w: int, seed: int, textured: float = 0.5) -> np.ndarray:
    """A flat gradient with black and white patches on the left, fine texture on the right ``textured``
    share of the width (so a texture mask has work to do, and the 0/255 clip too)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 90 + 60 * xx / w + 20 * yy / h
    texture = np.where(xx >= w * (1 - textured), rng.normal(0, 60, (h, w)), 0)
    g = np.clip(base + texture, 0, 255)
    rgb = np.stack([g, 0.9 * g + 10, 0.8 * g + 20], -1).round()
    rgb[: h // 8, : w // 8] = 0
    rgb[-h // 8:, : w // 8] = 255
    return rgb.astype(np.uint8)


def test_crc16_is_ccitt_false():
    bits = np.unpackbits(np.frombuffer(b"123456789", np.uint8))  # the CRC catalogue's check input
    assert int("".join(map(str, crc16(bits))), 2) == 0x29B1
    assert int("".join(map(str, crc16(np.zeros(0, np.uint8)))), 2) == 0xFFFF


def test_payload_bits_and_hex_are_msb_first():
    bits = payload_to_bits(0xC0FFEE)
    assert bits.dtype == np.uint8 and bits.shape == (48,)
    assert bits.tolist() == [int(b) for b in f"{0xC0FFEE:048b}"]
    assert bits_to_hex(bits) == "000000c0ffee" and bits_to_hex(payload_to_bits(None)) == "0" * 12
    assert payload_to_bits(b"\x01\x02\x03\x04\x05\x06").tolist() == [int(b) for b in f"{0x010203040506:048b}"]
    assert payload_to_bits((1 << 48) - 1).sum() == 48 and payload_to_bits("0x1").tolist()[-1] == 1
    for bad, message in [(1 << 48, "payload 0x1000000000000 does not fit in 48 bits"),
                         (-1, "payload -0x1 does not fit in 48 bits"),
                         (b"\x00" * 7, "payload is 7 bytes; the provguard watermark carries at most 6"),
                         ("0xZZ", "payload '0xZZ' is not hexadecimal: pass e.g. 0xC0FFEE (at most 48 bits)")]:
        with pytest.raises(ValueError) as info:
            payload_to_bits(bad)
        assert info.value.parameter == "payload" and str(info.value) == message


def test_chase_decoding_returns_the_cheapest_word_that_checks():
    data = payload_to_bits(0x5EED)
    word = np.concatenate([data, crc16(data)])
    rng = np.random.default_rng(3)
    soft = (2.0 * word - 1) * rng.uniform(2, 3, 64)
    assert chase_decode(soft)[1] == 0 and np.array_equal(chase_decode(soft)[0], word)
    flipped = soft.copy()
    weak = [5, 17, 40]
    flipped[weak] = -0.1 * np.sign(soft[weak])  # three wrong but unreliable bits
    out, n = chase_decode(flipped)
    assert n == 3 and np.array_equal(out, word)
    strong = soft.copy()
    strong[[1, 2, 3]] *= -1  # wrong and reliable: beyond the 8 weakest, no check passes
    out, n = chase_decode(strong)
    assert n is None and np.array_equal(out, (strong > 0).astype(np.uint8))


def test_chip_values_follow_the_layout():
    lay = ChipLayout.from_key(KEY)
    word = np.random.default_rng(1).integers(0, 2, 64).astype(np.uint8)
    expected = lay.sign.astype(np.float64).copy()
    for bit, chips in zip(lay.ref_bits, lay.ref):
        expected[chips] *= 1 if bit else -1
    for bit, chips in zip(word, lay.payload):
        expected[chips] *= 1 if bit else -1
    values = lay.chip_values(word)
    assert values.shape == (GRID, GRID) and np.array_equal(values.flatten(), expected)
    assert len(lay.sync) == 384 and len(np.unique(np.concatenate([lay.sync, lay.ref.ravel(), lay.payload.ravel()]))) == 1024


@pytest.mark.parametrize("k", [1, 2])
def test_render_tile_is_the_blurred_chip_grid_at_unit_rms(k):
    chips = ChipLayout.from_key(KEY).chip_values(np.ones(64, np.uint8))
    tile = render_tile(torch.from_numpy(chips), k).double().numpy()
    ref = _blur(np.kron(chips, np.ones((CELL * k, CELL * k))), 1.0 * k, "wrap")
    ref /= np.sqrt((ref ** 2).mean())
    assert tile.shape == (TILE * k, TILE * k)
    np.testing.assert_allclose(tile, ref, atol=2e-5)


def test_scale_factor():
    assert [scale_factor(h, w) for h, w in [(100, 3000), (512, 512), (767, 900), (769, 900), (1024, 4000),
                                            (1536, 1600), (2000, 1800)]] == [1, 1, 1, 2, 2, 3, 4]


@pytest.mark.parametrize("k", [1.0, 2.0])
def test_normalised_residual_is_highpass_over_local_rms_clipped(k):
    y = _luma(_photo_like(96, 120, 0))
    ours = normalised_residual(torch.from_numpy(y).float(), k).double().numpy()
    r = y - _blur(y, 2.0 * k, "mirror")
    ref = np.clip(r / (np.sqrt(_blur(r * r, 4.0 * k, "mirror")) + 1.0), -1.5, 1.5)
    np.testing.assert_allclose(ours, ref, atol=1e-3)
    assert np.abs(ref).max() == 1.5  # the clip is reached on this image, so it is tested


def _embed_oracle(img: np.ndarray, word: np.ndarray, psnr: float, mask: float) -> np.ndarray:
    h, w = img.shape[:2]
    k = max(1, round(min(h, w) / 512))
    chips = ChipLayout.from_key(KEY).chip_values(word)
    tile = _blur(np.kron(chips, np.ones((CELL * k, CELL * k))), 1.0 * k, "wrap")
    tile /= np.sqrt((tile ** 2).mean())
    pattern = np.tile(tile, (math.ceil(h / tile.shape[0]), math.ceil(w / tile.shape[1])))[:h, :w]
    if mask:
        y = _luma(img)
        hp = y - _blur(y, 2.0 * k, "mirror")
        m = (np.sqrt(_blur(hp * hp, 4.0 * k, "mirror")) + 2.0) ** mask
        pattern = pattern * np.clip(m / np.sqrt((m ** 2).mean()), 0.25, 4.0)
    mse = 255.0 ** 2 / 10 ** (psnr / 10)
    delta = pattern * math.sqrt(mse) / np.sqrt((pattern ** 2).mean())
    return np.clip(np.round(img + delta[..., None]), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape,psnr,mask,textured", [((200, 260), 38.0, 0.0, 0.5), ((180, 300), 36.0, 1.0, 0.5),
                                                      ((800, 820), 40.0, 0.5, 0.5), ((200, 256), 34.0, 1.0, 0.02)])
def test_embedded_pixels_equal_the_oracle(shape, psnr, mask, textured):
    """The last case is nearly all flat: its mask reaches both clamps (0.25 and 4)."""
    img = _photo_like(*shape, seed=2, textured=textured)
    data = payload_to_bits(0xABCDEF)
    word = np.concatenate([data, crc16(data)])
    ours = ProvguardWatermark(KEY, target_psnr=psnr, mask=mask).embed([img], payload=0xABCDEF)[0].astype(int)
    diff = np.abs(ours - _embed_oracle(img, word, psnr, mask).astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() >= 0.995


def test_a_batch_is_marked_image_by_image():
    """Strength and texture mask are normalised per image, never over the batch."""
    wm = ProvguardWatermark(KEY, target_psnr=36.0, mask=1.0)
    images = [_photo_like(160, 200, 7, textured=0.05), _photo_like(160, 200, 8, textured=0.9)]
    batch = wm.embed(images, payload=0x77)
    for img, marked in zip(images, batch):
        assert np.array_equal(marked, wm.embed([img], payload=0x77)[0])


def _oracle_align(folded: np.ndarray, sync_tile: np.ndarray) -> tuple[float, int, int]:
    corr = np.real(np.fft.ifft2(np.fft.fft2(folded) * np.conj(np.fft.fft2(sync_tile)))).ravel()
    best = int(corr.argmax())
    return (corr[best] - corr.mean()) / corr.std(ddof=1), best // TILE, best % TILE


def _oracle_read(wm: ProvguardWatermark, y: np.ndarray, period: float, dy: int, dx: int) -> tuple[float, int, np.ndarray]:
    """sync z, reference-bit matches and payload soft values at a given period and shift."""
    residual = normalised_residual(torch.from_numpy(y).float())
    scaled = signal.resize(residual, TILE / period) if abs(period - TILE) > 1e-6 else residual
    folded = signal.fold(scaled, TILE).double().numpy()
    z, *_ = _oracle_align(folded, wm._sync_tile.double().numpy())
    smooth = _blur(np.roll(folded, (-dy, -dx), (0, 1)), 1.0, "wrap")
    soft = smooth.reshape(GRID, CELL, GRID, CELL).sum((1, 3)).ravel() * wm.layout.sign
    ref = soft[wm.layout.ref].sum(1)
    matches = int(((ref > 0).astype(int) == wm.layout.ref_bits).sum())
    return z, matches, soft[wm.layout.payload].sum(1)


def test_alignment_finds_a_known_shift_with_the_oracle_z():
    wm = ProvguardWatermark(KEY)
    sync = wm._sync_tile.double().numpy()
    folded = np.roll(sync, (37, 101), (0, 1)) + np.random.default_rng(0).normal(0, 0.5, sync.shape)
    z, dy, dx = wm._align(torch.from_numpy(folded).float())
    z_ref, dy_ref, dx_ref = _oracle_align(folded, sync)
    assert (dy, dx) == (dy_ref, dx_ref) == (37, 101) and z == pytest.approx(z_ref, rel=1e-4)


def _attacked(img: np.ndarray, scale: float, crop: tuple[int, int], quality: int) -> np.ndarray:
    import io

    im = Image.fromarray(img[crop[0]:, crop[1]:])
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


@pytest.mark.parametrize("psnr,scale,crop,quality,payload", [
    (40.0, 1.0, (0, 0), 95, "000000005eed"),
    (48.0, 1.0, (21, 50), 60, None),  # detected, but the payload's CRC fails: no payload reported
    (48.0, 0.8, (0, 0), 70, "000000005eed"),  # one payload bit repaired
    (40.0, 1.25, (9, 0), 80, "000000005eed"),
])
def test_detection_reads_what_the_oracle_reads(psnr, scale, crop, quality, payload):
    wm = ProvguardWatermark(KEY, target_psnr=psnr)
    marked = wm.embed([_photo_like(384, 448, 5)], payload=0x5EED)[0]
    img = _attacked(marked, scale, crop, quality)
    res = wm.detect([img], fpr=1e-3)[0]
    d = res.detail
    period = d["period_px"]
    assert period == pytest.approx(TILE * scale, abs=0.01 * TILE * scale)
    assert d["scale"] == pytest.approx(TILE / period, abs=1e-4)
    # the tile starts where the crop cut it: the shift is minus the offset (original pixels), modulo the tile
    assert all(min((s + c) % TILE, -(s + c) % TILE) <= 1 for s, c in zip(d["shift"], crop))
    y = _luma(img)
    z, matches, pay_soft = _oracle_read(wm, y, period, *d["shift"])
    assert d["sync_z"] == pytest.approx(z, abs=2e-3)
    assert res.bits_matched == matches and res.bits_total == 64
    assert res.p_value == binom.sf(matches - 1, 64, 0.5) and res.detected == (res.p_value <= 1e-3)
    # no nearby period on the refinement grid aligns better than the one reported
    for rel in (-0.015, -0.005, 0.005, 0.015):
        assert _oracle_read(wm, y, period * (1 + rel), *d["shift"])[0] <= z + 1e-3
    word, flips = chase_decode(pay_soft)
    assert d["payload_crc_ok"] == (flips is not None) and d["payload_bits_corrected"] == flips
    assert res.detected and res.payload == payload == (bits_to_hex(word[:48]) if flips is not None else None)


def test_render_tile_renders_a_batch_of_chip_grids_each_at_unit_rms():
    lay = ChipLayout.from_key(KEY)
    grids = [lay.chip_values(np.zeros(64, np.uint8)), 0.5 * lay.chip_values(np.ones(64, np.uint8))]
    batch = render_tile(torch.from_numpy(np.stack(grids)), 2)
    for grid, tile in zip(grids, batch):
        torch.testing.assert_close(tile, render_tile(torch.from_numpy(grid), 2), rtol=0, atol=1e-5)
        assert float(tile.pow(2).mean()) == pytest.approx(1.0, abs=1e-5)


def test_too_small_to_read_says_so():
    from provguard.errors import NotApplicable

    with pytest.raises(NotApplicable) as info:
        ProvguardWatermark(KEY).detect([np.zeros((50, 70, 3), np.uint8)])
    assert str(info.value) == ("image is 70x50 pixels; the provguard watermark is read from at least 64x64: "
                               "upscale it or use another method")


def _oracle_candidates(residual: torch.Tensor) -> list[float]:
    """The documented period search: the base tile, the tile at this size's scale, and for each of the
    two strongest autocorrelation peaks past lag 40 its fundamental (a lag near p/3, else p/2, at least
    0.6 as strong), refined by a parabola through three lags."""
    h, w = residual.shape
    max_lag = min(h, w) // 2
    found = {128.0 * max(1, round(min(h, w) / 512)), 128.0}
    if max_lag <= 40:
        return sorted(found)
    prof = signal.autocorrelation_profile(residual, max_lag).numpy()
    peaks = [lag for lag in range(41, max_lag - 1) if prof[lag] >= prof[lag - 1] and prof[lag] >= prof[lag + 1]]
    for p in sorted(peaks, key=lambda lag: -prof[lag])[:2]:
        for q in (round(p / 3), round(p / 2)):
            near = prof[q - 1:q + 2]
            if q >= 40 and near.max() >= 0.6 * prof[p]:
                p = q - 1 + int(np.argmax(near))
                break
        curvature = prof[p - 1] - 2 * prof[p] + prof[p + 1]
        found.add(p + (0.5 * (prof[p - 1] - prof[p + 1]) / curvature if curvature < 0 else 0.0))
    return sorted(found)


@pytest.mark.parametrize("scale,shape", [(0.6, (400, 480)), (0.75, (400, 480)), (1.0, (400, 480)), (1.4, (400, 480)),
                                         (0.45, (700, 760)), (0.6, (700, 760)),  # harmonics within reach
                                         (None, (400, 480)), (None, (1100, 1150)), (None, (70, 90))])
def test_period_candidates_follow_the_documented_search(scale, shape):
    """Marked images at several scales (peaks at the period and its multiples) and unmarked ones
    (a large one, whose tile scale is 2, and one too small to search)."""
    img = _photo_like(*shape, seed=11, textured=0.7)
    if scale is not None:
        img = ProvguardWatermark(KEY, target_psnr=36.0).embed([img], payload=1)[0]
        img = np.asarray(Image.fromarray(img).resize((round(shape[1] * scale), round(shape[0] * scale)), Image.BICUBIC))
    residual = normalised_residual(torch.from_numpy(_luma(img)).float())
    ours = ProvguardWatermark._period_candidates(residual)
    expected = _oracle_candidates(residual)
    assert len(ours) == len(expected) and ours == pytest.approx(expected, abs=1e-9)
    if scale is not None:
        period = 128 * max(1, round(min(shape) / 512)) * scale  # the mark's own period is among them
        assert min(abs(c - period) for c in ours) < 1.0
