"""``provguard scan``: per-file verdicts from metadata, watermarks and (when calibrated) the CLIP probe."""
from __future__ import annotations

import sys

import click

from provguard.cli.common import EXIT_OK, EXIT_SOME_FAILED, IMAGE_SUFFIXES, discover_files, emit_json, fail, format_table
from provguard.errors import ProvguardError

def _note(msg: str) -> None:
    click.echo(f"note: {msg}", err=True)


def _detectors(probe_path, watermarks, key_file, trust_anchors):
    """Build the detector list; returns (detectors, notes about what did not run and why)."""
    from provguard.detectors.metadata import MetadataDetector

    dets, notes = [MetadataDetector(trust_anchors)], []
    for method in watermarks:
        try:
            from provguard.detectors.watermarks import ImageWatermarkDetector
            from provguard.keys import resolve_key

            key = None if method == "sd" else resolve_key(key_file=key_file, required=False)
            if method != "sd" and key is None:
                notes.append(f"{method} watermark skipped: it needs --key-file (or $PROVGUARD_KEY)")
                continue
            dets.append(ImageWatermarkDetector(method, key=key))
        except (ImportError, OSError, ValueError, ProvguardError) as exc:
            notes.append(f"{method} watermark unavailable ({exc})")
    from provguard.detectors.default_probe import resolve_probe

    probe_path, source = resolve_probe(probe_path)
    if probe_path is None:
        notes.append("classifier off (--probe none)")
        return dets, notes
    from provguard.detectors.classifier import ProbeDetector, load_probe_and_tower
    from provguard.detectors.embedding import EmbeddingCache

    probe, tower = load_probe_and_tower(probe_path)
    if not probe.calibration_:
        raise ProvguardError(f"the probe {probe_path} (from {source}) is not calibrated: run `provguard probe calibrate` first")
    notes.append(f"classifier: {'the default probe' if source == 'default' else probe_path} ({source}), "
                 f"threshold {probe.calibration_['threshold']:.3f} at target FPR {probe.calibration_['target_fpr']:g}")
    dets.append(ProbeDetector(probe, tower, EmbeddingCache()))
    return dets, notes


def _shown_verdict(record: dict) -> str:
    """The verdict as a person should read it: the classifier clearing an item is no proof of a photo."""
    if record["verdict"] == "real" and record["tier"] == "classifier":
        return "no evidence of synthesis"
    return record["verdict"]


def _record(path, rel, v) -> dict:
    errors = [e.detail.get("error") for e in v.evidence if e.reason.endswith(":error") and e.detail.get("error")]
    return {"path": str(path), "name": str(rel), "verdict": v.verdict, "score": v.score, "reasons": v.reasons,
            "tier": v.tier, "evidence": [e.to_dict() for e in v.evidence], "detectors_run": v.detectors_run,
            "error": errors[0] if errors else None}


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--probe", "probe_path", default=None, metavar="FILE|none",
              help="Calibrated probe file; 'none' turns the classifier off. Default: $PROVGUARD_PROBE, else the "
                   "probe shipped with provguard.")
@click.option("--watermark", "watermarks", default="sd", show_default=True,
              help="Comma-separated image watermarks to check (sd, provguard), or 'none'.")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False), default=None, help="Key for the provguard watermark.")
@click.option("--trust-anchors", type=click.Path(exists=True, dir_okay=False), default=None,
              help="PEM file of trusted C2PA root certificates (otherwise valid signatures are 'untrusted').")
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSON fusion policy (fields: order, synthetic_min_strength, real_min_strength, watermark_alpha, "
                   "use_unsigned_metadata, classifier_can_clear).")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Files per cascade batch.")
@click.option("--json", "as_json", is_flag=True, help="One JSON record per file.")
def scan(inputs, probe_path, watermarks, key_file, trust_anchors, policy_file, batch_size, as_json):
    """Say, per file, whether it is synthetic, real or uncertain, and why.

    Evidence is weighed in order: signed C2PA, watermarks (exact p-values), unsigned metadata, the
    calibrated classifier; cheap checks run first and the classifier only where they leave the
    question open. Missing metadata is never taken as "real".

    \b
    Examples:
      provguard scan downloads/
      provguard scan --probe probe.safetensors --json images/ > verdicts.json
      provguard scan --watermark sd,provguard --key-file k.txt --trust-anchors roots.pem photo.jpg
    """
    from provguard.detectors.evidence import Item
    from provguard.detectors.fusion import Policy, cascade

    try:
        policy = Policy.from_file(policy_file) if policy_file else Policy()
        wm = [] if watermarks.strip() == "none" else [w.strip() for w in watermarks.split(",") if w.strip()]
        dets, notes = _detectors(probe_path, wm, key_file, trust_anchors)
    except ProvguardError as exc:
        fail(str(exc))
    for n in notes:
        _note(n)
    files = discover_files(inputs, IMAGE_SUFFIXES)
    if not files:
        fail("no image files found in the inputs")
    records = []
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        items = []
        for path, rel in chunk:
            try:
                items.append(Item(path=path, data=path.read_bytes(), name=str(rel)))
            except OSError as exc:
                items.append(Item(path=path, data=b"", name=str(rel)))
                _note(f"{rel}: cannot read ({exc})")
        for (path, rel), v in zip(chunk, cascade(items, dets, policy)):
            records.append(_record(path, rel, v))
    if as_json:
        emit_json(records)
    else:
        rows = [[r["name"], _shown_verdict(r), "" if r["score"] is None else f"{r['score']:.3f}",
                 ", ".join(r["reasons"][:3]) + (" ..." if len(r["reasons"]) > 3 else ""), r["error"] or ""] for r in records]
        click.echo(format_table(rows, ["file", "verdict", "score", "reasons", "error"]))
        click.echo(f"detectors: {', '.join(d.name for d in dets)}", err=True)
    sys.exit(EXIT_SOME_FAILED if any(r["error"] for r in records) else EXIT_OK)
