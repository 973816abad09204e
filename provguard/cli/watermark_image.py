"""``provguard watermark embed`` and ``provguard watermark detect`` for images."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from provguard.cli.common import (EXIT_OK, EXIT_SOME_FAILED, IMAGE_SUFFIXES, discover_files,
                                  emit_json, fail, format_table, progress, user_errors)
from provguard.errors import BadArgument, InputError, NotApplicable, ProvguardError
from provguard.watermark.image import list_image_watermarks

BATCH = 16  # images decoded and scored together


def _key_options(f):
    f = click.option("--key-file", type=click.Path(dir_okay=False), default=None,
                     help="File holding the secret key (bytes; trailing newline ignored).")(f)
    f = click.option("--key", default=None, metavar="KEY",
                     help="Secret key for keyed methods (or set $PROVGUARD_KEY, or use --key-file).")(f)
    return f


def _load_batches(files, label: str, show: bool):
    """Yield lists of ``(path, rel, image_or_None, error_or_None)`` of at most BATCH files."""
    from provguard.imaging.io import load_image

    batch = []
    for path, rel in progress(files, len(files), label, show):
        try:
            batch.append((path, rel, load_image(path), None))
        except InputError as exc:
            batch.append((path, rel, None, str(exc)))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@click.command()
@click.option("--method", type=click.Choice(list_image_watermarks()), required=True, help="Watermark to embed.")
@_key_options
@click.option("--payload", default=None,
              help="provguard: up to 48 bits as hex (0xC0FFEE); sd: sdxl (default), sd1 or sd2.")
@click.option("--strength", type=float, default=41.0, show_default=True,
              help="provguard: target PSNR in dB (higher = weaker, less visible).")
@click.option("--sd-pipeline", type=click.Choice(["compvis", "stability", "diffusers"]), default=None,
              help="sd: reproduce this generator's pixel path (default: the payload's own).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Output folder; each file keeps its name relative to its input folder.")
@click.option("--overwrite", is_flag=True, help="Replace files that already exist under --out.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON record per file.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
def embed(method, key, key_file, payload, strength, sd_pipeline, out_dir, overwrite, as_json, inputs):
    """Watermark images (files or folders) into --out; inputs are never modified.

    \b
    Examples:
      provguard watermark embed --method provguard --key-file k.txt --payload 0xC0FFEE photos/ --out marked/
      provguard watermark embed --method sd --payload sdxl photo.png --out marked/
    """
    from provguard.imaging.io import save_image
    from provguard.keys import resolve_key
    from provguard.watermark.image import create_image_watermark

    with user_errors(fatal=(ValueError,)):
        if method == "provguard":
            wm = create_image_watermark("provguard", key=resolve_key(key, key_file), target_psnr=strength)
            options = {"payload": payload}
        else:
            wm = create_image_watermark("sd")
            options = {"payload": payload or "sdxl", "pixel_path": sd_pipeline}
        from provguard.watermark.image.keyed import payload_to_bits
        if method == "provguard":
            payload_to_bits(payload)  # validate once, before any work
        elif options["payload"] not in ("sdxl", "sd1", "sd2"):
            raise BadArgument(f"{{name}} {payload!r} is not an SD payload: use sdxl, sd1 or sd2", "payload")
    files = discover_files(inputs, IMAGE_SUFFIXES)
    if not files:
        fail("no image files found in the inputs (looked for " + ", ".join(sorted(IMAGE_SUFFIXES)) + ")")
    out_root = Path(out_dir)
    records = []
    for batch in _load_batches(files, "embed", not as_json):
        todo = []
        for path, rel, img, error in batch:
            target = out_root / rel
            if error is None and target.resolve() == path:
                error = f"{path}: --out would overwrite the input; choose another --out folder"
            elif error is None and target.exists() and not overwrite:
                error = f"{target} exists; pass --overwrite to replace it"
            if error is None:
                try:
                    wm.check_size(img)
                except InputError as exc:
                    error = f"{path}: {exc}"
            if error is not None:
                records.append({"path": str(path), "method": method, "output": None, "error": error})
            else:
                todo.append((path, rel, img))
        if todo:
            marked = wm.embed([img for _, _, img in todo], **options)
            for (path, rel, img), m in zip(todo, marked):
                written = save_image(m, out_root / rel)
                psnr = _psnr(img, m)
                records.append({"path": str(path), "method": method, "output": str(written),
                                "psnr_db": round(psnr, 2), "error": None})
    _report(records, as_json, ["path", "output", "psnr_db", "error"])
    sys.exit(EXIT_SOME_FAILED if any(r["error"] for r in records) else EXIT_OK)


def _psnr(a, b) -> float:
    import numpy as np

    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@click.command()
@click.option("--method", type=click.Choice([*list_image_watermarks(), "all"]), default="all", show_default=True,
              help="Which watermark to look for (all = sd, plus provguard when a key is given).")
@_key_options
@click.option("--fpr", type=float, default=1e-3, show_default=True,
              help="False-positive rate for the detected/not-detected decision.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list with one record per file and method.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
def detect(method, key, key_file, fpr, as_json, inputs):
    """Look for watermarks in images (files or folders); report p-values and decisions.

    \b
    Examples:
      provguard watermark detect --method sd scraped/
      provguard watermark detect --method all --key-file k.txt --fpr 1e-3 --json marked/
    """
    from provguard.keys import resolve_key
    from provguard.watermark.image import create_image_watermark
    from provguard.watermark.image.base import check_fpr

    with user_errors(fatal=(ValueError,)):
        check_fpr(fpr)
        detectors = []
        if method in ("sd", "all"):
            detectors.append(create_image_watermark("sd"))
        if method == "provguard" or method == "all":
            resolved = resolve_key(key, key_file, required=method == "provguard")
            if resolved is not None:
                detectors.append(create_image_watermark("provguard", key=resolved))
            else:
                click.echo("note: no key given, so only the public sd watermark is checked "
                           "(pass --key/--key-file or set $PROVGUARD_KEY for provguard)", err=True)
    files = discover_files(inputs, IMAGE_SUFFIXES)
    if not files:
        fail("no image files found in the inputs (looked for " + ", ".join(sorted(IMAGE_SUFFIXES)) + ")")
    records = []
    for batch in _load_batches(files, "detect", not as_json):
        for wm in detectors:
            todo = []
            for path, _rel, img, error in batch:
                if error is None:
                    try:
                        wm.check_readable(img)
                        todo.append((path, img))
                        continue
                    except NotApplicable as exc:  # fine file, too small for this method: not a failure
                        records.append(_detect_record(path, wm.name, None, None, not_applicable=str(exc)))
                        continue
                    except InputError as exc:
                        error = f"{path}: {exc}"
                records.append(_detect_record(path, wm.name, None, error))
            if todo:
                results = wm.detect([img for _, img in todo], fpr=fpr)
                records += [_detect_record(path, wm.name, res, None) for (path, _img), res in zip(todo, results)]
    _report(records, as_json, ["path", "method", "detected", "p_value", "bits", "payload", "error"])
    sys.exit(EXIT_SOME_FAILED if any(r["error"] for r in records) else EXIT_OK)


def _detect_record(path, method, result, error, not_applicable: str | None = None) -> dict:
    """One output row; ``not_applicable`` (why the method cannot read this fine file) is not an error."""
    if result is None:
        return {"path": str(path), "method": method, "detected": None, "p_value": None, "statistic": None,
                "bits_matched": None, "bits_total": None, "payload": None, "detail": {}, "error": error,
                **({"not_applicable": not_applicable} if not_applicable else {})}
    d = result.to_dict()
    return {"path": str(path), **d, "error": None}


def _report(records, as_json: bool, columns) -> None:
    if as_json:
        emit_json(records)
        return
    rows = []
    for r in records:
        row = []
        for c in columns:
            if c == "bits":
                row.append(f"{r['bits_matched']}/{r['bits_total']}" if r.get("bits_matched") is not None else "")
            elif c == "p_value" and r.get("p_value") is not None:
                row.append(f"{r['p_value']:.3g}")
            elif c == "detected" and r.get("detected") is not None:
                row.append("yes" if r["detected"] else "no")
            elif c == "detected" and r.get("not_applicable"):
                row.append("n/a (too small)")
            else:
                row.append(r.get(c))
        rows.append(row)
    click.echo(format_table(rows, columns))
    failed = sum(1 for r in records if r["error"])
    if failed:
        click.echo(f"{failed} of {len(records)} failed (see the error column)", err=True)
