"""The Stable Diffusion / SDXL watermark against invisible-watermark (the oracle), both directions."""
from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import pywt
import torch
from imwatermark import WatermarkDecoder, WatermarkEncoder
from PIL import Image

from provguard.errors import InputError
from provguard.imaging import color
from provguard.watermark.image import create_image_watermark, haar, sd

RNG = np.random.default_rng(7)


def _their_encode(array_as_bgr: np.ndarray, bits: np.ndarray) -> np.ndarray:
    enc = WatermarkEncoder()
    enc.set_watermark("bits", [int(b) for b in bits])
    return enc.encode(array_as_bgr, "dwtDct")


def _png_roundtrip(rgb: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def test_uint8_yuv_matches_opencv_exactly():
    x = RNG.integers(0, 256, (97, 131, 3), dtype=np.uint8)
    assert np.array_equal(color.bgr_to_yuv_u8(torch.from_numpy(x)).numpy(), cv2.cvtColor(x, cv2.COLOR_BGR2YUV))
    assert np.array_equal(color.yuv_to_bgr_u8(torch.from_numpy(x)).numpy(), cv2.cvtColor(x, cv2.COLOR_YUV2BGR))
    assert np.array_equal(color.bgr_u_channel_u8(torch.from_numpy(x)).numpy(), cv2.cvtColor(x, cv2.COLOR_BGR2YUV)[..., 1])


def test_float32_yuv_uses_opencv_chroma_offset():
    x = (RNG.random((40, 50, 3)) * 255).astype(np.float32)
    ours = color.bgr_to_yuv_f32(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, cv2.cvtColor(x, cv2.COLOR_BGR2YUV), atol=1e-3)
    np.testing.assert_allclose(color.yuv_to_bgr_f32(torch.from_numpy(x)).numpy(), cv2.cvtColor(x, cv2.COLOR_YUV2BGR), atol=1e-3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_haar_is_bit_exact_with_pywavelets(dtype):
    x = RNG.integers(0, 256, (2, 24, 36)).astype(dtype)
    ca, (ch, cv, cd) = pywt.dwt2(x, "haar")
    tca, (tch, tcv, tcd) = haar.dwt2(torch.from_numpy(x))
    for ours, theirs in [(tca, ca), (tch, ch), (tcv, cv), (tcd, cd)]:
        assert np.array_equal(ours.numpy(), theirs)
    assert np.array_equal(haar.idwt2(tca, (tcv, tch, tcd)).numpy(), pywt.idwt2((ca, (cv, ch, cd)), "haar"))


@pytest.mark.parametrize("payload", ["sdxl", "sd1", "sd2"])
def test_embedding_is_byte_identical_to_invisible_watermark(photos_512, payload):
    bits = sd.SD_PAYLOADS[payload]
    for k, img in enumerate(photos_512[:3]):
        img = np.ascontiguousarray(img[: 480 + 3 * k, : 500 + 5 * k])  # odd sizes: partial blocks
        theirs = _their_encode(np.ascontiguousarray(img[:, :, ::-1]), bits)[:, :, ::-1]
        ours = sd.embed_bits(torch.from_numpy(img[None]), bits, sd.PIXEL_PATHS["compvis"])[0].numpy()
        assert np.array_equal(ours, theirs)


def test_raw_decoding_matches_invisible_watermark_on_unmarked_photos(photos_512):
    for img in photos_512[:4]:
        theirs = WatermarkDecoder("bits", 48).decode(np.ascontiguousarray(img[:, :, ::-1]), "dwtDct")
        ll = haar.ll_band(sd.u_plane(torch.from_numpy(img[None]), "u8", "bgr"))
        assert np.array_equal(sd.vote(sd.block_bits(ll), 48)[0].numpy(), theirs)


# how invisible-watermark must be handed a saved image to read each pipeline's mark
_AS_THEY_READ = {
    "compvis": lambda rgb: np.ascontiguousarray(rgb[:, :, ::-1]),  # uint8 BGR
    "stability": lambda rgb: np.ascontiguousarray(rgb[:, :, ::-1].astype(np.float32)),  # float32 BGR
    "diffusers": lambda rgb: np.ascontiguousarray(rgb.astype(np.float32)),  # float32, RGB as is
}


@pytest.mark.parametrize("pixel_path", sorted(_AS_THEY_READ))
def test_invisible_watermark_reads_what_provguard_embeds(photos_512, pixel_path):
    writer = create_image_watermark("sd")
    matched = []
    for img in photos_512[:4]:
        marked = _png_roundtrip(writer.embed([img], payload="sdxl", pixel_path=pixel_path)[0])
        theirs = WatermarkDecoder("bits", 48).decode(_AS_THEY_READ[pixel_path](marked), "dwtDct")
        matched.append(int((theirs == sd.SD_PAYLOADS["sdxl"]).sum()))
    assert min(matched) >= 36, matched  # Stability's "very likely" band


def _compvis(img, bits):  # SD 1.x/2.x scripts: uint8 RGB -> BGR -> encode -> RGB
    return _their_encode(np.ascontiguousarray(img[:, :, ::-1]), bits)[:, :, ::-1]


def _stability(img, bits):  # sgm WatermarkEmbedder: float32 255*x, BGR, clamp, astype(uint8)
    x = np.ascontiguousarray(img[:, :, ::-1].astype(np.float32))
    out = _their_encode(x, bits)[:, :, ::-1]
    return np.clip(out, 0, 255).astype(np.uint8)


def _diffusers(img, bits):  # diffusers SDXL: float32 RGB (no flip), clamp to [-1, 1], PIL rounding
    x = img.astype(np.float32)
    out = _their_encode(x, bits)
    out = np.clip(2 * (out / 255 - 0.5), -1, 1)
    return np.round((out / 2 + 0.5) * 255).astype(np.uint8)


@pytest.mark.parametrize("pipeline,payload", [(_compvis, "sd1"), (_compvis, "sd2"), (_compvis, "sdxl"),
                                              (_stability, "sdxl"), (_diffusers, "sdxl")])
def test_provguard_reads_marks_made_by_invisible_watermark(photos_512, pipeline, payload):
    reader = create_image_watermark("sd")
    marked = [_png_roundtrip(pipeline(img, sd.SD_PAYLOADS[payload])) for img in photos_512[:6]]
    results = reader.detect(marked, fpr=1e-2)
    hits = [r for r in results if r.detected]
    assert len(hits) >= 5, [(r.bits_matched, r.detail) for r in results]
    assert all(r.payload == payload for r in hits)
    assert all(r.p_value < 1e-2 for r in hits)


def test_pixel_paths_round_trip_through_the_matching_read_out(photos_512):
    wm = create_image_watermark("sd")
    img = photos_512[0]
    for path, readout in [("compvis", "u8-bgr"), ("stability", "f32-bgr"), ("diffusers", "f32-rgb")]:
        res = wm.detect(wm.embed([img], payload="sdxl", pixel_path=path))[0]
        assert res.detail["readout"] == readout
        assert res.bits_matched >= 44


def test_unmarked_photos_are_not_flagged(test_split_photos):
    results = create_image_watermark("sd").detect(test_split_photos, fpr=1e-3)
    assert sum(r.detected for r in results) == 0
    # p-values come from the calibrated table: valid probabilities, and not all at the floor
    ps = np.array([r.p_value for r in results])
    assert ((ps > 0) & (ps <= 1)).all() and np.median(ps) > 0.05


def test_conformal_p_values():
    counts = np.zeros(49, dtype=int)
    counts[20:30] = 10  # 100 null images matching 20..29 bits
    p = sd.conformal_p_values(counts, np.array([0, 20, 29, 30, 48]))
    np.testing.assert_allclose(p, [101 / 101, 101 / 101, 11 / 101, 1 / 101, 1 / 101])


def test_too_small_images_get_a_clear_error():
    wm = create_image_watermark("sd")
    small = np.zeros((200, 300, 3), np.uint8)  # 60,000 pixels < 65,536
    with pytest.raises(InputError, match="256x256"):
        wm.detect([small])
    with pytest.raises(InputError, match="256x256"):
        wm.embed([small])


def test_cpu_kernel_is_bit_identical_to_the_torch_path(photos_512):
    from provguard.watermark.image.sd_kernel import block_bits_all

    batches = [np.stack(photos_512[:3]), RNG.integers(0, 256, (2, 301, 419, 3), dtype=np.uint8),
               np.ascontiguousarray(np.stack(photos_512[3:5])[:, :509, :497])]
    for batch in batches:
        rgb = torch.from_numpy(batch)
        reference = np.stack([sd.block_bits(haar.ll_band(sd.u_plane(rgb, dt, o))).numpy()
                              for dt, o in sd.READOUTS], 1)
        assert np.array_equal(block_bits_all(batch), reference.astype(np.uint8))


def test_null_histograms_count_every_image_once(photos_512):
    from provguard.watermark.image.sd_calibration import null_histograms

    images = [photos_512[0], photos_512[1][:300, :400].copy(), np.full((256, 256, 3), 128, np.uint8)]
    hist = null_histograms(images)
    assert set(hist) == {"sd1", "sd2", "sdxl"}
    assert all(h.sum() == 3 and len(h) == len(sd.SD_PAYLOADS[name]) + 1 for name, h in hist.items())
    # a flat grey image decodes to all zeros: it matches exactly the payload's zero bits
    zeros = int((sd.SD_PAYLOADS["sdxl"] == 0).sum())
    assert create_image_watermark("sd").match_counts([images[2]])["sdxl"][0] == zeros


def test_packaged_null_table_is_large_enough_for_the_default_fpr():
    table = sd.load_null_table()
    assert table["n"] >= 3000  # Bonferroni x3: the smallest p-value 3/(n+1) must reach 1e-3
    for name, bits in sd.SD_PAYLOADS.items():
        counts = table["payloads"][name]["counts"]
        assert len(counts) == len(bits) + 1 and sum(counts) == table["n"]
