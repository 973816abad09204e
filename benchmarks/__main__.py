"""Run every benchmark, or the ones named: ``python -m benchmarks [NAME ...]`` (``make bench``).

Each runs in its own process with the arguments its README row uses, and writes its tables to
``benchmarks/results/``. A failure does not stop the others; the exit status is 1 when any failed.
The classifier studies need the genimage-train corpus beside the checkout and say so (exit 2) when it
is absent: counted as skipped, not failed. The whole set takes hours on 2 cores.
"""
from __future__ import annotations

import subprocess
import sys
import time

# name -> extra arguments, in the order the README's table lists them
BENCHMARKS = {
    "image_watermarks": [], "text_watermark": [], "detectors_bench": [], "metadata_speed": [],
    "pipeline_throughput": [], "sim_speed": [], "sd_decisions": [], "probe_selection": [],
    "native_crops": [], "probe_views": [], "classifier_speed": ["--n", "96"],
    "sim_speed_fresh": ["--repeats", "2"],
}
NEEDS_CORPUS_EXIT = 2


def main(argv: list[str] | None = None) -> int:
    names = list(sys.argv[1:] if argv is None else argv) or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    outcome = {}
    for name in names:
        t0 = time.time()
        print(f"== benchmarks.{name}", flush=True)
        rc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *BENCHMARKS[name]]).returncode
        outcome[name] = "ok" if rc == 0 else "skipped (no corpus)" if rc == NEEDS_CORPUS_EXIT else f"failed (exit {rc})"
        print(f"== benchmarks.{name}: {outcome[name]} in {time.time() - t0:.0f} s", flush=True)
    for name, what in outcome.items():
        print(f"{name:22s} {what}")
    return 1 if any(w.startswith("failed") for w in outcome.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
