"""The SD reader's null: tail fit, p-values, held-out validation, the packaged table and the fast
view counting used to build it (issue 10, section 3)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from provguard.watermark.image import sd
from provguard.watermark.image import sd_calibration as cal
from provguard.watermark.image.sd_null import PayloadNull, build_table, validate


def _sample_hist(rng, n, ratio, base=20, bits=48):
    """Histogram of ``base + G`` (G geometric: P(G >= j) = ratio ** j), clipped at ``bits``."""
    g = rng.geometric(1 - ratio, n) - 1
    return np.bincount(np.minimum(base + g, bits), minlength=bits + 1), base + g


def test_tail_fit_recovers_a_known_geometric_tail():
    rng = np.random.default_rng(0)
    hist, raw = _sample_hist(rng, 200_000, 0.6)
    null = PayloadNull.fit(hist)
    assert math.exp(-null.rate) == pytest.approx(0.6, abs=0.02)
    # the tail is fitted on (about) the top 1% of views; the anchor is the last count >= 25 views reach
    assert (raw >= null.start).sum() <= 0.01 * len(raw) < (raw >= null.start - 1).sum()
    assert (raw >= null.anchor).sum() >= 25 > (raw >= null.anchor + 1).sum()
    m = np.arange(49)
    p = null.p_values(m)
    empirical = np.array([(1 + (raw >= k).sum()) / (1 + len(raw)) for k in m])
    assert np.allclose(p[: null.anchor + 1], empirical[: null.anchor + 1], rtol=1e-12)
    beyond = m > null.anchor
    assert np.allclose(p[beyond], p[null.anchor] * math.exp(-null.rate) ** (m[beyond] - null.anchor), rtol=1e-12)
    assert np.all(np.diff(p) <= 0)
    truth = 0.6 ** (m - 20.0)  # P(base + G >= m)
    assert 0.5 < p[44] / truth[44] < 2  # 20 bits beyond anything observed twice: within a factor 2


def test_validation_passes_a_correct_model_and_catches_a_heavier_tail():
    rng = np.random.default_rng(1)
    fit, _ = _sample_hist(rng, 100_000, 0.6)
    same, _ = _sample_hist(rng, 100_000, 0.6)
    good = validate(fit, same)
    assert all(row["poisson_p"] > 1e-3 for row in good["levels"])
    assert good["levels"][1]["observed"] <= 3 * good["levels"][1]["expected"]  # alpha = 1e-3
    heavier, _ = _sample_hist(rng, 100_000, 0.75)
    bad = validate(fit, heavier)
    assert min(row["poisson_p"] for row in bad["levels"]) < 1e-6


def test_fit_refuses_a_degenerate_histogram():
    with pytest.raises(ValueError, match="at least 25 views"):
        PayloadNull.fit([0, 5, 3])
    with pytest.raises(ValueError, match="two or more counts"):
        PayloadNull.fit([0, 0, 1000])


def test_packaged_table_is_large_refittable_and_validated():
    table = sd.load_null_table()
    assert table["n"] >= 100_000
    for name, bits in sd.SD_PAYLOADS.items():
        entry = table["payloads"][name]
        assert len(entry["counts"]) == len(bits) + 1 and sum(entry["counts"]) == table["n"]
        assert np.array_equal(np.sum(entry["counts_by_split"], axis=0), entry["counts"])
        assert PayloadNull.fit(entry["counts"]).to_dict() == pytest.approx(entry["tail"])
        for fold in entry["validation"]:  # fit on one split's photos, count on the other's
            assert fold["n_fit"] + fold["n_test"] == table["n"]
            for row in fold["levels"]:  # the tail never under-states what held-out photos do
                assert row["poisson_p"] > 1e-4, (name, fold["fit_split"], row)
    # rebuilding from the saved per-photo counts gives the packaged table
    counts = json.loads((cal.DEFAULT_COUNTS).read_text())
    assert json.loads(json.dumps(build_table(counts))) == table


def test_reader_p_values_use_the_tail_beyond_the_anchor(photos_512):
    reader = sd.SDWatermark()
    marked = reader.embed([photos_512[3]], payload="sdxl")[0]
    res = reader.detect([marked])[0]
    model = sd.null_models()["sdxl"]
    m = res.detail["matches"]["sdxl"]
    assert m > model.anchor  # a clean mark reads beyond anything real photos reached
    assert res.p_value == pytest.approx(3 * model.p_values([m])[0], rel=1e-12) and res.p_value < 1e-6


def test_block_grid_views_read_exactly_like_the_reader(photos_512):
    """A view taken from a level's block-bit map has the reader's match counts on the cropped pixels."""
    rng = np.random.default_rng(2)
    reader = sd.SDWatermark(device="cpu")
    for quality in (None, 70):
        version = cal.jpeg_version(photos_512[4], quality)
        phase = (int(rng.integers(0, 8)), int(rng.integers(0, 8)))
        m = cal.bit_map(version, phase)
        rows, cols = m.bits.shape[1:]
        for _ in range(4):
            bh, bw = int(rng.integers(32, rows + 1)), int(rng.integers(32, cols + 1))
            top, left = int(rng.integers(0, rows - bh + 1)), int(rng.integers(0, cols - bw + 1))
            y0, x0 = phase[0] + 8 * top, phase[1] + 8 * left
            extra = rng.integers(0, 8, 2)  # rows/columns short of a block are dropped by the reader too
            crop = np.ascontiguousarray(version[y0:y0 + 8 * bh + extra[0], x0:x0 + 8 * bw + extra[1]])
            want = reader.match_counts([crop])
            got = cal.view_matches(m.bits[:, top:top + bh, left:left + bw], sd.SD_PAYLOADS)
            assert got == {name: int(want[name][0]) for name in sd.SD_PAYLOADS}
