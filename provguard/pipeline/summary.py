"""The short human summary of a run: counts by verdict, decision and reason, errors, slowest stage."""
from __future__ import annotations

from typing import Any

from provguard.formatting import format_table


def slowest_stage(timings: dict[str, float]) -> tuple[str, float] | None:
    """The stage (load, decode, or a detector) that took the most seconds, excluding wall time."""
    stages = {k: v for k, v in timings.items() if k != "wall"}
    return max(stages.items(), key=lambda kv: kv[1]) if stages else None


def strip_name(key: str, error: str) -> str:
    """Error messages from the image reader start with the item's name; do not print it twice."""
    return error[len(key) + 2:] if error.startswith(key + ": ") else error


def render(card: dict[str, Any], errors: list[dict[str, Any]] | None = None, max_errors: int = 10) -> str:
    """Plain-text summary from a run card (and the error rows, listed)."""
    c = card["counts"]
    total = sum(c["verdict"].values())
    lines = [f"run: {card['run_dir']}  ({total} items, {card.get('source', {}).get('kind', '?')} source)", ""]
    lines.append(format_table([[k, v, f"{v / total:.1%}" if total else "-"] for k, v in sorted(c["verdict"].items())],
                              ["verdict", "items", "share"]))
    lines += ["", format_table([[k, v] for k, v in sorted(c["decision"].items())], ["decision", "items"])]
    if c["reason"]:
        lines += ["", format_table([[k, v] for k, v in sorted(c["reason"].items(), key=lambda kv: -kv[1])],
                                   ["rejected because", "items"])]
    caught = card.get("caught_by", {})
    if caught:
        lines += ["", format_table([[k, v] for k, v in sorted(caught.items(), key=lambda kv: -kv[1])],
                                   ["deciding detector family", "rejected"])]
    slow = slowest_stage(card.get("timings", {}))
    if slow:
        rate = card.get("items_per_second")
        lines += ["", f"slowest stage: {slow[0]} ({slow[1]:.1f} s)" + (f"; {rate:.1f} items/s overall" if rate else "")]
    if errors:
        lines += ["", f"{len(errors)} item(s) could not be read or decoded:"]
        lines += [f"  {e['key']}: {strip_name(e['key'], e['error'])}" for e in errors[:max_errors]]
        if len(errors) > max_errors:
            lines.append(f"  ... and {len(errors) - max_errors} more (errors.jsonl)")
    return "\n".join(lines)
