"""``provguard demo``: build a demo scraped folder with real provenance markers, filter it, simulate."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-run"), show_default=True,
              help="Where the demo writes everything (its own previous output there is replaced).")
@click.option("--no-llm", is_flag=True, help="Skip the watermarked SmolLM2 text generation (~1 min on 2 cores).")
@click.option("--no-simulate", is_flag=True, help="Skip the short simulate run.")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True, help="Decoding processes.")
def demo(run_dir, no_llm, no_simulate, workers):
    """Build a small scraped folder (real photos, some marked like generator outputs), run
    `provguard filter` over it, print what was caught by which detector, then a short simulation.

    \b
    Example:
      provguard demo                 # what `make demo` runs
      provguard demo --no-llm --run-dir /tmp/pg-demo
    """
    from provguard.demo import run_demo

    run_demo(run_dir, with_llm=not no_llm, simulate=not no_simulate, workers=workers, say=click.echo)
