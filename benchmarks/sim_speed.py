"""Simulator speed: chain-generations/s of the Gaussian loop (fast path, per-sample path) against a plain
per-chain numpy loop written the way public notebooks do it, in the same run; and the neural (DDPM)
family's seconds per generation.

Run: ``python -m benchmarks.sim_speed [--quick]``. Writes ``benchmarks/results/sim_speed.md``.
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from provguard.sim.config import SimConfig
from provguard.sim.engine import run

RESULTS = Path(__file__).parent / "results"


def notebook_loop(chains: int, generations: int, n: int, d: int, lam: float, seed: int = 0) -> None:
    """The public-notebook way: one chain at a time, sample, refit with np.mean / np.cov."""
    rng = np.random.default_rng(seed)
    for _ in range(chains):
        mu, cov = np.zeros(d), np.eye(d)
        x = rng.multivariate_normal(mu, cov, size=n)
        for _ in range(generations):
            mu, cov = x.mean(0), np.cov(x, rowvar=False)
            x = rng.multivariate_normal(mu, lam * cov, size=n)


def timed(fn, repeats: int = 3) -> float:
    """Best wall time of ``repeats`` runs (the machine is shared: the minimum is the least disturbed)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def gaussian_rows(d: int, n: int, generations: int, quick: bool) -> list[tuple]:
    base = SimConfig(loop="synthetic", dim=d, n_real=n, n_synth=n, generations=generations, lam=1.0,
                     metrics="fast", device="auto")
    scale = max(1, n // 1000)
    sizes = {"stats": 64 if quick else 4096, "samples": 16 if quick else max(16, 256 // scale),
             "numpy": 4 if quick else max(8, 32 // scale)}
    rows = []
    run(base.replace(chains=8, generations=2, path="stats"))  # warm-up
    t_np = timed(lambda: notebook_loop(sizes["numpy"], generations, n, d, 1.0))
    np_rate = sizes["numpy"] * generations / t_np
    rows.append((f"numpy per-chain loop (notebook style), n={n}", sizes["numpy"], np_rate, 1.0))
    for path, label in (("stats", "provguard fast path (sufficient statistics)"),
                        ("samples", "provguard per-sample path (batched)")):
        cfg = base.replace(chains=sizes[path], path=path)
        t = timed(lambda: run(cfg))
        rate = sizes[path] * generations / t
        rows.append((f"{label}, n={n}", sizes[path], rate, rate / np_rate))
    return rows


def sizes_note(quick: bool) -> str:
    return ("smoke-test sizes" if quick else
            "4096 chains on the fast path; numpy and the per-sample path run fewer chains at the same per-chain "
            "work, which does not change their per-chain rate")


def neural_row(quick: bool) -> tuple:
    from provguard.data import load_fashion_mnist
    from provguard.sim.features import FeatureExtractor

    x, y = load_fashion_mnist("train")
    fx = FeatureExtractor.train(x[:5000], y[:5000], steps=50)
    steps = 10 if quick else 100
    cfg = SimConfig(model="ddpm", loop="fresh", n_real=256, n_synth=256, generations=3, chains=1,
                    ddpm_train_steps=steps, ddpm_sample_steps=10, eval_samples=128, device="auto",
                    extra={"feature_extractor": fx})
    stamps = []
    run(cfg, on_generation=lambda t, r: stamps.append(time.perf_counter()))
    per_gen = float(np.mean(np.diff(stamps)))
    return (cfg, per_gen)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (1: on a shared, oversubscribed CPU more threads stall)")
    ap.add_argument("--no-neural", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    d, n, generations = 8, 1000, 10
    device = "cuda (" + torch.cuda.get_device_name() + ")" if torch.cuda.is_available() else f"cpu ({args.threads} threads)"
    rows = [r for size in ((n,) if args.quick else (n, 10 * n)) for r in gaussian_rows(d, size, generations, args.quick)]
    lines = ["# Simulator speed", "",
             f"Command: `python -m benchmarks.sim_speed{' --quick' if args.quick else ''}`; device: {device}; "
             f"torch {torch.__version__}; {platform.processor() or platform.machine()}.", "",
             f"Gaussian family, fully synthetic loop, d={d}, n samples per generation, {generations} generations, "
             "closed-form metrics only (w2sq, log det); best of 3 runs; each speed-up is against the numpy loop at the same n.", "",
             "| implementation | chains | chain-generations/s | speed-up vs numpy |", "|---|---:|---:|---:|"]
    lines += [f"| {label} | {c} | {rate:,.0f} | {ratio:,.1f}x |" for label, c, rate, ratio in rows]
    fast = [(label, ratio) for label, _, _, ratio in rows if "fast path" in label]
    lines += ["", "Speed-up of the fast path: " + ", ".join(f"{r:,.0f}x at {lab.rsplit(', ', 1)[1]}" for lab, r in fast)
              + f" ({sizes_note(args.quick)})."]
    if not args.no_neural:
        cfg, per_gen = neural_row(args.quick)
        lines += ["", "Neural family (class-conditional DDPM, 16-channel U-Net, Fashion-MNIST), one chain: "
                  f"{cfg.ddpm_train_steps} training steps (batch {cfg.ddpm_batch}) + {cfg.n_synth} samples "
                  f"({cfg.ddpm_sample_steps} DDIM steps) + metrics on {cfg.eval_samples} samples per generation.", "",
                  "| device | seconds per generation |", "|---|---:|", f"| {device} | {per_gen:.1f} |"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "sim_speed.md"
    if args.no_neural and out.is_file():  # keep the neural table of the last full run, marked as such
        old = out.read_text()
        if "Neural family" in old:
            kept = old[old.index("Neural family"):].rstrip("\n").split("\n")
            lines += ["", "(Neural-family table carried over from the last full run; `--no-neural` skips it.)", ""]
            lines += kept
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
