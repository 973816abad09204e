"""``provguard report``: one self-contained HTML page (no scripts, no network: inline SVG and data URIs).

Sections: counts by verdict / decision / reason / "not applicable" per detector, and how watermark
evidence was decided across the run (cutoff, expected false discoveries); per-detector score histograms with the decision
threshold drawn (watermarks on a ``-log10 p`` axis with the alpha line; the probe on its decision
value with its threshold); thumbnails of rejected images grouped by reason; the error list.
"""
from __future__ import annotations

import base64
import html
import io
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from provguard.pipeline.rundir import RunDir, read_json, write_text
from provguard.pipeline.summary import not_applicable_rows, watermark_tests_line

THUMB = 128
MAX_THUMBS_PER_REASON = 24
_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f3f3f3}.grid{display:flex;flex-wrap:wrap;gap:8px}
figure{margin:0;width:140px;font-size:11px;word-break:break-all}img{max-width:128px;max-height:128px;display:block}
svg{background:#fafafa;border:1px solid #ddd;margin:4px}"""


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def histogram_svg(values: Sequence[float], threshold: float | None, label: str, bins: int = 30,
                  width: int = 420, height: int = 150) -> str:
    """An inline SVG histogram of finite ``values`` with an optional red threshold line."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return ""
    lo, hi = min(vals + ([threshold] if threshold is not None else [])), max(vals + ([threshold] if threshold is not None else []))
    if hi <= lo:
        hi = lo + 1.0
    counts = [0] * bins
    for v in vals:
        counts[min(bins - 1, int((v - lo) / (hi - lo) * bins))] += 1
    top, pad = max(counts), 20
    bw = (width - 2 * pad) / bins
    bars = "".join(f'<rect x="{pad + i * bw:.1f}" y="{height - pad - c / top * (height - 2 * pad):.1f}" width="{bw - 1:.1f}" '
                   f'height="{c / top * (height - 2 * pad):.1f}" fill="#4a7ab5"/>' for i, c in enumerate(counts) if c)
    line = ""
    if threshold is not None and math.isfinite(threshold):
        x = pad + (threshold - lo) / (hi - lo) * (width - 2 * pad)
        line = (f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{pad / 2}" y2="{height - pad}" stroke="red" stroke-width="2"/>'
                f'<text x="{x + 3:.1f}" y="{pad}" font-size="10" fill="red">threshold {threshold:.3g}</text>')
    axis = (f'<text x="{pad}" y="{height - 4}" font-size="10">{lo:.3g}</text>'
            f'<text x="{width - pad - 30}" y="{height - 4}" font-size="10">{hi:.3g}</text>'
            f'<text x="{width / 2 - 60:.0f}" y="12" font-size="11">{html.escape(label)} (n={len(vals)})</text>')
    return f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">{bars}{line}{axis}</svg>'


def thumbnail(data: bytes) -> str | None:
    """A JPEG data URI of at most THUMB px, or None if the bytes do not decode."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (THUMB * 2, THUMB * 2))
            img = img.convert("RGB")
            img.thumbnail((THUMB, THUMB))
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=80)
    except Exception:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _histograms(rows: list[dict], card: dict) -> str:
    out = []
    alpha = card.get("watermark_tests", {}).get("cutoff") or card.get("thresholds", {}).get("watermark_alpha")
    for det in card.get("detectors", []):
        name = det["name"]
        if name.endswith("-watermark"):
            vals = [-math.log10(max(r[f"{name}.p_value"], 1e-300)) for r in rows if r.get(f"{name}.p_value") is not None]
            out.append(histogram_svg(vals, -math.log10(alpha) if alpha else None, f"{name}: -log10 p-value"))
        elif name == "clip-probe":
            vals = [r[f"{name}.score"] for r in rows if r.get(f"{name}.score") is not None]
            out.append(histogram_svg(vals, card.get("thresholds", {}).get("classifier"), f"{name}: decision value"))
            out.append("<p>Above the line: evidence of synthesis, at the false-positive rate the probe was calibrated "
                       "for. Below it: <em>no evidence of synthesis</em>, which is not proof of a real photo "
                       "(a generator unlike the probe's training data passes).</p>")
    return "".join(out) or "<p>No detector produced numeric scores (metadata only).</p>"


def _thumbnails(rows: list[dict], card: dict) -> str:
    from provguard.pipeline.shards import ShardStore
    from provguard.pipeline.sources import source_from_spec

    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["decision"] == "reject" and r["media_type"] == "image" and len(groups[r["reasons"][0]]) < MAX_THUMBS_PER_REASON:
            groups[r["reasons"][0]].append(r)
    if not groups:
        return "<p>No rejected images.</p>"
    wanted = {r["index"] for g in groups.values() for r in g}
    data: dict[int, bytes] = {}
    try:
        run = RunDir(card["run_dir"])
        plan = [it for it in ShardStore(run, 1, "").read_plan() if it.index in wanted]
        quarantined = {}
        if run.journal.exists():
            from provguard.pipeline.actions import Journal

            quarantined = {k: e for k, e in Journal(run.journal).state().items() if e.get("op") == "moved"}
        for p in source_from_spec(card["source"]).load(plan):
            if p.data is None and p.item.key in quarantined:
                held = Path(run.quarantine, bytes.fromhex(quarantined[p.item.key]["quarantine_hex"]).decode("utf-8", "surrogateescape"))
                p.data = held.read_bytes() if held.exists() else None
            if p.data is not None:
                data[p.item.index] = p.data
    except Exception as exc:  # the source moved away: the page still renders, without pictures
        return f"<p>Thumbnails unavailable ({html.escape(str(exc))}).</p>"
    parts = []
    for reason, group in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        figs = []
        for r in group:
            uri = thumbnail(data[r["index"]]) if r["index"] in data else None
            img = f'<img src="{uri}" alt="">' if uri else "<div>(no preview)</div>"
            figs.append(f"<figure>{img}<figcaption>{html.escape(r['key'])}</figcaption></figure>")
        parts.append(f"<h3>{html.escape(reason)} ({len(group)} shown)</h3><div class='grid'>{''.join(figs)}</div>")
    return "".join(parts)


def render_html(run: RunDir) -> str:
    """The report page for a finished run directory."""
    from provguard.pipeline.manifest import read_manifest

    card = read_json(run.card)
    table = read_manifest(run.manifest)
    rows = table.drop_columns(["evidence", "path_raw"]).to_pylist()
    c = card["counts"]
    errors = [[r["key"], r["error"]] for r in rows if r["error"]]
    sections = [
        f"<h1>provguard run report</h1><p>{html.escape(str(run.root))} &middot; provguard {html.escape(card['provguard_version'])}"
        f" &middot; {len(rows)} items &middot; detectors: {html.escape(', '.join(d['name'] for d in card['detectors']))}</p>",
        "<h2>Counts</h2>" + _table(sorted(c["verdict"].items()), ["verdict", "items"])
        + _table(sorted(c["decision"].items()), ["decision", "items"])
        + (_table(sorted(c["reason"].items(), key=lambda kv: -kv[1]), ["rejected because", "items"]) if c["reason"] else "")
        + (_table(not_applicable_rows(card), ["not applicable (detector)", "items"]) if not_applicable_rows(card) else "")
        + "".join(f"<p>{html.escape(line)}</p>" for line in (watermark_tests_line(card) or "").splitlines()),
        "<h2>Scores</h2>" + _histograms(rows, card),
        "<h2>Rejected images by reason</h2>" + _thumbnails(rows, card),
        f"<h2>Errors ({len(errors)})</h2>" + (_table(errors, ["item", "error"]) if errors else "<p>None.</p>"),
    ]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>provguard report</title><style>{_CSS}</style>"
            f"</head><body>{''.join(sections)}</body></html>")


def write_report(run_dir: str | Path) -> Path:
    """Write ``RUN_DIR/report.html`` and return its path."""
    run = RunDir(run_dir).require()
    write_text(run.report, render_html(run))
    return run.report
