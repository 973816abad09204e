"""The SD watermark's reported numbers against independent computations, and the float pixel paths.

* p-values: the reader's reported p-value equals ``min(1, 3 (1 + #null >= m) / (n + 1))`` computed
  here from the packaged null table (``sd.load_null_table()``, the table the reader uses), with ``m``
  the best payload's bit matches (beyond the table's resolution, its stored geometric tail); on a flat
  image (which decodes to all zeros, so ``m`` is known without the reader) and on marked ones.
* float pixel paths: Stability (float32 BGR, truncate) and diffusers (float32 RGB, round) embeds equal
  the reference functions built on invisible-watermark itself (``tests/test_sd_watermark.py``).
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from provguard.imaging import color
from provguard.watermark.image import create_image_watermark, sd
from test_sd_watermark import _compvis, _diffusers, _stability

RNG = np.random.default_rng(11)


def _expected_p(table: dict, name: str, m: int) -> float:
    """One payload's p-value, recomputed from the raw table: the conformal ``(1 + #null >= m) / (n + 1)``
    from the histogram; where the table carries a fitted tail (``tail.anchor``, ``tail.rate``), counts
    beyond the anchor get ``p(anchor) * exp(-rate (m - anchor))``, as ``sd_null`` documents."""
    entry = table["payloads"][name]
    counts = entry["counts"]
    n = sum(counts)
    assert n == table["n"]
    tail = entry.get("tail")
    if tail is not None and m > tail["anchor"]:
        anchor = tail["anchor"]
        return (1 + sum(counts[anchor:])) / (n + 1) * math.exp(-tail["rate"] * (m - anchor))
    return (1 + sum(counts[m:])) / (n + 1)


def _expected_detection_p(table: dict, matches: dict[str, int]) -> float:
    """Bonferroni over the payloads searched: min(1, k * min_payload p)."""
    return min(1.0, len(matches) * min(_expected_p(table, name, m) for name, m in matches.items()))


def test_flat_image_p_value_is_the_table_tail_times_three():
    reader = create_image_watermark("sd")
    flat = np.full((256, 320, 3), 128, np.uint8)
    res = reader.detect([flat], fpr=1e-3)[0]
    # a flat image decodes to all zeros: it matches exactly each payload's zero bits
    zeros = {name: int((bits == 0).sum()) for name, bits in sd.SD_PAYLOADS.items()}
    assert res.detail["matches"] == zeros
    assert res.bits_matched == zeros[res.detail["best_payload"]]
    table = sd.load_null_table()
    expected = _expected_detection_p(table, zeros)
    assert min(_expected_p(table, n, m) for n, m in zeros.items()) < 1  # so a missing x3 would show
    assert res.p_value == pytest.approx(expected, rel=1e-12)
    assert not res.detected and res.payload is None


@pytest.mark.parametrize("payload,path", [("sdxl", "compvis"), ("sd2", "compvis"), ("sdxl", "stability")])
def test_marked_image_p_value_is_the_table_tail_times_three(photos_512, payload, path):
    reader = create_image_watermark("sd")
    img = photos_512[1]
    res = reader.detect(reader.embed([img], payload=payload, pixel_path=path), fpr=1e-3)[0]
    assert res.detected and res.payload == payload
    assert res.bits_matched >= 0.85 * len(sd.SD_PAYLOADS[payload])
    table = sd.load_null_table()
    expected = _expected_detection_p(table, res.detail["matches"])
    assert res.p_value == pytest.approx(expected, rel=1e-12)
    # detected iff p <= fpr, at a level between the floor and this p
    assert not reader.detect([reader.embed([img], payload=payload, pixel_path=path)[0]],
                             fpr=res.p_value * 0.999)[0].detected


def test_float32_yuv_is_bit_exact_with_opencv():
    for width in (512, 509, 13):  # the vector loop and each row's scalar tail
        x = (RNG.random((37, width, 3)) * 255).astype(np.float32)
        assert np.array_equal(color.bgr_to_yuv_f32(torch.from_numpy(x)).numpy(), cv2.cvtColor(x, cv2.COLOR_BGR2YUV))
        assert np.array_equal(color.yuv_to_bgr_f32(torch.from_numpy(x)).numpy(), cv2.cvtColor(x, cv2.COLOR_YUV2BGR))


@pytest.mark.parametrize("path,reference", [("stability", _stability), ("diffusers", _diffusers),
                                            ("compvis", _compvis)])
def test_every_pixel_path_equals_its_reference_pipeline(photos_512, path, reference):
    """provguard's embed along each generator's pixel path equals invisible-watermark's own pipeline:
    at least 99.5% of pixel values identical, the rest within one level (byte-identical on an
    AVX2+FMA CPU, where OpenCV's float32 colour code uses fused multiply-adds)."""
    bits = sd.SD_PAYLOADS["sdxl"]
    for k, img in enumerate(photos_512[:3]):
        img = np.ascontiguousarray(img[: 480 + 7 * k, : 500 + 5 * k])  # odd sizes: scalar tails, partial blocks
        theirs = reference(img, bits).astype(int)
        ours = sd.embed_bits(torch.from_numpy(img[None]), bits, sd.PIXEL_PATHS[path])[0].numpy().astype(int)
        diff = np.abs(ours - theirs)
        assert (diff == 0).mean() >= 0.995 and diff.max() <= 1, (path, int((diff > 0).sum()), int(diff.max()))


def test_null_summary_is_what_the_run_card_records():
    table = sd.load_null_table()
    summary = sd.null_summary()
    assert summary["views"] == table["n"] and summary["empirical_resolution"] == 1.0 / (table["n"] + 1)
    assert summary["model"] == table["model"] and set(summary["tail"]) == set(table["payloads"])
    for name, tail in summary["tail"].items():
        assert tail == {k: table["payloads"][name]["tail"][k] for k in ("anchor", "ratio", "anchor_p", "p_at_all_bits")}
    assert create_image_watermark("sd").null_summary() == summary


def test_conformal_p_values_by_hand():
    counts = np.array([5, 0, 3, 2])  # 10 null images: 5 matched 0 bits, 3 matched 2, 2 matched 3
    p = sd.conformal_p_values(counts, np.array([-1, 0, 1, 2, 3, 4, 9]))
    assert p.tolist() == [1.0, 1.0, 6 / 11, 6 / 11, 3 / 11, 1 / 11, 1 / 11]  # beyond every null count: 1/(n+1)


def test_default_payload_and_argument_errors():
    img = np.ascontiguousarray(RNG.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    wm = create_image_watermark("sd")
    assert np.array_equal(wm.embed([img], payload=None)[0], wm.embed([img], payload="sdxl")[0])
    bits = sd.SD_PAYLOADS["sd2"].tolist()  # raw bits (a list) take the CompVis path
    assert np.array_equal(wm.embed([img], payload=bits)[0], wm.embed([img], payload="sd2", pixel_path="compvis")[0])
    for call, parameter, message in [
        (lambda: wm.embed([img], payload="sdxl", pixel_path="comfy"), "pixel_path",
         "unknown pixel path 'comfy' in pixel_path; choose from ['compvis', 'diffusers', 'stability']"),
        (lambda: wm.embed([img], payload="sd3"), "payload",
         "unknown SD payload 'sd3' in payload; choose from ['sd1', 'sd2', 'sdxl'] or pass bits"),
        (lambda: sd.SDWatermark(payloads=["sdxl", "dalle"]), "payloads",
         "unknown SD payload(s) ['dalle'] in payloads; choose from ['sd1', 'sd2', 'sdxl']"),
    ]:
        with pytest.raises(ValueError) as info:
            call()
        assert info.value.parameter == parameter and str(info.value) == message


@pytest.mark.parametrize("level", [0, 128])
def test_flat_images_embed_as_invisible_watermark_does(level):
    """Flat images (black, mid-grey): every 4x4 block of the U band is constant, so the peak search meets
    ties everywhere; the tie order must be invisible-watermark's."""
    img = np.full((256, 320, 3), level, np.uint8)
    bits = sd.SD_PAYLOADS["sdxl"]
    ours = sd.embed_bits(torch.from_numpy(img[None]), bits, sd.PIXEL_PATHS["compvis"])[0].numpy()
    assert np.array_equal(ours, _compvis(img, bits))
