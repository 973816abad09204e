"""Library hooks: ProvenanceFilter, datasets map/filter (Dataset and IterableDataset), torch wrappers, publisher."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from tests.pipeline_corpus import A1111, TEST_KEY, png_bytes


@pytest.fixture(scope="module")
def batch(photo_items):
    from provguard.hooks import WatermarkingPublisher
    from provguard.imaging.photoset import tiles

    photos = tiles(photo_items[:4], 256)
    pub = WatermarkingPublisher(key=TEST_KEY, payload=3)
    marked = pub.images(photos[:2])
    images = [photos[2], marked[0], png_bytes(photos[3], {"parameters": A1111}), marked[1]]
    return images, [True, False, False, False]


@pytest.fixture(scope="module")
def pfilter():
    from provguard.hooks import ProvenanceFilter

    return ProvenanceFilter(watermarks=["provguard"], key=TEST_KEY)


def test_provenance_filter_and_publisher(batch, pfilter):
    images, expected = batch
    r = pfilter(images)
    assert r.keep.tolist() == expected
    assert r.reasons[1][0] == "watermark:provguard:detected" and r.reasons[2][0] == "png-text:automatic1111"
    assert r.verdicts[0] == "uncertain" and r.verdicts[1] == "synthetic"
    assert any(e["detector"] == "provguard-watermark" and e["p_value"] < 1e-3 for e in r.evidence[1])


def test_publisher_wrap_marks_outputs(batch, pfilter, photo_items):
    from provguard.hooks import WatermarkingPublisher
    from provguard.imaging.photoset import tiles

    img = tiles(photo_items[4:5], 256)[0]
    make = WatermarkingPublisher(key=TEST_KEY).wrap(lambda: img)
    assert pfilter([make()]).keep.tolist() == [False]
    assert pfilter([img]).keep.tolist() == [True]


def test_datasets_map_and_filter_on_dataset_and_iterable(batch, pfilter):
    import datasets

    images, expected = batch
    ds = datasets.Dataset.from_dict({"image": [png_bytes(i) if isinstance(i, np.ndarray) else i for i in images],
                                     "n": list(range(4))})
    from provguard.hooks import filter_dataset, score_dataset

    scored = score_dataset(ds, image_column="image", pfilter=pfilter, batch_size=2)
    assert scored["provguard_keep"] == expected and scored["provguard_verdict"][1] == "synthetic"
    assert filter_dataset(ds, image_column="image", pfilter=pfilter)["n"] == [0]
    it = ds.to_iterable_dataset()
    assert [row["n"] for row in filter_dataset(it, image_column="image", pfilter=pfilter, batch_size=3)] == [0]
    texts = datasets.Dataset.from_dict({"text": ["plain human words here", "more words"]})
    assert score_dataset(texts, text_column="text", pfilter=pfilter)["provguard_keep"] == [True, True]


def test_torch_wrappers(batch, pfilter, tmp_path):
    import torch

    from provguard.cli import main
    from provguard.hooks import FilteredIterableDataset, ManifestDataset, filtering_collate

    images, expected = batch
    samples = [(torch.tensor(float(i)), i) for i in range(4)]
    # IterableDataset filter over (image, label) pairs
    stream = FilteredIterableDataset([(img, i) for i, img in enumerate(images)], pfilter, batch_size=3)
    assert [label for _, label in stream] == [0]
    # collate_fn wrapper
    collate = filtering_collate(pfilter, get=lambda s: images[s[1]])
    out = collate(samples)
    assert out[1].tolist() == [0]
    # Dataset wrapper from a manifest
    src = tmp_path / "src"
    src.mkdir()
    for i, img in enumerate(images):
        (src / f"{i}.png").write_bytes(png_bytes(img) if isinstance(img, np.ndarray) else img)
    key_file = tmp_path / "k"
    key_file.write_bytes(TEST_KEY)
    r = CliRunner().invoke(main, ["filter", str(src), "--out", str(tmp_path / "run"), "--watermark", "provguard",
                                  "--key-file", str(key_file), "--workers", "0", "--text-watermark", "none"])
    assert r.exit_code == 0, r.output
    wrapped = ManifestDataset(samples, tmp_path / "run", keys=[f"{i}.png" for i in range(4)])
    assert len(wrapped) == 1 and wrapped[0][1] == 0
