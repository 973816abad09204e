"""Metadata scan cost per file: real photos from installed packages and files built like generator tools write them.

Run: ``.venv/bin/python -m benchmarks.metadata_speed`` (about a minute on 2 CPU cores). Writes
``benchmarks/results/metadata_speed.md``. Each figure is the best of ``--rounds`` rounds of the mean
over ``--calls`` scans of the same bytes (the file is in memory: disk time is not counted), so load from
other jobs on a shared machine inflates it less. Real photos: the MATE nature backgrounds
(``/usr/share/backgrounds/mate/nature``) and scikit-image's bundled data images.

``--baseline DIR`` also times an older ``containers.py`` + ``metadata.py`` pair kept in ``DIR``
(e.g. ``git show REV:detectors/metadata.py > DIR/metadata.py``), interleaved round by round with the
current code in the same process, so both columns see the same machine load.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

from provguard.detectors.metadata import scan_metadata
from tests import metadata_formats as F

RESULTS = Path(__file__).resolve().parent / "results"


def real_files() -> dict[str, bytes]:
    """Real photos shipped by installed packages: MATE nature JPEGs (Debian) and scikit-image's data folder."""
    files = {}
    for p in sorted(Path("/usr/share/backgrounds/mate/nature").glob("*.jpg")):
        files[f"mate/{p.name}"] = p.read_bytes()
    import skimage  # a dependency of provguard: its photos are always there

    for p in sorted((Path(skimage.__file__).parent / "data").iterdir()):
        if p.suffix in (".png", ".jpg"):
            files[f"skimage/{p.name}"] = p.read_bytes()
    return files


def built_files() -> dict[str, bytes]:
    """Files built as the tools write them (512x512 pixels unless noted)."""
    px3, px4 = F.rgb(1, 512, 3), F.rgb(1, 512, 4)
    return {
        "PNG RGB, no metadata": F.encode("PNG", px3),
        "PNG RGBA, no metadata (stealth probe)": F.encode("PNG", px4),
        "PNG + A1111 parameters": F.png({"parameters": F.A1111}, pixels=px3),
        "PNG + ComfyUI prompt/workflow": F.png({"prompt": '{"3": {"class_type": "KSampler", "inputs": {}}}',
                                                "workflow": '{"nodes": [], "links": []}'}, pixels=px3),
        "JPEG + A1111 UserComment (UTF-16)": F.encode("JPEG", px3, exif=F.exif(exif_ifd={0x9286: F.user_comment(F.A1111)})),
        "JPEG, no metadata": F.encode("JPEG", px3),
        "PNG RGBA + A1111 stealth (alpha, gzip)": F.stealth_png(F.A1111, "alpha", True, size=512),
        "PNG RGB + A1111 stealth (rgb, plain)": F.stealth_png(F.A1111, "rgb", False, size=512),
        "WebP lossless RGBA, no metadata (full decode)": F.encode("WEBP", px4, lossless=True),
        "WebP lossy, no metadata": F.encode("WEBP", px3, quality=80),
    }


def load_baseline(folder: Path):
    """``scan_metadata`` of the ``containers.py``/``metadata.py`` pair in ``folder``, loaded beside the current one."""
    names = [f"provguard.detectors.{m}" for m in ("containers", "metadata")]
    saved = {n: sys.modules.get(n) for n in names}
    try:
        for n in names:
            spec = importlib.util.spec_from_file_location(n, folder / f"{n.rsplit('.', 1)[1]}.py")
            mod = importlib.util.module_from_spec(spec)
            sys.modules[n] = mod
            spec.loader.exec_module(mod)
        return sys.modules[names[1]].scan_metadata
    finally:
        for n, mod in saved.items():
            sys.modules[n] = mod


def time_scans(data: bytes, calls: int, fns: list, rounds: int = 7) -> tuple[list[float], list[str]]:
    """Best-of-``rounds`` mean microseconds per call of each function in ``fns`` (rounds interleaved),
    and the reasons the first one returned."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            for _ in range(calls):
                if i:
                    fn(data)
                else:
                    first = fn(data)
            best[i] = min(best[i], (time.perf_counter() - t) / calls)
    return [b * 1e6 for b in best], [e.reason for e in first]


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=20, help="scans per timing round (default 20)")
    ap.add_argument("--rounds", type=int, default=7, help="timing rounds; the best is kept (default 7)")
    ap.add_argument("--baseline", type=Path, help="folder with an older containers.py + metadata.py to time beside")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write benchmarks/results/")
    args = ap.parse_args(argv)
    fns = [scan_metadata] + ([load_baseline(args.baseline)] if args.baseline else [])
    header = ["file", "KB", "scan µs"] + (["baseline µs", "baseline evidence"] if args.baseline else []) + ["evidence"]
    sections = []
    for title, files in (("Real photos", real_files()), ("Files built as generator tools write them", built_files())):
        rows, times = [], [[] for _ in fns]
        for name, data in files.items():
            us, reasons = time_scans(data, args.calls, fns, args.rounds)
            for t, u in zip(times, us):
                t.append(u)
            base = [f"{us[1]:.0f}", ", ".join(e.reason for e in fns[1](data)) or "-"] if args.baseline else []
            rows.append([name, f"{len(data) / 1e3:.0f}", f"{us[0]:.0f}"] + base + [", ".join(reasons) or "-"])
        summary = "".join(f"\n\n{label}: {len(t)} files, median {statistics.median(t):.0f} µs, max {max(t):.0f} µs per file."
                          for label, t in zip(("current", "baseline"), times) if t)
        sections.append(f"### {title}\n\n" + _table(header, rows) + (summary or "\n\n(no files found)"))
    text = "\n\n".join(sections) + "\n"
    print(text)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        cmd = "`.venv/bin/python -m benchmarks.metadata_speed" + (" --baseline DIR`" if args.baseline else "`")
        (RESULTS / "metadata_speed.md").write_text(f"<!-- written by {cmd} -->\n" + text)
    return text


if __name__ == "__main__":
    main()
