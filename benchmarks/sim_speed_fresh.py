"""Speed of the 1-D fresh-data loop with an idealised filter (issue 11's goals), against numpy anchors
timed in the same run:

* ``numpy per-chain loop``: one chain at a time, per-sample draws and a per-sample keep mask (notebook style);
* ``numpy batched sufficient statistics``: all chains at once, kept counts ``rng.binomial``, means
  ``rng.normal``, scatters ``rng.chisquare`` (the fastest plain-numpy way to run this loop);
* ``provguard engine``: ``run(SimConfig(...))`` on the fast path, ``--metrics fast``;
* ``provguard CLI, default metrics``: ``provguard simulate --dim 1 --chains 3000 -T 30 --filter-recall 0.9``
  end to end in a subprocess (start-up included), wall and CPU seconds.

Run: ``python -m benchmarks.sim_speed_fresh [--quick]``; writes ``benchmarks/results/sim_speed_fresh.md``.
Timings are best of ``--repeats``; on a shared machine the CPU seconds of the CLI run are the steadier figure.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from provguard.sim.config import SimConfig
from provguard.sim.engine import run

RESULTS = Path(__file__).parent / "results"
N_REAL, N_SYNTH, LAM, RECALL = 200, 800, 0.8, 0.9


def numpy_per_chain(chains: int, generations: int, seed: int = 0) -> None:
    """One chain at a time: draw samples, drop each synthetic one with probability RECALL, refit mean/var."""
    rng = np.random.default_rng(seed)
    for _ in range(chains):
        mu, var = 0.0, 1.0
        for t in range(1, generations + 1):
            x = rng.normal(0.0, 1.0, N_REAL)
            if t > 1:
                s = rng.normal(mu, np.sqrt(LAM * var), N_SYNTH)
                x = np.concatenate([x, s[rng.random(N_SYNTH) >= RECALL]])
            mu, var = x.mean(), x.var(ddof=1)


def numpy_batched_stats(chains: int, generations: int, seed: int = 0) -> np.ndarray:
    """All chains at once on sufficient statistics (exact in distribution); returns the final W2^2 ``[chains]``."""
    rng = np.random.default_rng(seed)
    mu, var = np.zeros(chains), np.ones(chains)
    for t in range(1, generations + 1):
        n = np.full(chains, float(N_REAL))
        m = rng.normal(0.0, 1.0, chains) / np.sqrt(n)
        sc = rng.chisquare(N_REAL - 1, chains)
        if t > 1:
            k = rng.binomial(N_SYNTH, 1.0 - RECALL, chains).astype(float)
            sd = np.sqrt(LAM * var)
            ms = mu + sd * rng.normal(0.0, 1.0, chains) / np.sqrt(np.maximum(k, 1.0))
            ss = LAM * var * rng.chisquare(np.maximum(k - 1.0, 1.0)) * (k > 1)
            tot = n + k
            mean = (n * m + k * ms) / tot
            sc = sc + ss + n * (m - mean) ** 2 + k * (ms - mean) ** 2
            m, n = mean, tot
        mu, var = m, sc / (n - 1.0)
    return mu ** 2 + (np.sqrt(var) - 1.0) ** 2


def best(fn, repeats: int) -> float:
    out = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def cli_run(chains: int, generations: int) -> tuple[float, float]:
    """Wall and CPU seconds of the CLI command in a fresh process (start-up included)."""
    cmd = [sys.executable, "-c", "from provguard.cli import main; main()", "simulate", "--dim", "1", "--chains",
           str(chains), "-T", str(generations), "--filter-recall", str(RECALL)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    chains, gens = (10000, 5) if args.quick else (100000, 20)
    per_chain = 20 if args.quick else 200
    cfg = SimConfig(loop="fresh", dim=1, n_real=N_REAL, n_synth=N_SYNTH, lam=LAM, filter_recall=RECALL,
                    generations=gens, chains=chains, metrics="fast")
    run(cfg.replace(chains=100, generations=2))  # warm-up
    rows = []
    t = best(lambda: numpy_per_chain(per_chain, gens), args.repeats)
    rows.append(("numpy per-chain loop (per-sample draws)", per_chain, per_chain * gens / t))
    t = best(lambda: numpy_batched_stats(chains, gens), args.repeats)
    rows.append(("numpy batched sufficient statistics", chains, chains * gens / t))
    t = best(lambda: run(cfg), args.repeats)
    rows.append(("provguard engine (fast path, binomial kept counts, --metrics fast)", chains, chains * gens / t))
    ours = rows[-1][2]
    load = os.getloadavg()[0]
    lines = ["# Simulator speed: the 1-D fresh loop with a filter", "",
             f"Command: `python -m benchmarks.sim_speed_fresh{' --quick' if args.quick else ''}`; cpu, 1 torch "
             f"thread; torch {torch.__version__}; load average {load:.1f} on {os.cpu_count()} cores at the end "
             "(shared machine).", "",
             f"Fresh loop, d=1, n_real={N_REAL}, n_synth={N_SYNTH}, lambda={LAM}, idealised filter recall {RECALL}, "
             f"{gens} generations; best of {args.repeats}.", "",
             "| implementation | chains | chain-generations/s | provguard engine vs this |", "|---|---:|---:|---:|"]
    lines += [f"| {label} | {c:,} | {rate:,.0f} | {ours / rate:.2f}x |" for label, c, rate in rows]
    if not args.quick:
        wall, cpu = cli_run(3000, 30)
        lines += ["", "`provguard simulate --dim 1 --chains 3000 -T 30 --filter-recall 0.9` (default metrics: "
                  "closed-form on all 6,000 chains of both arms, FD/k-NN/KID on 64 per arm), start-up included: "
                  f"**{wall:.1f} s wall, {cpu:.1f} s CPU** (goal: under 30 s)."]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sim_speed_fresh.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
