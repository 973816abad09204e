"""The short human summary of a run: counts by verdict, decision and reason, "not applicable" per
detector, the run's watermark tests (cutoff, expected false discoveries), errors, slowest stage."""
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


def watermark_tests_line(card: dict[str, Any]) -> str | None:
    """One sentence on how watermark evidence was decided across the run (None before any decision)."""
    t = card.get("watermark_tests")
    if not t:
        return None
    how = (f"{t['method'].upper()} at FDR {t['fdr']:g} (capped at p <= {t['cap']:.3g})" if t["mode"] == "fdr"
           else "per item")
    line = (f"watermark tests: {t['tests']} p-values, decided {how}: cutoff p <= {t['cutoff']:.3g}, "
            f"{t['rejected']} significant; expected false discoveries <= {t['expected_false_discoveries']:.3g}")
    null = card.get("sd_null")
    if null:
        line += (f"\nSD watermark null: {null['views']:,} real-photo views (empirical p down to "
                 f"{null['empirical_resolution']:.1e}), geometric tail beyond")
    return line


def classifier_line(card: dict[str, Any]) -> str | None:
    """Which probe ran (and why), and what its "real" means; None when the classifier was off."""
    probe = card.get("probe")
    if not probe:
        return "classifier: off" if "probe" in card else None
    cal = card.get("probe_calibration") or {}
    which = "the default probe shipped with provguard" if probe.get("source") == "default" else probe["path"]
    how = f" ({probe['source']})" if probe.get("source") not in (None, "default") else ""
    at = f", threshold {cal['threshold']:.3f} at target FPR {cal['target_fpr']:g}" if cal else ""
    return (f"classifier: {which}{how}{at}; below the threshold means no evidence of synthesis, "
            "not proof of a real photo")


def not_applicable_rows(card: dict[str, Any]) -> list[list[Any]]:
    """``[detector, items]`` for detectors that could not look at some items (too small, no text)."""
    return sorted([k, v] for k, v in card["counts"].get("not_applicable", {}).items())


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
    skipped = not_applicable_rows(card)
    if skipped:
        lines += ["", format_table(skipped, ["not applicable (detector)", "items"])]
    tests = watermark_tests_line(card)
    if tests:
        lines += ["", tests]
    line = classifier_line(card)
    if line:
        lines += ["", line]
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
