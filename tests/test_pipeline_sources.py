"""Other sources: Parquet (image bytes and text, a corrupt row), webdataset tars (truncated member),
Hugging Face datasets saved to disk and an imagefolder; and the Ray engine on a local Ray instance."""
from __future__ import annotations

import io
import json
import os
import tarfile
from importlib.util import find_spec

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import require_asset
from click.testing import CliRunner

from provguard.cli import main
from tests.pipeline_corpus import A1111, TEST_KEY, png_bytes


@pytest.fixture(scope="module")
def images(photo_items):
    from provguard.imaging.photoset import tiles
    from provguard.watermark.image import create_image_watermark

    photos = tiles(photo_items[:3], 256)
    marked = create_image_watermark("provguard", key=TEST_KEY).embed(photos[1:2], payload=5)[0]
    return [png_bytes(photos[0]), png_bytes(marked), png_bytes(photos[2], {"parameters": A1111})]


def _run(src, out, tmp_path, *extra):
    key = tmp_path / "k"
    key.write_bytes(TEST_KEY)
    r = CliRunner().invoke(main, ["filter", str(src), "--out", str(out), "--watermark", "provguard", "--key-file", str(key),
                                  "--text-watermark", "none", "--workers", "0", "--json", *extra])
    rows = {x["key"]: x for x in pq.read_table(out / "manifest.parquet").to_pylist()} if (out / "manifest.parquet").exists() else {}
    return r, rows


def test_parquet_with_image_bytes_text_and_a_corrupt_row(images, tmp_path):
    t = pa.table({"image": images + [b"\x89PNG garbage"], "text": ["a", "b", "c", "d"]})
    pq.write_table(t, tmp_path / "data.parquet")
    r, rows = _run(tmp_path / "data.parquet", tmp_path / "run", tmp_path)
    assert r.exit_code == 1, r.output
    assert rows["data.parquet#row=1&image"]["verdict"] == "synthetic"
    assert rows["data.parquet#row=2&image"]["reasons"][0] == "png-text:automatic1111"
    assert rows["data.parquet#row=3&image"]["error"] and rows["data.parquet#row=0&text"]["error"] is None
    assert len(rows) == 8


def test_webdataset_tar_with_a_truncated_member(images, tmp_path):
    tar_path = tmp_path / "shard-000.tar"
    with tarfile.open(tar_path, "w") as tf:
        for i, data in enumerate(images):
            info = tarfile.TarInfo(f"{i:04d}.png")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
            info = tarfile.TarInfo(f"{i:04d}.txt")
            info.size = 5
            tf.addfile(info, io.BytesIO(b"hello"))
    full = tar_path.read_bytes()
    cut = full.index(images[2][:64]) + 100  # inside the last image member
    (tmp_path / "tars").mkdir()
    (tmp_path / "tars/a.tar").write_bytes(full)
    (tmp_path / "tars/b.tar").write_bytes(full[:cut])
    r, rows = _run(tmp_path / "tars", tmp_path / "run", tmp_path, "--format", "webdataset")
    assert r.exit_code == 1, r.output
    assert rows["a.tar#0001.png"]["verdict"] == "synthetic" and rows["b.tar#0001.png"]["verdict"] == "synthetic"
    assert rows["b.tar#0002.png"]["error"] and rows["a.tar#0002.png"]["error"] is None
    assert rows["a.tar#0000.txt"]["media_type"] == "text"


def test_hf_dataset_saved_to_disk_and_imagefolder(images, tmp_path):
    import datasets

    ds = datasets.Dataset.from_dict({"image": [{"bytes": b, "path": None} for b in images], "caption": ["x", "y", "z"]},
                                    features=datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string")}))
    ds.save_to_disk(str(tmp_path / "saved"))
    r, rows = _run(tmp_path / "saved", tmp_path / "run", tmp_path, "--text-field", "caption")
    assert r.exit_code == 0, r.output
    assert rows["row=1&image"]["verdict"] == "synthetic" and rows["row=2&image"]["reasons"][0] == "png-text:automatic1111"
    folder = tmp_path / "imgs/train"
    folder.mkdir(parents=True)
    for i, b in enumerate(images):
        (folder / f"{i}.png").write_bytes(b)
    r, rows = _run(tmp_path / "imgs", tmp_path / "run2", tmp_path, "--format", "hf-imagefolder")
    assert r.exit_code == 0, r.output
    assert sorted(v["verdict"] for v in rows.values()) == ["synthetic", "synthetic", "uncertain"]


def test_ray_engine_equals_local(images, tmp_path):
    require_asset(find_spec("ray") is not None, "Ray (the `ray` extra)")
    src = tmp_path / "src"
    src.mkdir()
    for i, b in enumerate(images):
        (src / f"{i}.png").write_bytes(b)
    (src / "bad.jpg").write_bytes(b"nope")
    _, local = _run(src, tmp_path / "local", tmp_path)
    r, ray_rows = _run(src, tmp_path / "ray", tmp_path, "--engine", "ray", "--workers", "1", "--batch-size", "2")
    assert r.exit_code == 1, r.output
    assert local == ray_rows
    assert json.loads((tmp_path / "ray/run.json").read_text())["engine"] == "ray"


def test_ray_engine_reads_folders_with_rays_reader(images, tmp_path):
    """Folder bytes come from ``read_binary_files`` (JSONL lines and bad entries on descriptors), all
    shards in one dataset: the manifest, shard files and markers still equal the local engine's."""
    require_asset(find_spec("ray") is not None, "Ray (the `ray` extra)")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for i, b in enumerate(images):
        (src / "sub" / f"{i}.png").write_bytes(b)
    (src / "bad.jpg").write_bytes(b"nope")
    (src / "empty.png").write_bytes(b"")
    (src / "note.txt").write_text("a plain note")
    (src / "lines.jsonl").write_text('{"text": "one"}\nnot json\n')
    (src / "folder.png").mkdir()
    (src / os.fsdecode(b"\xff.png")).write_bytes(images[0])  # not UTF-8: loaded from a descriptor
    extra = ("--shard-size", "3", "--batch-size", "2")
    _, local = _run(src, tmp_path / "local", tmp_path, *extra)
    r, ray_rows = _run(src, tmp_path / "ray", tmp_path, "--engine", "ray", "--workers", "1", *extra)
    assert r.exit_code == 1, r.output
    assert local == ray_rows and len(ray_rows) == 10
    assert ray_rows["\\xff.png"]["error"] is None and ray_rows["\\xff.png"]["verdict"] == ray_rows["sub/0.png"]["verdict"]
    assert ray_rows["folder.png"]["error"] and ray_rows["empty.png"]["error"] and ray_rows["lines.jsonl#line=2"]["error"]
    card = json.loads((tmp_path / "ray/run.json").read_text())
    assert card["engine_info"]["ray_reader"] == ["read_binary_files", "from_items"]
    shards = sorted(p.name for p in (tmp_path / "ray/shards").iterdir())
    assert shards == sorted(p.name for p in (tmp_path / "local/shards").iterdir()) and len(shards) == 8  # data + marker
    # resume: only the unfinished shard is redone; a file gone since the scan becomes an error row
    (tmp_path / "ray/shards/shard-00002.done").unlink()
    (src / "sub/2.png").unlink()
    r, resumed = _run(src, tmp_path / "ray", tmp_path, "--engine", "ray", "--workers", "1", *extra)
    assert r.exit_code == 1, r.output
    assert "cannot read file" in resumed["sub/2.png"]["error"]
    assert {k: v for k, v in resumed.items() if k != "sub/2.png"} == {k: v for k, v in ray_rows.items() if k != "sub/2.png"}
