"""Calibrate the null distribution of the SD watermark reader on real unwatermarked images.

The reader's statistic is, per payload, the best bit-match count over four read-outs. Its null is
not binomial (flat regions decode to zeros; the four read-outs are correlated), so we count it on
real photos: many random views of every packaged photo and rendered-art image
(:func:`provguard.imaging.photoset.pyramid_views`: crops of 30-100% per side, shorter side
256-1024 px, half of them JPEG re-encoded at q60-100 4:2:0). Each photo gets its own seed (a hash of
its name), so the counts do not depend on ``--workers``.

The views are counted per photo and per hash split (:func:`~provguard.imaging.photoset.split_of`),
and the table stores one histogram per split and payload. The shipped p-values use both splits; the
tail model is validated two-fold (fit on one split's photos, count exceedances on the other's), see
:mod:`provguard.watermark.image.sd_null`. Regenerate (about 40 CPU-minutes for 110,000 views)::

    python -m provguard.watermark.image.sd_calibration --views 2000 --workers 2

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

import numpy as np

from provguard.imaging.photos import PackagedImage, packaged_images
from provguard.imaging.photoset import load_reduced, pyramid_views, split_of
from provguard.watermark.image.sd import SD_PAYLOADS, SDWatermark
from provguard.watermark.image.sd_null import build_table

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "data" / "sd_null.json"
DEFAULT_COUNTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "sd_null_counts.json"
VIEWS_DESCRIPTION = ("pyramid views: random crop 30-100% per side, shorter side 256-1024 px (Lanczos pyramid, "
                     "4 levels per octave), JPEG q60-100 4:2:0 with probability 0.5; sources at most 2048 px")


def photo_seed(name: str, seed: int) -> int:
    """A per-photo seed from the photo's name and the run seed (stable across machines and workers)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little")


def photo_histograms(item: PackagedImage, views: int, seed: int) -> dict[str, list[int]]:
    """Histogram (length bits+1) of the max-of-read-outs match count per payload over ``views`` views
    of one packaged image."""
    reader = SDWatermark(device="cpu")
    hist = {name: np.zeros(len(SD_PAYLOADS[name]) + 1, dtype=np.int64) for name in reader.payloads}
    rng = np.random.default_rng(photo_seed(item.name, seed))
    for view in pyramid_views(load_reduced(item, 2048), views, rng):
        counts = reader.match_counts([view])
        for name in reader.payloads:
            hist[name][counts[name][0]] += 1
    return {name: h.tolist() for name, h in hist.items()}


def _job(args: tuple[PackagedImage, int, int]) -> tuple[str, dict[str, list[int]], float]:
    item, views, seed = args
    start = time.perf_counter()
    return item.name, photo_histograms(item, views, seed), time.perf_counter() - start


def count_views(views: int, seed: int, workers: int) -> dict:
    """Per-photo histograms of every packaged photo/art image: ``{"photos": {name: {"split", "kind",
    "histograms"}}, "views_per_image", "seed", "views"}``. Progress goes to stderr."""
    items = packaged_images(("photo", "art"))
    if not items:
        raise RuntimeError("no packaged photos found: run `make setup` (see provguard.imaging.photos)")
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # one thread per worker process
    photos, start = {}, time.perf_counter()
    jobs = [(item, views, seed) for item in items]
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for done, (name, hist, seconds) in enumerate(pool.map(_job, jobs), 1):
            item = next(i for i in items if i.name == name)
            photos[name] = {"split": split_of(item), "kind": item.kind, "histograms": hist}
            print(f"[{done}/{len(items)}] {name}: {views} views in {seconds:.0f} s "
                  f"(elapsed {time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    return {"views_per_image": views, "seed": seed, "views": VIEWS_DESCRIPTION, "photos": photos}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=2000, help="random views per source image")
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
        counts = count_views(args.views, args.seed, args.workers)
        args.counts.parent.mkdir(parents=True, exist_ok=True)
        args.counts.write_text(json.dumps(counts) + "\n")
    table = build_table(counts)
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    for name, entry in table["payloads"].items():
        t = entry["tail"]
        print(f"{name}: n={table['n']} tail from {t['anchor']} bits, rate {t['rate']:.3f} per bit; "
              f"p at {entry['bits']}/{entry['bits']} bits = {t['p_at_all_bits']:.2e}")


if __name__ == "__main__":
    main()
