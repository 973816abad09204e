"""The ``provguard`` command line.

Sub-commands live in their own modules and are imported only when invoked, so ``provguard --help``
stays fast (no torch import). Register a new command by adding it to ``_COMMANDS``.

Exit codes (shared by every command; see :mod:`provguard.cli.common`):
    0  everything was processed
    1  some inputs failed (each is listed with its error); the others were processed
    2  usage error (bad option, missing argument)
    3  nothing could be done (configuration error, no inputs, missing key or weights)
"""
from __future__ import annotations

import importlib

import click

from provguard import __version__

# command name -> "module:attribute"
_COMMANDS = {
    "watermark": "provguard.cli.watermark:watermark",
    "probe": "provguard.cli.probe:probe",
    "scan": "provguard.cli.scan:scan",
    "simulate": "provguard.cli.simulate:simulate",
    "filter": "provguard.cli.filter:filter_command",
    "decide": "provguard.cli.runs:decide",
    "restore": "provguard.cli.runs:restore",
    "report": "provguard.cli.runs:report",
    "demo": "provguard.cli.demo:demo",
}


class _LazyGroup(click.Group):
    """A click group whose sub-commands (``commands_map``: name -> "module:attr") load on first use."""

    commands_map: dict[str, str] = {}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.commands_map))

    def get_command(self, ctx, name):
        if name in self.commands_map:
            module, attr = self.commands_map[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


class _RootGroup(_LazyGroup):
    commands_map = _COMMANDS


@click.group(cls=_RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="provguard")
def main():
    """provguard: keep AI-generated data out of training sets.

    \b
    Examples:
      provguard watermark embed --method provguard --key-file k.txt photos/ --out marked/
      provguard watermark detect --method all --key-file k.txt marked/ --json
    """
