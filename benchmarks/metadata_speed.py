"""Metadata scan cost per file: real photos from installed packages and files built like generator tools write them.

Run: ``.venv/bin/python -m benchmarks.metadata_speed`` (about a minute on 2 CPU cores). Writes
``benchmarks/results/metadata_speed.md``. Each figure is the best of 5 rounds of the mean over
``--calls`` scans of the same bytes (the file is in memory: disk time is not counted), so load from
other jobs on a shared machine inflates it less. Real photos: the MATE nature backgrounds
(``/usr/share/backgrounds/mate/nature``) and scikit-image's bundled data images.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from provguard.detectors.metadata import scan_metadata
from tests import metadata_formats as F

RESULTS = Path(__file__).resolve().parent / "results"


def real_files() -> dict[str, bytes]:
    """Real photos and images shipped by installed packages (missing ones are skipped)."""
    files = {}
    for p in sorted(Path("/usr/share/backgrounds/mate/nature").glob("*.jpg")):
        files[f"mate/{p.name}"] = p.read_bytes()
    try:
        import skimage

        for p in sorted((Path(skimage.__file__).parent / "data").iterdir()):
            if p.suffix in (".png", ".jpg"):
                files[f"skimage/{p.name}"] = p.read_bytes()
    except ImportError:
        pass
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


def time_scan(data: bytes, calls: int) -> tuple[float, list[str]]:
    """Best-of-5 mean microseconds per :func:`scan_metadata` call, and the reasons it returned."""
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(calls):
            ev = scan_metadata(data)
        best = min(best, (time.perf_counter() - t) / calls)
    return best * 1e6, [e.reason for e in ev]


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=50, help="scans per timing round (default 50)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write benchmarks/results/")
    args = ap.parse_args(argv)
    sections = []
    for title, files in (("Real photos", real_files()), ("Files built as generator tools write them", built_files())):
        rows, times = [], []
        for name, data in files.items():
            us, reasons = time_scan(data, args.calls)
            times.append(us)
            rows.append([name, f"{len(data) / 1e3:.0f}", f"{us:.0f}", ", ".join(reasons) or "-"])
        summary = (f"\n\n{len(times)} files: median {statistics.median(times):.0f} µs, max {max(times):.0f} µs per file."
                   if times else "\n\n(no files found)")
        sections.append(f"### {title}\n\n" + _table(["file", "KB", "scan µs", "evidence"], rows) + summary)
    text = "\n\n".join(sections) + "\n"
    print(text)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "metadata_speed.md").write_text("<!-- written by `.venv/bin/python -m benchmarks.metadata_speed` -->\n" + text)
    return text


if __name__ == "__main__":
    main()
