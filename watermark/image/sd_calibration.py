"""Calibrate the null distribution of the SD watermark reader on real unwatermarked images.

The reader's statistic is, per payload, the best bit-match count over four read-outs. Its null is
not binomial (flat regions decode to zeros; the four read-outs are correlated), so we count it on
real photos: many random views of every packaged photo and rendered-art image
(:func:`provguard.imaging.photoset.pyramid_views`: crops of 30-100% per side, shorter side
256-768 px, half of them JPEG re-encoded at q60-100 4:2:0). Each photo gets its own seed (a hash of
its name), so the counts do not depend on ``--workers``; each finished photo is appended to a
checkpoint (``--counts`` + ``.partial``), so a killed run continues where it stopped.

The views are counted per photo and per hash split (:func:`~provguard.imaging.photoset.split_of`),
and the table stores one histogram per split and payload. The shipped p-values use both splits; the
tail model is validated two-fold (fit on one split's photos, count exceedances on the other's), see
:mod:`provguard.watermark.image.sd_null`. Regenerate (about 25 CPU-minutes for 101,750 views)::

    python -m provguard.watermark.image.sd_calibration --views 1850 --workers 2

``--from-counts FILE`` rebuilds the table (refits the tail) from saved per-photo counts without
reading any image; every run saves them to ``benchmarks/results/sd_null_counts.json``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterable

import numpy as np

from provguard.imaging.photos import PackagedImage, packaged_images
from provguard.imaging.photoset import load_reduced, pyramid_views, split_of
from provguard.watermark.image.sd import SD_PAYLOADS, SDWatermark
from provguard.watermark.image.sd_null import build_table

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "data" / "sd_null.json"
DEFAULT_COUNTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "sd_null_counts.json"
MAX_VIEW_SIDE = 768  # views' shorter side is drawn from 256..MAX_VIEW_SIDE px
VIEWS_DESCRIPTION = (f"pyramid views: random crop 30-100% per side, shorter side 256-{MAX_VIEW_SIDE} px (Lanczos "
                     "pyramid, 4 levels per octave), JPEG q60-100 4:2:0 with probability 0.5; sources at most 2048 px")


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


def photo_histograms(item: PackagedImage, views: int, seed: int) -> dict[str, list[int]]:
    """:func:`null_histograms` over ``views`` random views of one packaged image (seeded by its name)."""
    rng = np.random.default_rng(photo_seed(item.name, seed))
    views_iter = pyramid_views(load_reduced(item, 2048), views, rng, max_side=MAX_VIEW_SIDE)
    return {name: h.tolist() for name, h in null_histograms(views_iter, SDWatermark(device="cpu")).items()}


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


def count_views(views: int, seed: int, workers: int, checkpoint: Path) -> dict:
    """Per-photo histograms of every packaged photo/art image: ``{"photos": {name: {"split", "kind",
    "histograms"}}, "views_per_image", "seed", "views"}``. Progress goes to stderr; finished photos
    are appended to ``checkpoint`` and not counted again."""
    items = packaged_images(("photo", "art"))
    if not items:
        raise RuntimeError("no packaged photos found: run `make setup` (see provguard.imaging.photos)")
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # one thread per worker process
    photos, start = _read_checkpoint(checkpoint, views, seed), time.perf_counter()
    jobs = [(item, views, seed) for item in items if item.name not in photos]
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
    return {"views_per_image": views, "seed": seed, "views": VIEWS_DESCRIPTION,
            "photos": {i.name: photos[i.name] for i in items}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=1850, help="random views per source image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the packaged table")
    parser.add_argument("--counts", type=Path, default=DEFAULT_COUNTS, help="where per-photo counts are saved")
    parser.add_argument("--from-counts", type=Path, default=None,
                        help="rebuild the table from saved per-photo counts (reads no image)")
    args = parser.parse_args(argv)
    if args.from_counts:
        counts = json.loads(args.from_counts.read_text())
    else:
        checkpoint = args.counts.with_suffix(".partial")
        counts = count_views(args.views, args.seed, args.workers, checkpoint)
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
