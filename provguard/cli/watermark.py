"""``provguard watermark``: embed and detect image and text watermarks.

Sub-commands are imported lazily (``_SUBCOMMANDS`` maps name -> "module:attribute").
"""
from __future__ import annotations

import click

from provguard.cli import _LazyGroup

_SUBCOMMANDS = {
    "embed": "provguard.cli.watermark_image:embed",
    "detect": "provguard.cli.watermark_image:detect",
    "generate": "provguard.cli.watermark_text:generate",
    "detect-text": "provguard.cli.watermark_text:detect_text",
}


class _WatermarkGroup(_LazyGroup):
    commands_map = _SUBCOMMANDS


@click.group(cls=_WatermarkGroup)
def watermark():
    """Embed and detect watermarks (images: `embed`/`detect`; text: `generate`/`detect-text`).

    \b
    Examples:
      provguard watermark embed --method provguard --key-file k.txt --payload 0xC0FFEE photos/ --out marked/
      provguard watermark detect --method all --key-file k.txt marked/ --fpr 1e-3 --json
    """
