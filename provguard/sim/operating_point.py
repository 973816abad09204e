"""A user's own filter as the simulator's idealised filter: its measured operating point and intervals.

``--filter-from FILE`` reads one of two JSON shapes:

* the output of ``provguard probe eval --json``: ``auc``, ``n_real``, ``n_synthetic``, ``tpr_at_fpr``
  (``{"0.01": tpr, ...}``), ``tpr_ci`` (``{"0.01": [lo, hi], ...}``) and, for a calibrated probe,
  ``at_threshold`` (``{"threshold", "fpr", "tpr"}``, measured on the same labelled images);
* a labelled filter evaluation: confusion counts ``{"tp", "fn", "fp", "tn"}`` (synthetic = positive),
  or rates with intervals ``{"tpr", "tpr_ci", "fpr", "fpr_ci"}``.

The operating point is the calibrated threshold's (``at_threshold``) when present, else the
``tpr_at_fpr`` entry at ``at_fpr`` (default: the largest listed FPR that has a TPR). Intervals are 95%
Clopper-Pearson: the file's TPR interval where it gives one, else from counts; the FPR interval of a
probe evaluation is computed from ``n_real`` (``round(fpr * n_real)`` false positives). The measured
TPR becomes the simulator's recall and the measured FPR its FPR; the interval ends give a band
(:meth:`OperatingPoint.arms`): pessimistic = (low TPR, high FPR), optimistic = (high TPR, low FPR).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from provguard.sim.config import ConfigError

#: how messages name the evaluation file (the CLI spells it --filter-from)
OPTION = "{evaluation}"
SHAPES = ("the JSON of `provguard probe eval --json` (auc, tpr_at_fpr, tpr_ci) or a labelled filter evaluation "
          "(tp, fn, fp, tn counts, or tpr, tpr_ci, fpr, fpr_ci)")


@dataclass
class OperatingPoint:
    """A filter's measured rates (fractions) with 95% intervals, and where they came from."""

    tpr: float
    tpr_ci: tuple[float, float]
    fpr: float
    fpr_ci: tuple[float, float]
    source: str
    description: str

    def arms(self) -> dict[str, tuple[float, float]]:
        """``{"measured", "pessimistic", "optimistic"}`` -> ``(recall, fpr)`` for the band."""
        return {"measured": (self.tpr, self.fpr), "pessimistic": (self.tpr_ci[0], self.fpr_ci[1]),
                "optimistic": (self.tpr_ci[1], self.fpr_ci[0])}

    def to_dict(self) -> dict:
        out = asdict(self)
        out["tpr_ci"], out["fpr_ci"] = list(self.tpr_ci), list(self.fpr_ci)
        return out


def _clopper_pearson(k: int, n: int) -> tuple[float, float]:
    from provguard.detectors.calibration import clopper_pearson

    return clopper_pearson(k, n)


def _rate(name: str, value, path: Path) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{OPTION} {path}: {name} is {value!r}, not a number") from None
    if not (math.isfinite(x) and 0.0 <= x <= 1.0):
        raise ConfigError(f"{OPTION} {path}: {name} = {x:g} is outside [0, 1] (rates are fractions, not percentages)")
    return x


def _interval(name: str, ci, point: float, path: Path) -> tuple[float, float]:
    if ci is None:
        raise ConfigError(f"{OPTION} {path}: the {name} has no confidence interval; the simulator reports a band, "
                          f"so the evaluation must give one (re-run `provguard probe eval` on more images, or add "
                          f"{name}_ci / confusion counts)")
    if not isinstance(ci, (list, tuple)) or len(ci) != 2:
        raise ConfigError(f"{OPTION} {path}: {name}_ci must be [low, high], got {ci!r}")
    lo, hi = (_rate(f"{name}_ci", c, path) for c in ci)
    if not lo <= point <= hi:
        raise ConfigError(f"{OPTION} {path}: {name} = {point:g} lies outside its interval [{lo:g}, {hi:g}]")
    return lo, hi


def _count(doc: dict, key: str, path: Path) -> int:
    v = doc[key]
    if not isinstance(v, (int, float)) or v < 0 or v != int(v):
        raise ConfigError(f"{OPTION} {path}: {key} must be a count (a whole number >= 0), got {v!r}")
    return int(v)


def _from_probe_eval(doc: dict, path: Path, at_fpr: float | None) -> OperatingPoint:
    n_real, n_synth = doc.get("n_real"), doc.get("n_synthetic")
    at = doc.get("at_threshold")
    if at_fpr is None and isinstance(at, dict) and {"tpr", "fpr"} <= set(at):
        tpr, fpr = _rate("TPR", at["tpr"], path), _rate("FPR", at["fpr"], path)
        if not n_real or not n_synth:
            raise ConfigError(f"{OPTION} {path}: the calibrated operating point has no confidence interval "
                              "(n_real and n_synthetic are missing)")
        tpr_ci = _clopper_pearson(round(tpr * n_synth), int(n_synth))
        fpr_ci = _clopper_pearson(round(fpr * n_real), int(n_real))
        return OperatingPoint(tpr, tpr_ci, fpr, fpr_ci, str(path),
                              f"calibrated threshold {at.get('threshold', float('nan')):.4g} of {doc.get('probe', 'the probe')}")
    table, cis = doc.get("tpr_at_fpr"), doc.get("tpr_ci")
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{OPTION} {path}: tpr_at_fpr is empty or not a mapping FPR -> TPR; expected {SHAPES}")
    try:
        listed = {float(k): k for k in table}
    except ValueError:
        raise ConfigError(f"{OPTION} {path}: tpr_at_fpr keys must be FPRs (numbers), got {list(table)}") from None
    if at_fpr is not None:
        match = [f for f in listed if math.isclose(f, at_fpr, rel_tol=1e-9)]
        if not match:
            raise ConfigError(f"{OPTION} {path}: no TPR at FPR {at_fpr:g}; the file lists FPRs "
                              f"{', '.join(sorted(listed.values()))} (choose one with {{at_fpr}})")
        f = match[0]
    else:
        usable = [f for f, k in listed.items() if table[k] is not None]
        if not usable:
            raise ConfigError(f"{OPTION} {path}: no FPR in tpr_at_fpr has a TPR (too few real images for those FPRs)")
        f = max(usable)
    key = listed[f]
    if table[key] is None:
        raise ConfigError(f"{OPTION} {path}: the TPR at FPR {key} is null (the evaluation had too few real images)")
    fpr = _rate("FPR", f, path)
    tpr = _rate("TPR", table[key], path)
    tpr_ci = _interval("TPR", (cis or {}).get(key) if isinstance(cis, dict) else None, tpr, path)
    if not n_real:
        raise ConfigError(f"{OPTION} {path}: n_real is missing, so the FPR has no confidence interval")
    fpr_ci = _clopper_pearson(round(fpr * n_real), int(n_real))
    return OperatingPoint(tpr, tpr_ci, fpr, fpr_ci, str(path), f"TPR at FPR {key} of {doc.get('probe', 'the probe')}")


def _from_labelled(doc: dict, path: Path) -> OperatingPoint:
    if {"tp", "fn", "fp", "tn"} <= set(doc):
        tp, fn, fp, tn = (_count(doc, k, path) for k in ("tp", "fn", "fp", "tn"))
        if tp + fn == 0 or fp + tn == 0:
            raise ConfigError(f"{OPTION} {path}: the evaluation needs both synthetic (tp + fn > 0) and real "
                              "(fp + tn > 0) items")
        return OperatingPoint(tp / (tp + fn), _clopper_pearson(tp, tp + fn), fp / (fp + tn),
                              _clopper_pearson(fp, fp + tn), str(path),
                              f"labelled evaluation ({tp + fn} synthetic, {fp + tn} real items)")
    tpr, fpr = _rate("TPR", doc["tpr"], path), _rate("FPR", doc["fpr"], path)
    return OperatingPoint(tpr, _interval("TPR", doc.get("tpr_ci"), tpr, path), fpr,
                          _interval("FPR", doc.get("fpr_ci"), fpr, path), str(path), "labelled evaluation")


def read_operating_point(evaluation: str | Path, at_fpr: float | None = None) -> OperatingPoint:
    """The operating point of the evaluation in the file ``evaluation`` (see module docstring);
    :class:`ConfigError` naming ``evaluation`` for anything that is not a usable evaluation."""
    path = Path(evaluation)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{OPTION} {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{OPTION} {path} is not a filter evaluation (not JSON: {exc}); expected {SHAPES}") from None
    if isinstance(doc, dict) and "tpr_at_fpr" in doc:
        return _from_probe_eval(doc, path, at_fpr)
    if isinstance(doc, dict) and ({"tp", "fn", "fp", "tn"} <= set(doc) or {"tpr", "fpr"} <= set(doc)):
        if at_fpr is not None:
            raise ConfigError(f"{{at_fpr}} applies to a probe evaluation with several FPRs; {path} is a "
                              "labelled evaluation with one operating point")
        return _from_labelled(doc, path)
    raise ConfigError(f"{OPTION} {path} is not a filter evaluation: expected {SHAPES}")
