"""``provguard scan``: per-file verdicts from metadata, watermarks and (when calibrated) the CLIP probe."""
from __future__ import annotations

import sys

import click

from provguard.watermark.image import list_image_watermarks
from provguard.cli.common import (EXIT_OK, EXIT_SOME_FAILED, IMAGE_SUFFIXES, discover_files, emit_json, fail,
                                  format_table, user_errors)

def _note(msg: str) -> None:
    click.echo(f"note: {msg}", err=True)


def _classifier_note(config, detectors) -> str | None:
    """Which probe the classifier uses and at what threshold (None when the classifier is off)."""
    cal = detectors.info.get("probe_calibration")
    if config.probe is None or not cal:
        return None
    where = "the default probe" if config.probe.source == "default" else config.probe.path
    return (f"classifier: {where} ({config.probe.source}), threshold {cal['threshold']:.3f} at target FPR "
            f"{cal['target_fpr']:g}")


def _meaning(verdict: str, tier: str | None) -> str:
    """The verdict as a person should read it: the classifier clearing an item is no proof of a photo."""
    return "no evidence of synthesis" if verdict == "real" and tier == "classifier" else verdict


def _record(path, rel, v) -> dict:
    errors = [e.detail.get("error") for e in v.evidence if e.reason.endswith(":error") and e.detail.get("error")]
    return {"path": str(path), "name": str(rel), "verdict": v.verdict, "meaning": _meaning(v.verdict, v.tier),
            "score": v.score, "reasons": v.reasons, "tier": v.tier, "evidence": [e.to_dict() for e in v.evidence],
            "detectors_run": v.detectors_run, "error": errors[0] if errors else None}


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--probe", "probe_path", default=None, metavar="FILE|none",
              help="Calibrated probe file; 'none' turns the classifier off. Default: $PROVGUARD_PROBE, else the "
                   "probe shipped with provguard.")
@click.option("--watermark", "watermarks", default="sd", show_default=True,
              help=f"Comma-separated image watermarks to check ({', '.join(list_image_watermarks())}), or 'none'.")
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
    from provguard.detectors.fusion import cascade
    from provguard.keys import resolve_key
    from provguard.pipeline.config import RunConfig
    from provguard.pipeline.detector_set import build_detectors

    with user_errors():
        key = resolve_key(key_file=key_file, required=False)
        # the classifier embeds 16 images per batch, as ProbeDetector does by default
        config, notes = RunConfig.create(None, watermarks=watermarks, key=key, probe=probe_path,
                                         trust_anchors=trust_anchors, policy=policy_file, skip_unkeyed=True,
                                         batch_size=16)
        detectors = build_detectors(config, key)
    notes.append(_classifier_note(config, detectors))
    for n in notes:
        if n:
            _note(n)
    dets = [d.inner for d in detectors.image]
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
        for (path, rel), v in zip(chunk, cascade(items, dets, config.policy)):
            records.append(_record(path, rel, v))
    if as_json:
        emit_json(records)
    else:
        rows = [[r["name"], r["meaning"], "" if r["score"] is None else f"{r['score']:.3f}",
                 ", ".join(r["reasons"][:3]) + (" ..." if len(r["reasons"]) > 3 else ""), r["error"] or ""] for r in records]
        click.echo(format_table(rows, ["file", "verdict", "score", "reasons", "error"]))
        click.echo(f"detectors: {', '.join(d.name for d in dets)}", err=True)
    sys.exit(EXIT_SOME_FAILED if any(r["error"] for r in records) else EXIT_OK)
