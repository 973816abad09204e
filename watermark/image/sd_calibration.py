"""Calibrate the null distribution of the SD watermark reader on real unwatermarked images.

The reader's statistic is, per payload, the best bit-match count over four read-outs. Its null is
not binomial (flat regions decode to zeros; the four read-outs are correlated), so we count it on
real photos and store a histogram per payload in ``watermark/data/sd_null.json``; the reader turns
it into finite-sample conformal p-values. Regenerate with::

    python -m provguard.watermark.image.sd_calibration --views 300

which uses the calibration split (split 0 of 2) of the packaged photos and rendered art, random
crops/rescales/JPEG re-encodings of each (``provguard.imaging.photoset.random_views``). The test
split is left for measuring the achieved false-positive rate (benchmarks/image_watermarks.py).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Iterable

import numpy as np

from provguard.imaging.photos import packaged_images
from provguard.imaging.photoset import load_reduced, random_views, split_of
from provguard.watermark.image.sd import SD_PAYLOADS, SDWatermark

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "data" / "sd_null.json"


def null_histograms(images: Iterable[np.ndarray], reader: SDWatermark | None = None) -> dict[str, np.ndarray]:
    """Histogram (length bits+1) of the max-of-read-outs match count per payload over ``images``."""
    reader = reader or SDWatermark()
    hist = {name: np.zeros(len(SD_PAYLOADS[name]) + 1, dtype=np.int64) for name in reader.payloads}
    for img in images:
        counts = reader.match_counts([img])
        for name in reader.payloads:
            hist[name][counts[name][0]] += 1
    return hist


def calibration_views(views_per_image: int, seed: int = 0, split: int = 0) -> Iterable[np.ndarray]:
    """Random views of every packaged photo/art image in ``split`` (of 2)."""
    rng = np.random.default_rng(seed)
    for item in packaged_images(("photo", "art")):
        if split_of(item) == split:
            yield from random_views(load_reduced(item, 2048), views_per_image, rng)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=300, help="random views per source image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    sources = [i.name for i in packaged_images(("photo", "art")) if split_of(i) == 0]
    hist = null_histograms(calibration_views(args.views, args.seed))
    n = int(next(iter(hist.values())).sum())
    table = {
        "n": n,
        "statistic": "max over read-outs (u8|f32 x bgr|rgb) of bits matching the payload",
        "source": {"images": sources, "views_per_image": args.views, "seed": args.seed,
                   "views": "random crop 30-100% per side, shorter side 256-1024 px, JPEG q60-100 4:2:0 w.p. 0.5"},
        "payloads": {name: {"bits": len(SD_PAYLOADS[name]), "counts": h.tolist()} for name, h in hist.items()},
    }
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    for name, h in hist.items():
        k = np.nonzero(h)[0]
        print(f"{name}: n={n} matches {k.min()}..{k.max()} (of {len(SD_PAYLOADS[name])})")


if __name__ == "__main__":
    main()
