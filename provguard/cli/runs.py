"""Commands on a finished run directory: ``decide`` (re-decide from stored scores), ``restore``, ``report``."""
from __future__ import annotations

import sys

import click

from provguard.cli.common import EXIT_OK, FdrLevel, emit_json, user_errors


@click.command("decide")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--target-fpr", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="New false-positive rate for watermark p-values (and for --calibrate-on).")
@click.option("--fdr", type=FdrLevel(), default="keep", show_default=False,
              help="New false discovery rate across the run for watermark evidence, or 'off' (per-item "
                   "--target-fpr) [default: the run's].")
@click.option("--fdr-method", type=click.Choice(["bh", "by"]), default=None, help="bh or by [default: the run's].")
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSON fusion policy replacing the run's.")
@click.option("--reject-uncertain/--keep-uncertain", default=None, help="What to do with uncertain items.")
@click.option("--classifier-threshold", type=float, default=None, help="A new threshold on the probe's decision value.")
@click.option("--calibrate-on", type=click.Path(exists=True, dir_okay=False), default=None,
              help="File of item keys known to be real (one per line): re-calibrate the probe threshold at "
                   "--target-fpr from their stored scores (split-conformal).")
@click.option("--json", "as_json", is_flag=True, help="Print counts as JSON.")
def decide(run_dir, target_fpr, fdr, fdr_method, policy_file, reject_uncertain, classifier_threshold, calibrate_on, as_json):
    """Re-decide a run from its stored scores: no model is loaded, nothing is re-scored.

    \b
    Examples:
      provguard decide runs/scraped --target-fpr 1e-4
      provguard decide runs/scraped --fdr 0.001
      provguard decide runs/scraped --fdr off --target-fpr 1e-6
      provguard decide runs/scraped --reject-uncertain --json
      provguard decide runs/scraped --target-fpr 0.01 --calibrate-on known_real_keys.txt
    """
    from pathlib import Path

    from provguard.pipeline.report import write_report
    from provguard.pipeline.run import redecide

    keys = [k for k in Path(calibrate_on).read_text(encoding="utf-8").splitlines() if k.strip()] if calibrate_on else None
    with user_errors():
        result = redecide(run_dir, target_fpr=target_fpr, policy_file=policy_file, reject_uncertain=reject_uncertain,
                          classifier_threshold=classifier_threshold, calibrate_on=keys, fdr=fdr, fdr_method=fdr_method)
        report = write_report(run_dir)
    if as_json:
        emit_json({**result.to_json(), "report": str(report)})
    else:
        click.echo(result.summary)
        click.echo(f"\nmanifest: {result.manifest}\nreport:   {report}")
    sys.exit(EXIT_OK)


@click.command("restore")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True)
def restore(run_dir, as_json):
    """Put every file that `filter --action move-rejected` quarantined back where it was, byte-identical.

    \b
    Example:
      provguard restore runs/scraped
    """
    from provguard.pipeline.run import restore_run

    with user_errors():
        result = restore_run(run_dir)
    if as_json:
        emit_json(result)
    else:
        click.echo(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in result.items()))
    sys.exit(EXIT_OK if not result.get("blocked_by_existing_file") else 1)


@click.command("report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
def report(run_dir):
    """Write RUN_DIR/report.html: one self-contained page (counts, histograms, thumbnails, errors).

    \b
    Example:
      provguard report runs/scraped && xdg-open runs/scraped/report.html
    """
    from provguard.pipeline.report import write_report

    with user_errors():
        click.echo(write_report(run_dir))
