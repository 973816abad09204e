"""Stealth LSB metadata (AUTOMATIC1111 stealth-pnginfo extension, NovelAI) on files built here bit by bit
(tests/metadata_formats.py writes the layout the extension describes: column-major, MSB first, 32-bit
length in bits), the first-column probe against Pillow's own decoding, when pixels are read at all,
and hostile payloads (impossible lengths, gzip bombs, broken gzip)."""
from __future__ import annotations

import gzip
import io
import struct
import time

import numpy as np
import pytest
from PIL import Image

from provguard.detectors import stealth
from provguard.detectors.containers import read_containers
from provguard.detectors.metadata import scan_metadata
from tests import metadata_formats as F
from tests.metadata_formats import A1111


def _by_reason(data: bytes) -> dict:
    return {e.reason: e for e in scan_metadata(data)}


@pytest.mark.parametrize("mode", ["alpha", "rgb"])
@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("size", [256, 64])  # 64 rows: below the probe's 120, read by a full decode
def test_a1111_stealth_round_trip(mode, compressed, size):
    data = F.stealth_png(A1111, mode, compressed, size=size)
    ev = _by_reason(data)
    assert list(ev) == ["stealth:automatic1111"]
    e = ev["stealth:automatic1111"]
    magic = f"stealth_{'png' if mode == 'alpha' else 'rgb'}{'comp' if compressed else 'info'}"
    payload_len = len(gzip.compress(A1111.encode())) if compressed else len(A1111.encode())
    assert (e.detail["magic"], e.detail["mode"], e.detail["compressed"]) == (magic, mode, compressed)
    assert e.verdict == "synthetic" and e.strength == "medium" and e.tier == "unsigned-metadata"
    assert e.detail["payload_bits"] == payload_len * 8  # gzip's timestamp changes bytes, never the length
    res = stealth.read(np.asarray(Image.open(io.BytesIO(data))))
    assert res.text == A1111 and res.problem is None


def test_rgb_stealth_in_an_rgba_image_is_read():
    pixels = F.rgb(3, 256, 4)
    data = F.encode("PNG", F.embed_stealth(pixels, F.stealth_stream(A1111.encode(), "rgb", False), "rgb"))
    assert list(_by_reason(data)) == ["stealth:automatic1111"]


def test_novelai_stealth_json():
    e = _by_reason(F.stealth_png(F.NOVELAI_STEALTH, "alpha", True))["stealth:novelai"]
    assert e.detail["magic"] == "stealth_pngcomp" and e.detail["key"] == "Software"


def test_lossless_webp_stealth_is_read_lossy_is_not_decoded(monkeypatch):
    assert list(_by_reason(F.stealth_png(A1111, "alpha", True, fmt="WEBP", lossless=True))) == ["stealth:automatic1111"]
    lossy = F.encode("WEBP", F.rgb(1, 256, 3), quality=80)
    monkeypatch.setattr(stealth, "decode_rgba", lambda data: pytest.fail("lossy WebP must not be decoded"))
    assert scan_metadata(lossy) == [] and scan_metadata(F.encode("JPEG", F.rgb(1, 256, 3))) == []


def test_probe_rules_out_plain_pngs_without_decoding(monkeypatch):
    monkeypatch.setattr(stealth, "decode_rgba", lambda data: pytest.fail("pixels decoded for a file the probe ruled out"))
    for pixels in (F.rgb(5, 512, 4), F.rgb(5, 512, 3)):
        data = F.encode("PNG", pixels)
        assert stealth.probe(data, read_containers(data).pixels) == [] and scan_metadata(data) == []


def test_cheap_evidence_skips_the_pixels_of_opaque_pngs(monkeypatch):
    monkeypatch.setattr(stealth, "probe", lambda *a: pytest.fail("RGB PNG with a generator chunk must not be probed"))
    assert [e.reason for e in scan_metadata(F.png({"parameters": A1111}, pixels=F.rgb(1, 256, 3)))] == ["png-text:automatic1111"]


def _photo_like(h: int, w: int, channels: int) -> np.ndarray:
    """Smooth gradients plus noise: Pillow's adaptive filter then picks several PNG filter types per image."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) * 127 // (w + h))] + [(255 - x % 7)] * (channels - 3), -1)
    noise = np.random.default_rng(h + w).integers(0, 3, base.shape)
    return np.clip(base + noise * (x[..., None] % 5 == 0), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("channels", [3, 4])
def test_first_column_reader_matches_pillow(channels):
    """Column 0 un-filtered from the raw IDAT stream equals Pillow's decoded pixels, whatever the filter types."""
    filters = set()
    for pixels in (_photo_like(150, 97, channels), F.rgb(9, 130, channels)):
        data = F.encode("PNG", pixels)
        px = read_containers(data).pixels
        reader = stealth._ColumnReader(data, px.idat, 1 + px.width * channels, channels)
        col = reader.first_column(px.height)
        decoded = np.asarray(Image.open(io.BytesIO(data)))[:, 0, :]
        assert np.array_equal(np.frombuffer(col, np.uint8).reshape(px.height, channels), decoded)
        filters |= {reader.raw[r * reader.stride] for r in range(px.height)}
    assert len(filters) >= 3, filters  # several PNG filter types were exercised


def _png_every_filter(pixels: np.ndarray) -> bytes:
    """A PNG whose rows cycle through all five filter types (None, Sub, Up, Average, Paeth), per the PNG spec."""
    import zlib

    h, w, bpp = pixels.shape
    rows, prev = [], np.zeros(w * bpp, np.int32)
    for r in range(h):
        cur = pixels[r].reshape(-1).astype(np.int32)
        left = np.concatenate([np.zeros(bpp, np.int32), cur[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int32), prev[:-bpp]])
        p = left + prev - upleft
        pa, pb, pc = np.abs(p - left), np.abs(p - prev), np.abs(p - upleft)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        f = r % 5
        pred = [0 * cur, left, prev, (left + prev) // 2, paeth][f]
        rows.append(bytes([f]) + ((cur - pred) % 256).astype(np.uint8).tobytes())
        prev = cur

    def chunk(t, body):
        return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, {3: 2, 4: 6}[bpp], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(rows)))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("channels", [3, 4])
def test_first_column_reader_all_five_filters(channels):
    pixels = F.rgb(11, 130, channels)
    data = _png_every_filter(pixels)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels)  # the hand-made PNG is valid
    px = read_containers(data).pixels
    col = stealth._ColumnReader(data, px.idat, 1 + px.width * channels, channels).first_column(px.height)
    assert np.array_equal(np.frombuffer(col, np.uint8).reshape(px.height, channels), pixels[:, 0, :])
    stego = _png_every_filter(F.embed_stealth(F.rgb(12, 130, 4), F.stealth_stream(A1111.encode(), "alpha", True), "alpha"))
    assert [e.reason for e in scan_metadata(stego)] == ["stealth:automatic1111"]


def _stealth_with_bits(header_bits: int, body: bytes, magic: bytes = b"stealth_pnginfo", size: int = 256) -> bytes:
    bits = np.unpackbits(np.frombuffer(magic + struct.pack(">I", header_bits) + body, np.uint8))
    return F.encode("PNG", F.embed_stealth(F.rgb(7, size, 4), bits, "alpha"))


@pytest.mark.parametrize("nbits", [0, 12, 2 ** 32 - 8, 256 * 256])
def test_impossible_stealth_length_is_a_message(nbits):
    ev = _by_reason(_stealth_with_bits(nbits, A1111.encode()))
    assert list(ev) == ["metadata:corrupt:stealth:impossible-length"]
    assert f"declares {nbits} payload bits" in ev["metadata:corrupt:stealth:impossible-length"].detail["message"]


def test_gzip_bomb_in_stealth_is_capped():
    bomb = gzip.compress(b"\x00" * (16 << 20), 9)  # 16 MiB of zeros in about 16 KB
    data = _stealth_with_bits(len(bomb) * 8, bomb, b"stealth_pngcomp", size=512)
    t = time.perf_counter()
    ev = _by_reason(data)
    assert time.perf_counter() - t < 5.0
    msg = ev["metadata:corrupt:stealth:gzip-bomb"].detail["message"]
    assert f"inflates past {stealth.MAX_TEXT_BYTES} bytes" in msg
    assert ev["stealth:unrecognized"].verdict == "none"
    res = stealth.read(np.asarray(Image.open(io.BytesIO(data))))
    assert len(res.text) == stealth.MAX_TEXT_BYTES


def test_broken_gzip_in_stealth_is_a_message():
    body = b"\x1f\x8b\x08\x00" + b"definitely not deflate data" * 4
    ev = _by_reason(_stealth_with_bits(len(body) * 8, body, b"stealth_pngcomp"))
    assert list(ev) == ["metadata:corrupt:stealth:bad-gzip"] and "not valid gzip" in \
        ev["metadata:corrupt:stealth:bad-gzip"].detail["message"]
    good = gzip.compress(A1111.encode())
    cut = good[: len(good) // 2]
    ev = _by_reason(_stealth_with_bits(len(cut) * 8, cut, b"stealth_pngcomp"))
    assert "end-of-stream" in ev["metadata:corrupt:stealth:bad-gzip"].detail["message"]


def test_unattributable_stealth_payload_is_no_opinion():
    ev = _by_reason(F.stealth_png("just some words", "alpha", False))
    assert list(ev) == ["stealth:unrecognized"] and ev["stealth:unrecognized"].detail["preview"] == "just some words"


def test_random_pixels_carry_no_magic():
    for seed in range(20):
        for channels in (3, 4):
            assert stealth.read(F.rgb(seed, 64, channels)) is None


def test_huge_images_are_not_decoded_for_the_stealth_check(monkeypatch):
    monkeypatch.setattr(stealth, "MAX_DECODE_PIXELS", 100 * 100)
    monkeypatch.setattr(stealth, "decode_rgba", lambda data: pytest.fail("pixels decoded past the cap"))
    data = F.stealth_png(A1111, "alpha", True, size=128)  # the probe finds the magic; the decode is refused
    ev = scan_metadata(data)
    assert [e.reason for e in ev] == ["stealth:not-checked"] and "16384 pixels" in ev[0].detail["message"]
