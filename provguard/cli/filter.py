"""``provguard filter SOURCE``: scan -> score -> decide -> act, into a resumable run directory."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from provguard.cli.common import FdrLevel, emit_json, user_errors
from provguard.pipeline.engines import list_engines
from provguard.pipeline.fdr import DEFAULT_FDR
from provguard.watermark.image import list_image_watermarks


def _note(msg: str) -> None:
    click.echo(f"note: {msg}", err=True)


def _progress():
    """(on_total, on_items, close) callbacks driving a tqdm bar with items/s and an ETA on stderr."""
    from tqdm import tqdm

    bar = {"bar": None}

    def on_total(n):
        bar["bar"] = tqdm(total=n, desc="filter", unit="item", file=sys.stderr, leave=False, disable=None, smoothing=0.1)

    def on_items(n):
        if bar["bar"] is not None:
            bar["bar"].update(n)

    def close():
        if bar["bar"] is not None:
            bar["bar"].close()

    return on_total, on_items, close


@click.command("filter")
@click.argument("source_path", metavar="SOURCE", type=click.Path())
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Run directory [default: ./provguard-run-<source name>].")
@click.option("--format", "fmt", type=click.Choice(["auto", "folder", "parquet", "hf", "hf-imagefolder", "hf-text",
                                                    "hf-json", "webdataset"]), default="auto", show_default=True,
              help="What SOURCE is.")
@click.option("--text-field", default="text", show_default=True, help="Text field (jsonl, Parquet, datasets).")
@click.option("--image-field", default=None, help="Image column (Parquet, datasets) [default: detected].")
@click.option("--probe", default=None, metavar="FILE|none",
              help="Calibrated probe file; 'none' turns the classifier off. Default: $PROVGUARD_PROBE, else the "
                   "probe shipped with provguard.")
@click.option("--watermark", "watermarks", default="sd,provguard", show_default=True,
              help=f"Image watermarks to check ({', '.join(list_image_watermarks())}; keyed ones need a key), or 'none'.")
@click.option("--key", default=None, help="Watermark key (or $PROVGUARD_KEY; never printed).")
@click.option("--key-file", type=click.Path(dir_okay=False), default=None, help="File holding the watermark key.")
@click.option("--text-watermark", default="auto", show_default=True,
              help="Text watermark scheme (provguard-lefthash, ...), 'auto' (on when a key and the bundled tokenizer exist) or 'none'.")
@click.option("--tokenizer", default="smollm2-135m-instruct", show_default=True, help="Tokenizer for the text watermark.")
@click.option("--trust-anchors", type=click.Path(exists=True, dir_okay=False), default=None, help="PEM of trusted C2PA roots.")
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSON fusion policy (see the README's Detectors section).")
@click.option("--target-fpr", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=1e-3, show_default=True,
              help="Per-item false-positive rate for exact-p-value detectors (watermarks); with --fdr, a cap.")
@click.option("--fdr", type=FdrLevel(), default=DEFAULT_FDR, show_default=True,
              help="False discovery rate across the run for watermark evidence (Benjamini-Hochberg over every "
                   "watermark p-value; the expected number of false discoveries is in the summary), or 'off'.")
@click.option("--fdr-method", type=click.Choice(["bh", "by"]), default="bh", show_default=True,
              help="bh: Benjamini-Hochberg (independent or positively dependent p-values); by: Benjamini-Yekutieli (any dependence).")
@click.option("--reject-uncertain", is_flag=True, help="Reject items the evidence leaves uncertain (default: keep them).")
@click.option("--action", type=click.Choice(["report", "copy-kept", "move-rejected"]), default="report", show_default=True,
              help="report: touch nothing; copy-kept: copy kept files to --dest; move-rejected: quarantine rejected files (undo with `provguard restore`).")
@click.option("--dest", type=click.Path(file_okay=False), default=None, help="copy-kept target [default: RUN_DIR/kept].")
@click.option("--workers", type=click.IntRange(min=0), default=min(2, os.cpu_count() or 1), show_default=True,
              help="Decoding processes (0: decode in the main process).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--shard-size", type=click.IntRange(min=1), default=256, show_default=True, help="Items per resumable shard.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--engine", type=click.Choice(list_engines()), default="local", show_default=True,
              help="ray: Ray Data with actor pools (`pip install 'provguard[ray]'`; set RAY_ADDRESS for a cluster).")
@click.option("--resume/--no-resume", default=True, show_default=True, help="Continue an unfinished run in RUN_DIR.")
@click.option("--cascade/--no-cascade", default=True, show_default=True,
              help="Stop per item once decided (--no-cascade: every score for every item, so `decide` can change anything).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (run_dir, manifest, counts, ...).")
def filter_command(source_path, out, fmt, text_field, image_field, probe, watermarks, key, key_file, text_watermark,
                   tokenizer, trust_anchors, policy_file, target_fpr, fdr, fdr_method, reject_uncertain, action, dest, workers, batch_size,
                   shard_size, device, engine, resume, cascade, as_json):
    """Keep AI-generated items out of SOURCE: score every item, decide, write a run directory.

    The source is never modified unless --action move-rejected is given, and even then every move is
    journalled and undone by `provguard restore RUN_DIR`. A killed run continues where it stopped
    when the same command is repeated.

    \b
    Examples:
      provguard filter ./scraped --out runs/scraped
      provguard filter ./scraped --out runs/scraped --fdr 0.001 --fdr-method by
      provguard filter ./scraped --out runs/scraped --probe probe.safetensors --key-file k.txt --action move-rejected
      provguard filter data.parquet --text-field body --json
      provguard filter ./shards --format webdataset --engine ray
    """
    from provguard.keys import resolve_key
    from provguard.pipeline.config import RunConfig
    from provguard.pipeline.run import run_filter
    from provguard.pipeline.sources import open_source

    with user_errors():
        source = open_source(str(Path(source_path).absolute()), fmt, text_field, image_field)
    out = out or f"provguard-run-{Path(source_path).absolute().name}"
    on_total, on_items, close = _progress()
    with user_errors(cleanup=close):
        key_obj = resolve_key(key=key, key_file=key_file, required=False)
        config, notes = RunConfig.create(source, watermarks=watermarks, key=key_obj, probe=probe,
                                         text_watermark=text_watermark, tokenizer=tokenizer,
                                         trust_anchors=trust_anchors, policy=policy_file, target_fpr=target_fpr,
                                         skip_unkeyed=True, cascade=cascade, shard_size=shard_size,
                                         batch_size=batch_size, workers=workers, device=device, engine=engine)
        for n in notes:
            _note(n)
        result = run_filter(config, out, key=key_obj, source=source, notes=notes, action=action, resume=resume,
                            reject_uncertain=reject_uncertain, dest=dest, fdr=fdr, fdr_method=fdr_method,
                            on_total=on_total, on_items=on_items)
        from provguard.pipeline.report import write_report

        report = write_report(out)
    close()
    if as_json:
        emit_json({**result.to_json(), "report": str(report)})
    else:
        click.echo(result.summary)
        if result.action_result:
            click.echo(f"\n{action}: " + ", ".join(f"{k} {v}" for k, v in result.action_result.items()))
        click.echo(f"\nmanifest: {result.manifest}\nreport:   {report}")
    sys.exit(result.exit_code)
