"""The decide stage: stored evidence + a policy -> verdicts, decisions and the kept/rejected lists.

Runs on the manifest alone (no model): ``provguard decide RUN_DIR --target-fpr 1e-4`` re-fuses every
row's stored evidence under the new policy. Watermark p-values are exact, so a new ``target_fpr`` is
exact for them. The classifier's threshold stays the probe's calibrated one unless a new threshold is
given, or re-calibrated (split-conformal, :mod:`provguard.detectors.calibration`) from the stored
probe scores of items the user names as known-real.

Decisions (datatrove's contract: keep, or drop *with a reason*): ``synthetic`` -> ``reject``;
an item that could not be read or decoded (and was not shown synthetic) -> verdict ``error``,
decision ``error``; ``uncertain`` -> ``keep`` unless ``reject_uncertain``; ``real`` -> ``keep``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from provguard.detectors.evidence import NONE, REAL, SYNTHETIC, UNCERTAIN, Evidence
from provguard.detectors.fusion import Policy, fuse
from provguard.errors import ProvguardError

PROBE = "clip-probe"


@dataclass
class DecisionPolicy:
    """Fusion policy plus what to do with uncertain items and the classifier's operating point."""

    fusion: Policy = field(default_factory=Policy)
    reject_uncertain: bool = False
    classifier_threshold: float | None = None
    classifier_uncertain_threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"fusion": self.fusion.to_dict(), "reject_uncertain": self.reject_uncertain,
                "classifier_threshold": self.classifier_threshold,
                "classifier_uncertain_threshold": self.classifier_uncertain_threshold}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DecisionPolicy":
        return cls(Policy(**d.get("fusion", {})), d.get("reject_uncertain", False), d.get("classifier_threshold"),
                   d.get("classifier_uncertain_threshold"))


def _rethreshold(e: Evidence, threshold: float, uncertain: float | None) -> Evidence:
    """The probe's evidence re-decided at a new threshold (score = stored decision value)."""
    if e.reason.endswith(":error") or not np.isfinite(e.score):
        return e
    if e.score > threshold:
        verdict, reason = SYNTHETIC, "clip-probe:above-threshold"
    elif uncertain is not None and e.score > uncertain:
        verdict, reason = NONE, "clip-probe:uncertain-band"
    else:
        verdict, reason = REAL, "clip-probe:below-threshold"
    return Evidence(e.detector, verdict, e.score, e.p_value, reason, e.strength, e.tier,
                    {**e.detail, "threshold": threshold, "uncertain_threshold": uncertain})


def decide_one(evidence_json: str, error: str | None, ran: Sequence[str], configured: dict[str, str],
               policy: DecisionPolicy) -> dict[str, Any]:
    """One row's ``verdict``, ``decision``, ``score``, ``reasons``, ``tier``.

    ``configured`` maps each image/text detector name of the run to its tier, to flag rows whose
    cascade stopped before a detector that the new policy would have needed.
    """
    evidence = [Evidence(**d) for d in json.loads(evidence_json or "[]")]
    if policy.classifier_threshold is not None:
        evidence = [_rethreshold(e, policy.classifier_threshold, policy.classifier_uncertain_threshold)
                    if e.detector == PROBE else e for e in evidence]
    v = fuse(evidence, policy.fusion)
    reasons = list(v.reasons)
    if v.verdict != SYNTHETIC and error:
        return {"verdict": "error", "decision": "error", "score": v.score, "reasons": ["error:unreadable", *reasons],
                "tier": None}
    order = policy.fusion.order
    rank = order.index(v.tier) if v.tier in order else len(order)
    missing = [n for n, tier in configured.items() if n not in ran and tier in order and order.index(tier) <= rank]
    if missing and ran:
        reasons.append("decide:not-run:" + ",".join(sorted(missing)))
    if v.verdict == SYNTHETIC or (v.verdict == UNCERTAIN and policy.reject_uncertain):
        decision = "reject"
    else:
        decision = "keep"
    return {"verdict": v.verdict, "decision": decision, "score": v.score, "reasons": reasons, "tier": v.tier}


def decide_table(scores, configured: dict[str, str], policy: DecisionPolicy) -> list[dict[str, Any]]:
    """Decisions for every row of a score table (pyarrow) in order."""
    cols = scores.select(["evidence", "error", "detectors_run"]).to_pydict()
    return [decide_one(ev, err, ran or [], configured, policy)
            for ev, err, ran in zip(cols["evidence"], cols["error"], cols["detectors_run"])]


def recalibrate_probe(scores, real_keys: Sequence[str], target_fpr: float) -> dict[str, Any]:
    """A conformal probe threshold at ``target_fpr`` from the stored probe scores of known-real items."""
    from provguard.detectors.calibration import calibrate

    wanted = set(real_keys)
    cols = scores.select(["key", "evidence"]).to_pydict()
    values, found = [], set()
    for key, blob in zip(cols["key"], cols["evidence"]):
        if key in wanted:
            for e in json.loads(blob or "[]"):
                if e["detector"] == PROBE and e["score"] is not None and np.isfinite(e["score"]):
                    values.append(e["score"])
                    found.add(key)
    missing = wanted - found
    if missing:
        raise ProvguardError(f"{len(missing)} of the known-real items have no stored {PROBE} score (e.g. "
                             f"{sorted(missing)[0]!r}); they were not scored by the classifier — re-run filter "
                             "with --no-cascade so every item gets every score")
    return calibrate(np.asarray(values), target_fpr).to_dict()


def counts(decisions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``{"verdict": {...}, "decision": {...}, "reason": {...}, "error": n}``."""
    out: dict[str, Any] = {"verdict": {}, "decision": {}, "reason": {}}
    for d in decisions:
        out["verdict"][d["verdict"]] = out["verdict"].get(d["verdict"], 0) + 1
        out["decision"][d["decision"]] = out["decision"].get(d["decision"], 0) + 1
        if d["decision"] == "reject" and d["reasons"]:
            out["reason"][d["reasons"][0]] = out["reason"].get(d["reasons"][0], 0) + 1
    out["error"] = out["verdict"].get("error", 0)
    return out
