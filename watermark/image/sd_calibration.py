"""Calibrate the null distribution of the SD watermark reader on real unwatermarked images.

The reader's statistic is, per payload, the best bit-match count over four read-outs. Its null is
not binomial (flat regions decode to zeros; the four read-outs are correlated), so we count it on
real photos: many random views of every packaged photo and rendered-art image.

A view is a crop (30-100% of each side, shorter side 256-1024 px after rescaling) of one level of a
Lanczos pyramid of the photo (4 levels per octave), of the level itself or of a JPEG re-encoding of
it (q60-100, 4:2:0; half the views). The reader's bits depend only on 8x8-pixel blocks (a 4x4 block of
the Haar LL band), so the four read-outs' block bits are computed once per level version, on a grid
shifted by a random phase of 0-7 pixels, and a view whose corner sits on that grid reads exactly the
sub-grid of bits under it (tested against the reader on the cropped pixels). A view then costs one
integer vote instead of a pass over its pixels, which is what makes 10^5-10^6 views affordable on a CPU.
Each photo gets its own seed (a hash of its name), so the counts do not depend on ``--workers``;
each finished photo is appended to a checkpoint (``--counts`` + ``.partial``), so a killed run
continues where it stopped.

The views are counted per photo and per hash split (:func:`~provguard.imaging.photoset.split_of`),
and the table stores one histogram per split and payload. The shipped p-values use both splits; the
tail model is validated two-fold (fit on one split's photos, count exceedances on the other's), see
:mod:`provguard.watermark.image.sd_null`. Regenerate (about 3 CPU-minutes for 550,000 views)::

    python -m provguard.watermark.image.sd_calibration --views 10000 --workers 2

``--from-counts FILE`` rebuilds the table (refits the tail) from saved per-photo counts without
reading any image; every run saves them to ``benchmarks/results/sd_null_counts.json``.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from provguard.imaging.photos import PackagedImage, packaged_images
from provguard.imaging.photoset import load_reduced, pyramid, split_of
from provguard.watermark.image.sd import SD_PAYLOADS, SDWatermark
from provguard.watermark.image.sd_kernel import block_bits_all
from provguard.watermark.image.sd_null import build_table

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "data" / "sd_null.json"
DEFAULT_COUNTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "sd_null_counts.json"
BLOCK = 8  # pixels per side of the area one 4x4 LL block covers (one Haar level halves each side)
JPEG_VERSIONS = 3  # JPEG re-encodings per pyramid level (plus the level itself)
VIEWS_DESCRIPTION = ("crops (30-100% per side, shorter side 256-1024 px) of a Lanczos pyramid level (4 per octave) "
                     f"or of one of its {JPEG_VERSIONS} JPEG re-encodings (q60-100 4:2:0, half the views), on a block "
                     "grid with a random 0-7 px phase; sources at most 2048 px")


def photo_seed(name: str, seed: int) -> int:
    """A per-photo seed from the photo's name and the run seed (stable across machines and workers)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little")


def null_histograms(images: Iterable[np.ndarray], reader: SDWatermark | None = None) -> dict[str, np.ndarray]:
    """Histogram (length bits+1) of the max-of-read-outs match count per payload over ``images``."""
    reader = reader or SDWatermark()
    hist = {name: np.zeros(len(SD_PAYLOADS[name]) + 1, dtype=np.int64) for name in reader.payloads}
    for img in images:
        counts = reader.match_counts([img])
        for name in reader.payloads:
            hist[name][counts[name][0]] += 1
    return hist


def jpeg_version(image: np.ndarray, quality: int | None) -> np.ndarray:
    """``image`` itself (``quality`` None) or re-encoded as JPEG at ``quality`` with 4:2:0 chroma."""
    if quality is None:
        return image
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality), subsampling=2)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.uint8)


@dataclass(frozen=True)
class BitMap:
    """The four read-outs' block bits of one level version: ``bits`` uint8 ``(4, rows, cols)``, block
    ``(i, j)`` covering pixels ``[phase[0] + 8 i, +8) x [phase[1] + 8 j, +8)`` of the version."""

    bits: np.ndarray
    phase: tuple[int, int]
    quality: int | None


def bit_map(version: np.ndarray, phase: tuple[int, int]) -> BitMap:
    """Block bits of ``version[phase[0]:, phase[1]:]`` under the four read-outs (the reader's CPU kernel)."""
    sub = np.ascontiguousarray(version[phase[0]:, phase[1]:])
    rows, cols = sub.shape[0] // BLOCK, sub.shape[1] // BLOCK
    return BitMap(block_bits_all(sub[None])[0].reshape(4, rows, cols), phase, None)


def level_maps(level: np.ndarray, rng: np.random.Generator) -> list[BitMap]:
    """The level itself, then its JPEG versions, each on a grid with a random phase."""
    out = []
    for quality in [None] + [int(q) for q in rng.integers(60, 101, JPEG_VERSIONS)]:
        phase = (int(rng.integers(0, BLOCK)), int(rng.integers(0, BLOCK)))
        out.append(replace(bit_map(jpeg_version(level, quality), phase), quality=quality))
    return out


def view_bits(shape: tuple[int, int], scales: list[float], maps: list[list[BitMap]], rng: np.random.Generator,
              min_side: int = 256, max_side: int = 1024) -> np.ndarray:
    """Block bits ``(4, bh, bw)`` of one random view of a photo of ``shape`` (see the module docstring)."""
    h, w = shape
    ch, cw = max(min_side, int(h * rng.uniform(0.3, 1.0))), max(min_side, int(w * rng.uniform(0.3, 1.0)))
    ch, cw = min(ch, h), min(cw, w)
    short = rng.integers(min_side, max_side + 1)
    scale = min(1.0, max(short / min(ch, cw), min_side / min(ch, cw)))
    level = max(j for j, s in enumerate(scales) if s >= scale - 1e-12)
    versions = maps[level]
    m = versions[int(rng.integers(1, len(versions)))] if rng.random() < 0.5 else versions[0]
    rows, cols = m.bits.shape[1:]
    bh = min(rows, max(min_side // BLOCK, round(ch * scales[level]) // BLOCK))
    bw = min(cols, max(min_side // BLOCK, round(cw * scales[level]) // BLOCK))
    top, left = int(rng.integers(0, rows - bh + 1)), int(rng.integers(0, cols - bw + 1))
    return m.bits[:, top:top + bh, left:left + bw]


def view_matches(bits: np.ndarray, payloads: Iterable[str]) -> dict[str, int]:
    """Per payload, the best match count over the four read-outs of block bits ``(4, bh, bw)``.

    The vote is the reader's (:func:`~provguard.watermark.image.sd.vote`: block ``n`` votes for bit
    ``n mod L``, a bit is 1 when ``255 * ones > 127 * votes``) in integer numpy, ~30x faster than
    torch on one small view; a test asserts equality with the reader on the cropped pixels.
    """
    flat = np.ascontiguousarray(bits, dtype=np.int64).reshape(4, -1)
    nb = flat.shape[1]
    out = {}
    for name in payloads:
        expected = SD_PAYLOADS[name].astype(bool)
        length = len(expected)
        full, rem = nb // length * length, nb % length
        ones = flat[:, :full].reshape(4, -1, length).sum(1)
        ones[:, :rem] += flat[:, full:]
        votes = np.full(length, nb // length)
        votes[:rem] += 1
        out[name] = int(((255 * ones > 127 * votes) == expected).sum(1).max())
    return out


def photo_histograms(item: PackagedImage, views: int, seed: int) -> dict[str, list[int]]:
    """Histogram (length bits+1) of the max-of-read-outs match count per payload over ``views`` random
    views of one packaged image (seeded by its name)."""
    rng = np.random.default_rng(photo_seed(item.name, seed))
    image = load_reduced(item, 2048)
    scales, levels = pyramid(image, min_side=256 + BLOCK)  # + BLOCK: a phase shift keeps >= 256 px
    maps = [level_maps(level, rng) for level in levels]
    hist = {name: np.zeros(len(bits) + 1, dtype=np.int64) for name, bits in SD_PAYLOADS.items()}
    for _ in range(views):
        for name, m in view_matches(view_bits(image.shape[:2], scales, maps, rng), hist).items():
            hist[name][m] += 1
    return {name: h.tolist() for name, h in hist.items()}


def _job(args: tuple[PackagedImage, int, int]) -> tuple[str, dict[str, list[int]], float]:
    item, views, seed = args
    start = time.perf_counter()
    return item.name, photo_histograms(item, views, seed), time.perf_counter() - start


def _read_checkpoint(path: Path, views: int, seed: int) -> dict[str, dict]:
    """Photos already counted under the same settings (one JSON object per line)."""
    done = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:  # a line cut short by a kill
                continue
            if rec.get("views") == views and rec.get("seed") == seed and rec.get("about") == VIEWS_DESCRIPTION:
                done[rec["name"]] = rec["photo"]
    return done


def count_views(views: int, seed: int, workers: int, checkpoint: Path, shard: tuple[int, int] = (0, 1)) -> dict:
    """Per-photo histograms of every packaged photo/art image: ``{"photos": {name: {"split", "kind",
    "histograms"}}, "views_per_image", "seed", "views"}``. Progress goes to stderr; finished photos
    are appended to ``checkpoint`` and not counted again. ``shard = (i, n)`` counts only photos
    ``i, i + n, ...`` (several processes or machines appending to one checkpoint) and returns None
    unless every photo is then done."""
    items = packaged_images(("photo", "art"))
    if not items:
        raise RuntimeError("no packaged photos found: run `make setup` (see provguard.imaging.photos)")
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # one thread per worker process
    photos, start = _read_checkpoint(checkpoint, views, seed), time.perf_counter()
    jobs = [(item, views, seed) for k, item in enumerate(items) if item.name not in photos and k % shard[1] == shard[0]]
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool, open(checkpoint, "a") as log:
        for name, hist, seconds in pool.map(_job, jobs):
            item = next(i for i in items if i.name == name)
            photos[name] = {"split": split_of(item), "kind": item.kind, "histograms": hist}
            log.write(json.dumps({"name": name, "views": views, "seed": seed, "about": VIEWS_DESCRIPTION,
                                  "photo": photos[name]}) + "\n")
            log.flush()
            print(f"[{len(photos)}/{len(items)}] {name}: {views} views in {seconds:.0f} s "
                  f"(elapsed {time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    photos.update(_read_checkpoint(checkpoint, views, seed))  # what other shards finished meanwhile
    if any(i.name not in photos for i in items):
        return None
    return {"views_per_image": views, "seed": seed, "views": VIEWS_DESCRIPTION,
            "photos": {i.name: photos[i.name] for i in items}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=10000, help="random views per source image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the packaged table")
    parser.add_argument("--counts", type=Path, default=DEFAULT_COUNTS, help="where per-photo counts are saved")
    parser.add_argument("--shard", default="0/1", help="I/N: count only photos I, I+N, ... (parallel runs "
                        "sharing the checkpoint; the last one to finish writes the table)")
    parser.add_argument("--from-counts", type=Path, default=None,
                        help="rebuild the table from saved per-photo counts (reads no image)")
    args = parser.parse_args(argv)
    if args.from_counts:
        counts = json.loads(args.from_counts.read_text())
    else:
        checkpoint = args.counts.with_suffix(".partial")
        i, n = (int(v) for v in args.shard.split("/"))
        counts = count_views(args.views, args.seed, args.workers, checkpoint, (i, n))
        if counts is None:
            print(f"shard {args.shard} done; other photos are still being counted", file=sys.stderr)
            return
        args.counts.write_text(json.dumps(counts) + "\n")
        checkpoint.unlink()
    table = build_table(counts)
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    for name, entry in table["payloads"].items():
        t = entry["tail"]
        print(f"{name}: n={table['n']} tail from {t['anchor']} bits, rate {t['rate']:.3f} per bit; "
              f"p at {entry['bits']}/{entry['bits']} bits = {t['p_at_all_bits']:.2e}")


if __name__ == "__main__":
    main()
