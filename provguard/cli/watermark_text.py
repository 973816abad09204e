"""``provguard watermark generate`` and ``provguard watermark detect-text``: text watermarks."""
from __future__ import annotations

from pathlib import Path

import click

from provguard.cli.common import (EXIT_OK, EXIT_SOME_FAILED, discover_files, emit_json, fail, format_table, progress,
                                  user_errors)
from provguard.keys import resolve_key

_SCHEME_HELP = ("green-list scheme: provguard-lefthash / provguard-selfhash (any secret key), or "
                "transformers-lefthash / transformers-selfhash (--key is transformers' integer hashing_key)")


def _scheme_options(func):
    """Options shared by both commands: key material and the scheme's parameters."""
    from provguard.watermark.text.schemes import DEFAULT_SCHEME, list_schemes

    options = [
        click.option("--key", default=None, help="secret key (or set $PROVGUARD_KEY; never printed)"),
        click.option("--key-file", type=click.Path(dir_okay=False), default=None, help="file holding the key"),
        click.option("--scheme", type=click.Choice(list_schemes()), default=DEFAULT_SCHEME, show_default=True,
                     help=_SCHEME_HELP),
        click.option("--gamma", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.25,
                     show_default=True, help="green-list fraction (transformers: greenlist_ratio)"),
        click.option("--context-width", type=click.IntRange(min=1), default=1, show_default=True,
                     help="tokens hashed into each green list"),
        click.option("--vocab-size", type=click.IntRange(min=2), default=None,
                     help="transformers schemes: the model config's vocab_size (default: read from the "
                          "model/tokenizer folder)"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _build_scheme(scheme: str, secret, gamma: float, context_width: int, vocab_size: int | None,
                  model_ref: str, tokenizer=None):
    from provguard.watermark.text.loading import load_vocab_size
    from provguard.watermark.text.schemes import TRANSFORMERS_SCHEMES, create_scheme

    if scheme in TRANSFORMERS_SCHEMES and vocab_size is None:
        vocab_size = load_vocab_size(model_ref, tokenizer)
    return create_scheme(scheme, secret, gamma, context_width, vocab_size)


@click.command("generate")
@click.option("--model", "model_ref", required=True,
              help="causal LM: local folder, .gguf file, bundled name (smollm2-135m-instruct) or hub id")
@_scheme_options
@click.option("--delta", type=float, default=2.0, show_default=True, help="bias added to green logits")
@click.option("--prompt", "prompts", multiple=True, help="a prompt (repeat for a batch)")
@click.option("--prompts-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="one prompt per line (.txt) or per record (.jsonl with --text-field)")
@click.option("--text-field", default="prompt", show_default=True, help="jsonl field holding the prompt")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True)
@click.option("--top-k", type=click.IntRange(min=0), default=0, show_default=True, help="0: off")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True)
@click.option("--greedy", is_flag=True, help="greedy decoding instead of sampling")
@click.option("--seed", type=int, default=None, help="sampling seed (reproducible output)")
@click.option("--chat/--no-chat", default=True, show_default=True, help="apply the model's chat template")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if present)")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads (default 1 on CPU: fastest for token-by-token generation)")
@click.option("--json", "as_json", is_flag=True, help="print JSON records instead of text")
def generate(model_ref, key, key_file, scheme, gamma, context_width, vocab_size, delta, prompts, prompts_file,
             text_field, max_new_tokens, batch_size, temperature, top_k, top_p, greedy, seed, chat, device,
             threads, as_json):
    """Generate watermarked text with a causal LM.

    \b
    Example:
      provguard watermark generate --model smollm2-135m-instruct --key-file k.txt \\
          --prompt "Write a haiku about rain." --max-new-tokens 120 --json
      provguard watermark generate --model ./my-model --scheme transformers-lefthash --key 15485863 \\
          --prompts-file prompts.txt > out.txt
    """
    import torch

    from provguard.textio import read_documents
    from provguard.watermark.text.generation import generate as run_generation
    from provguard.watermark.text.loading import load_model

    prompts = list(prompts)
    if prompts_file:
        path = Path(prompts_file)
        if path.suffix.lower() == ".jsonl":
            docs = list(read_documents(path, text_field=text_field))
            bad = [d for d in docs if d.error]
            if bad:
                fail(f"{path}: line {bad[0].line}: {bad[0].error}")
            prompts += [d.text for d in docs]
        else:
            prompts += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not prompts:
        raise click.UsageError("give at least one --prompt or a --prompts-file")
    with user_errors():
        secret = resolve_key(key, key_file)
        model, tokenizer = load_model(model_ref, device=device)
        if next(model.parameters()).device.type == "cpu":
            torch.set_num_threads(threads or 1)
        wm = _build_scheme(scheme, secret, gamma, context_width,
                           vocab_size or getattr(model.config, "vocab_size", None), model_ref, tokenizer)
        outputs = run_generation(model, tokenizer, prompts, wm, delta=delta, max_new_tokens=max_new_tokens,
                                 batch_size=batch_size, do_sample=not greedy, temperature=temperature,
                                 top_k=top_k, top_p=top_p, seed=seed, chat=chat)
    if as_json:
        emit_json([{"prompt": g.prompt, "text": g.text, "tokens": len(g.token_ids), "scheme": wm.name}
                   for g in outputs])
    else:
        click.echo("\n\n".join(g.text for g in outputs))
    raise SystemExit(EXIT_OK)


def _display_name(path: Path, inputs) -> str:
    """``path`` as the user would write it: relative to the input (file or folder) it came from."""
    for raw in inputs:
        root = Path(raw).resolve()
        if path == root:
            return raw
        if root.is_dir() and root in path.parents:
            return str(Path(raw) / path.relative_to(root))
    return str(path)


def _record(doc, result) -> dict:
    span = None
    if result is not None and result.span is not None:
        span = {"start": result.span.start, "end": result.span.end, "p_value": result.span.p_value,
                "tokens_scored": result.span.tokens_scored, "green": result.span.green,
                "windows_searched": result.span.windows_searched}
    base = {"path": doc.path, "line": doc.line}
    if result is None:
        return {**base, "tokens_scored": 0, "green": 0, "z": None, "p_value": None, "detected": False,
                "span": None, "error": doc.error}
    return {**base, "tokens_scored": result.tokens_scored, "green": result.green, "z": result.z,
            "p_value": result.p_value if result.error is None else None, "detected": result.detected,
            "span": span, "error": result.error}


def _table(records: list[dict]) -> str:
    rows = []
    for r in records:
        where = r["path"] + (f":{r['line']}" if r["line"] is not None else "")
        span = f"{r['span']['start']}-{r['span']['end']} (p={r['span']['p_value']:.1e})" if r["span"] else ""
        rows.append([where, r["tokens_scored"], r["green"], "" if r["z"] is None else f"{r['z']:.2f}",
                     "" if r["p_value"] is None else f"{r['p_value']:.2e}", "yes" if r["detected"] else "no",
                     span, r["error"] or ""])
    return format_table(rows, ["document", "tokens", "green", "z", "p_value", "detected", "span", "error"])


@click.command("detect-text")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--tokenizer", "tokenizer_ref", required=True,
              help="tokenizer: local folder, .gguf file, bundled name or hub id (the model is not loaded)")
@_scheme_options
@click.option("--fpr", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=1e-3,
              show_default=True, help="false-positive rate: detected when p_value <= fpr")
@click.option("--text-field", default="text", show_default=True, help="jsonl field holding the text")
@click.option("--prompt-field", default=None, help="jsonl field holding the prompt (context only, not scored)")
@click.option("--normalize/--no-normalize", default=True, show_default=True,
              help="NFC, homoglyph and zero-width normalisation before tokenising")
@click.option("--ignore-repeated-ngrams/--keep-repeated-ngrams", default=True, show_default=True)
@click.option("--span/--no-span", "find_spans", default=True, show_default=True,
              help="search for a watermarked passage inside longer documents")
@click.option("--min-span-tokens", type=click.IntRange(min=2), default=25, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON record per document")
@click.option("--quiet", is_flag=True, help="no progress bar")
def detect_text(inputs, tokenizer_ref, key, key_file, scheme, gamma, context_width, vocab_size, fpr, text_field,
                prompt_field, normalize, ignore_repeated_ngrams, find_spans, min_span_tokens, batch_size, as_json,
                quiet):
    """Detect a text watermark in .txt/.md files and .jsonl records, with exact p-values.

    Needs only the tokenizer and the key: no model is loaded. Exit code 1 when some documents could
    not be scored (each has its error), 3 when nothing could be done.

    \b
    Example:
      provguard watermark detect-text --tokenizer smollm2-135m-instruct --key-file k.txt docs/ --json
      provguard watermark detect-text --tokenizer ./model --scheme transformers-selfhash --key 15485863 \\
          --context-width 4 --fpr 1e-4 --text-field body data.jsonl
    """
    from provguard.watermark.text.detector import TextWatermarkDetector
    from provguard.textio import TEXT_SUFFIXES, read_documents
    from provguard.watermark.text.loading import load_tokenizer

    files = discover_files(inputs, TEXT_SUFFIXES)
    if not files:
        fail("no .txt, .md or .jsonl files found in the given inputs")
    with user_errors():
        secret = resolve_key(key, key_file)
        tokenizer = load_tokenizer(tokenizer_ref)
        wm = _build_scheme(scheme, secret, gamma, context_width, vocab_size, tokenizer_ref, tokenizer)
    detector = TextWatermarkDetector(tokenizer, wm, fpr=fpr, ignore_repeated_ngrams=ignore_repeated_ngrams,
                                     normalize=normalize, find_spans=find_spans, min_span_tokens=min_span_tokens)
    records: list[dict] = []
    pending = []

    def flush():
        if not pending:
            return
        results = detector.detect([d.text for d in pending], [d.prompt for d in pending])
        records.extend(_record(d, r) for d, r in zip(pending, results))
        pending.clear()

    for path, _rel in progress(files, len(files), "detect-text", not quiet):
        for doc in read_documents(path, _display_name(path, inputs), text_field, prompt_field):
            if doc.error:  # keep input order: score what is pending first
                flush()
                records.append(_record(doc, None))
                continue
            pending.append(doc)
            if len(pending) >= batch_size:
                flush()
    flush()
    if as_json:
        emit_json(records)
    else:
        click.echo(_table(records))
    raise SystemExit(EXIT_SOME_FAILED if any(r["error"] for r in records) else EXIT_OK)
