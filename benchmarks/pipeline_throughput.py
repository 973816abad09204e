"""Pipeline throughput: `provguard filter` items/s vs the bare backbone forward pass, cascades, engines.

Run:  .venv/bin/python -m benchmarks.pipeline_throughput [--n 2000] [--side 160] [--ray-n 200] [--ray-only]

Builds a folder of N mixed images (JPEG / PNG / WebP, random crops of the packaged real photos,
SIDE px; 10% carry an AUTOMATIC1111 chunk) under benchmarks/results/raw/ (git-ignored), fits and
calibrates a throughput-only probe on the cheap MobileNetV2 backbone (real views vs blurred views:
a stand-in so the classifier runs; its accuracy is *not* measured here), then measures:

1. the bare backbone: decode + preprocess + forward, batch 32, one process (the model-bound rate);
2. the whole pipeline with the probe (`--workers 2`, decoding in worker processes);
3. metadata-only and watermark-only (SD) cascades;
4. local vs Ray engine on the first RAY_N images (manifests compared row by row);
and the peak RSS of each run. Writes
benchmarks/results/pipeline_throughput.md.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
RAW = RESULTS / "raw" / "pipeline"


def build_folder(n: int, side: int, folder: Path) -> Path:
    from PIL import Image, PngImagePlugin

    from provguard.imaging.photos import require_photos
    from provguard.imaging.photoset import load_reduced

    if folder.exists() and len(list(folder.iterdir())) == n:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    photos = [load_reduced(p, 1024) for p in require_photos(8)]
    for i in range(n):
        img = photos[i % len(photos)]
        h, w = img.shape[:2]
        s = int(rng.integers(min(h, w) // 4, min(h, w)))
        top, left = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        tile = Image.fromarray(img[top:top + s, left:left + s]).resize((side, side), Image.BILINEAR)
        fmt = ("jpg", "png", "webp")[i % 3]
        if i % 10 == 0:
            info = PngImagePlugin.PngInfo()
            info.add_text("parameters", "x\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1")
            tile.save(folder / f"{i:05d}.png", pnginfo=info)
        else:
            tile.save(folder / f"{i:05d}.{fmt}", quality=90) if fmt != "png" else tile.save(folder / f"{i:05d}.png")
    return folder


def make_probe(folder: Path, out: Path) -> Path:
    """A throughput-only probe on MobileNetV2: real views vs Gaussian-blurred views, calibrated at 1% FPR."""
    from PIL import Image, ImageFilter

    from provguard.detectors.backbones import create_backbone
    from provguard.detectors.calibration import calibrate
    from provguard.detectors.preprocessing import preprocess_batch
    from provguard.detectors.probe import LinearProbe
    from provguard.imaging.io import load_image

    tower = create_backbone("mobilenetv2")
    files = sorted(folder.iterdir())[:300]
    real = [load_image(f) for f in files]
    blurred = [np.asarray(Image.fromarray(a).filter(ImageFilter.GaussianBlur(3))) for a in real[:100]]
    X = tower.embed(preprocess_batch(real[:100] + blurred, tower.preprocess))
    probe = LinearProbe().fit(X, np.r_[np.zeros(100), np.ones(100)]).bind(tower)
    cal = tower.embed(preprocess_batch(real[100:300], tower.preprocess))
    probe.calibration_ = calibrate(probe.decision_function(cal), 0.01).to_dict()
    probe.save(out)
    return out


def bare_backbone(folder: Path, batch: int = 32) -> float:
    """Images/s of decode + preprocess + forward in one process (no cache, no pipeline)."""
    from provguard.detectors.backbones import create_backbone
    from provguard.detectors.preprocessing import preprocess_batch
    from provguard.imaging.io import load_image

    tower = create_backbone("mobilenetv2")
    files = sorted(folder.iterdir())
    start = time.perf_counter()
    for i in range(0, len(files), batch):
        tower.embed(preprocess_batch([load_image(f) for f in files[i:i + batch]], tower.preprocess))
    return len(files) / (time.perf_counter() - start)


# VmHWM (the peak resident set of this process's own address space) — not ru_maxrss, which Linux carries
# over from the parent across fork+exec and would report the benchmark's own peak.
_PEAK = ("import atexit, sys; from provguard.cli import main; atexit.register(lambda: sys.stderr.write("
         "'PEAK_RSS_KIB %s\\n' % [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])); main()")


def run_filter(folder: Path, out: Path, *args: str) -> tuple[float, float]:
    """(items/s, peak RSS MiB of the filter process; decoding workers not included) of one `provguard filter`."""
    import subprocess

    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PROVGUARD_CACHE": str(RAW / f"cache-{out.name}")}
    shutil.rmtree(env["PROVGUARD_CACHE"], ignore_errors=True)  # the embedding cache would make re-runs free
    cmd = [sys.executable, "-c", _PEAK, "filter", str(folder), "--out", str(out), "--text-watermark", "none", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    wall = time.perf_counter() - start
    peak = [int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_RSS_KIB")]
    n = len(list(folder.iterdir()))
    return n / wall, (peak[-1] / 1024 if peak else float("nan"))


def manifest_agreement(a: list[dict], b: list[dict]) -> str:
    """Compare two manifests row by row: every non-float column exactly (paths, hashes, verdicts,
    decisions, reasons, errors), float columns (scores) by their largest absolute difference. Floats
    can differ in the last digits because batches are composed differently (float32 model maths)."""
    if len(a) != len(b):
        return f"**different row counts** ({len(a)} vs {len(b)})"
    exact, worst = True, 0.0
    for ra, rb in zip(a, b):
        for key in ra:
            va, vb = ra[key], rb.get(key)
            if isinstance(va, float) and isinstance(vb, float):
                if va == va or vb == vb:  # skip NaN == NaN
                    worst = max(worst, abs(va - vb))
            elif va != vb:
                exact = False
    return (f"every non-float column identical: **{exact}**; largest score difference: **{worst:.1e}** "
            f"({len(a)} rows)")


def compare_engines(folder: Path, probe: Path, n: int) -> tuple[list[list[str]], str]:
    """Local vs Ray engine on the first ``n`` images: table rows and how the manifests agree."""
    import pyarrow.parquet as pq

    sub = RAW / f"subset-{n}"
    shutil.rmtree(sub, ignore_errors=True)
    sub.mkdir(parents=True)
    for f in sorted(folder.iterdir())[:n]:
        shutil.copy2(f, sub / f.name)
    common = ["--watermark", "sd", "--probe", str(probe), "--workers", "2", "--batch-size", "16"]
    rate_l, rss_l = run_filter(sub, RAW / "engine-local", *common)
    rate_r, rss_r = run_filter(sub, RAW / "engine-ray", *common, "--engine", "ray")
    a = pq.read_table(RAW / "engine-local/manifest.parquet").drop_columns(["evidence"]).to_pylist()
    b = pq.read_table(RAW / "engine-ray/manifest.parquet").drop_columns(["evidence"]).to_pylist()
    return ([["local", f"{rate_l:.1f}", f"{rss_l:.0f}"], ["ray (local instance, 2 actors)", f"{rate_r:.1f}", f"{rss_r:.0f}"]],
            manifest_agreement(a, b))


def md(table, header) -> str:
    """A Markdown table."""
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] +
                     ["| " + " | ".join(map(str, r)) + " |" for r in table])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--side", type=int, default=160)
    ap.add_argument("--ray-n", type=int, default=200)
    ap.add_argument("--ray-only", action="store_true",
                    help="only the local-vs-Ray comparison (reuses the cached folder and probe); prints it and "
                         "leaves results/pipeline_throughput.md alone")
    args = ap.parse_args(argv)
    folder = build_folder(args.n, args.side, RAW / f"images-{args.n}-{args.side}")
    probe_path = RAW / "throughput_probe.safetensors"
    probe = probe_path if args.ray_only and probe_path.exists() else make_probe(folder, probe_path)
    rows = []
    if args.ray_only:
        engines, same = compare_engines(folder, probe, args.ray_n)
        print(md(engines, ["engine", "items/s", "peak RSS MiB"]) + f"\n\nManifests (evidence JSON aside): {same}")
        return
    bare = bare_backbone(folder)
    rows.append(["bare backbone forward (mobilenetv2, decode+preprocess+forward, batch 32, 1 process)", f"{bare:.1f}", "-", "100%"])
    for label, extra in [
        ("pipeline: metadata + probe (cascade), --workers 2", ["--watermark", "none", "--probe", str(probe), "--workers", "2"]),
        ("pipeline: metadata + probe (cascade), --workers 0", ["--watermark", "none", "--probe", str(probe), "--workers", "0"]),
        ("pipeline: metadata only", ["--watermark", "none"]),
        ("pipeline: metadata + SD watermark", ["--watermark", "sd"]),
    ]:
        rate, rss = run_filter(folder, RAW / f"run-{len(rows)}", *extra)
        rows.append([label, f"{rate:.1f}", f"{rss:.0f}", f"{rate / bare:.0%}"])
    engines, same = compare_engines(folder, probe, args.ray_n)
    from provguard.formatting import format_table

    text = (f"# Pipeline throughput\n\nCommand: `.venv/bin/python -m benchmarks.pipeline_throughput --n {args.n} "
            f"--side {args.side} --ray-n {args.ray_n}` on {os.cpu_count()} CPU cores (shared), no GPU. "
            f"{args.n} mixed JPEG/PNG/WebP images of {args.side}x{args.side} px from packaged photos; the classifier "
            "is the cheap MobileNetV2 backbone with a throughput-only probe. Items/s include process start-up and "
            "model load (a few seconds). Peak RSS: VmHWM of the filter process (decoding workers not included).\n\n"
            + md(rows, ["run", "items/s", "peak RSS MiB", "vs bare backbone"])
            + f"\n\n## Local vs Ray engine ({args.ray_n} images, SD watermark + probe)\n\n"
            + md(engines, ["engine", "items/s", "peak RSS MiB"])
            + f"\n\nManifests (every column but the raw evidence JSON, which tests/test_pipeline_sources.py "
              f"compares exactly on a probe-free run): {same}\n")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipeline_throughput.md").write_text(text)
    print(text)
    print(format_table(rows, ["run", "items/s", "peak RSS MiB", "vs bare"]), file=sys.stderr)


if __name__ == "__main__":
    main()
