"""Shared command-line plumbing: input discovery, JSON/table output, exit codes, progress bars."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import click

from provguard.errors import BadArgument, ProvguardError

from provguard.formatting import format_table, to_json  # noqa: F401  (re-exported)
from provguard.imaging.io import IMAGE_SUFFIXES  # noqa: F401  (re-exported)

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_FATAL = 3

#: library parameter names -> the flags that set them (how a :class:`BadArgument` reads on the command line)
FLAGS = {"device": "--device", "key": "--key-file", "watermarks": "--watermark", "text_watermark": "--text-watermark",
         "tokenizer": "--tokenizer", "probe": "--probe", "policy": "--policy", "target_fpr": "--target-fpr",
         "engine": "--engine", "fmt": "--format", "source": "SOURCE", "trust_anchors": "--trust-anchors",
         "pixel_path": "--sd-pipeline"}


def discover_files(inputs: Sequence[str], suffixes: frozenset[str]) -> list[tuple[Path, Path]]:
    """Expand files and folders into ``(path, relative_name)`` pairs, sorted, without duplicates.

    Files named explicitly are kept whatever their suffix (so a mislabelled file gets a per-file error
    rather than being skipped silently); folders are walked recursively for ``suffixes``.
    Raises :class:`click.UsageError` for a path that does not exist.
    """
    found: dict[Path, Path] = {}
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            for root, _dirs, files in os.walk(path):
                for name in files:
                    child = Path(root) / name
                    if child.suffix.lower() in suffixes:
                        found.setdefault(child.resolve(), child.relative_to(path))
        elif path.exists():
            found.setdefault(path.resolve(), Path(path.name))
        else:
            raise click.UsageError(f"no such file or folder: {raw}")
    return sorted(((p, rel) for p, rel in found.items()), key=lambda pr: str(pr[1]))


def emit_json(payload) -> None:
    """Print ``payload`` as JSON on stdout (see :func:`to_json`)."""
    click.echo(to_json(payload))


class FdrLevel(click.ParamType):
    """A false discovery rate in (0, 1), or ``off`` (None: watermarks decided per item); the string
    ``keep`` passes through (``decide``'s default: the run's own setting)."""

    name = "Q|off"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, float) or value == "keep":
            return value
        if str(value).strip().lower() in ("off", "none"):
            return None
        try:
            q = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number; give a rate such as 0.01, or 'off'", param, ctx)
        if not 0 < q < 1:
            self.fail(f"{value} is not in (0, 1); e.g. 0.01 allows 1% of watermark rejections to be false", param, ctx)
        return q


def progress(iterable: Iterable, total: int | None, desc: str, enabled: bool):
    """A tqdm progress bar on stderr when ``enabled`` and stderr is a terminal-ish stream."""
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="file", file=sys.stderr, leave=False,
                disable=None if total is None or total > 1 else True)


def fail(message: str, code: int = EXIT_FATAL) -> None:
    """Print ``error: message`` on stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def command_flags(command: click.Command) -> dict[str, str]:
    """Parameter name -> how ``command`` spells it: an option's longest flag, an argument's metavar."""
    return {p.name: max(p.opts, key=len) if isinstance(p, click.Option) else p.human_readable_name
            for p in command.params if p.name}


@contextmanager
def user_errors(cleanup: Callable[[], None] = lambda: None, fatal: tuple[type[Exception], ...] = (),
                flags: dict[str, str] | None = None) -> Iterator[None]:
    """The command line's one translation of library errors into a message and an exit code.

    :class:`~provguard.errors.BadArgument` exits 2 (usage), any other
    :class:`~provguard.errors.ProvguardError` and the ``fatal`` types exit 3. The parameters a message
    names are spelled as flags: ``flags`` first, then the running command's own options
    (:func:`command_flags`), then :data:`FLAGS`. ``cleanup`` runs first (e.g. closing a progress bar).
    """
    try:
        yield
    except (ProvguardError, *fatal) as exc:
        cleanup()
        if not isinstance(exc, ProvguardError):
            fail(str(exc), EXIT_FATAL)
        ctx = click.get_current_context(silent=True)
        own = command_flags(ctx.command) if ctx is not None else {}
        code = EXIT_USAGE if isinstance(exc, BadArgument) else EXIT_FATAL
        fail(exc.message_for({**FLAGS, **own, **(flags or {})}), code)
