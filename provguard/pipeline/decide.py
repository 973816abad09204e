"""The decide stage: stored evidence + a policy -> verdicts, decisions and the kept/rejected lists.

Runs on the manifest alone (no model): ``provguard decide RUN_DIR --target-fpr 1e-4`` re-fuses every
row's stored evidence under the new policy. Watermark p-values are exact, so a new ``target_fpr`` is
exact for them. The classifier's threshold stays the probe's calibrated one unless a new threshold is
given, or re-calibrated (split-conformal, :mod:`provguard.detectors.calibration`) from the stored
probe scores of items the user names as known-real.

Watermark evidence is decided over the whole run when ``fdr`` is set (the default,
:data:`~provguard.pipeline.fdr.DEFAULT_FDR`): Benjamini-Hochberg (or -Yekutieli) over every watermark
p-value of the run gives one cutoff (:mod:`provguard.pipeline.fdr`), capped by the per-item
``watermark_alpha``; with ``fdr=None`` the per-item ``watermark_alpha`` alone decides.

Decisions (datatrove's contract: keep, or drop *with a reason*): ``synthetic`` -> ``reject``;
an item that could not be read or decoded (and was not shown synthetic) -> verdict ``error``,
decision ``error``; ``uncertain`` -> ``keep`` unless ``reject_uncertain``; ``real`` -> ``keep``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Sequence, TypedDict

import numpy as np

from provguard.detectors.evidence import NONE, REAL, SYNTHETIC, UNCERTAIN, Evidence, is_not_applicable
from provguard.detectors.fusion import Policy, fuse
from provguard.errors import ProvguardError
from provguard.pipeline.fdr import DEFAULT_FDR, check_fdr, step_up, watermark_p_values

PROBE = "clip-probe"


@dataclass
class DecisionPolicy:
    """Fusion policy plus what to do with uncertain items, the classifier's operating point, and the
    run-wide false discovery rate for watermark evidence (``fdr`` in (0, 1) or None for per-item
    ``fusion.watermark_alpha`` only; ``fdr_method`` ``"bh"`` or ``"by"``)."""

    fusion: Policy = field(default_factory=Policy)
    reject_uncertain: bool = False
    classifier_threshold: float | None = None
    classifier_uncertain_threshold: float | None = None
    fdr: float | None = DEFAULT_FDR
    fdr_method: str = "bh"

    def __post_init__(self):
        if self.fdr is not None:
            check_fdr(self.fdr, self.fdr_method)

    def to_dict(self) -> dict[str, Any]:
        return {"fusion": self.fusion.to_dict(), "reject_uncertain": self.reject_uncertain,
                "classifier_threshold": self.classifier_threshold,
                "classifier_uncertain_threshold": self.classifier_uncertain_threshold,
                "fdr": self.fdr, "fdr_method": self.fdr_method}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DecisionPolicy":
        return cls(Policy(**d.get("fusion", {})), d.get("reject_uncertain", False), d.get("classifier_threshold"),
                   d.get("classifier_uncertain_threshold"), d.get("fdr", DEFAULT_FDR), d.get("fdr_method", "bh"))


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


class Decision(TypedDict):
    """What deciding one item gives (a manifest row's decision columns)."""

    verdict: str            # "synthetic" | "real" | "uncertain" | "error"
    decision: str           # "keep" | "reject" | "error"
    score: float | None     # fused score in [0, 1], higher = more synthetic
    reasons: list[str]
    tier: str | None        # the deciding tier
    not_applicable: list[str]  # detectors that could not look at the item for a legitimate reason


def parse_evidence(blob: str | None) -> list[Evidence]:
    """A manifest row's ``evidence`` column (JSON) as :class:`Evidence` objects: the JSON edge."""
    return [Evidence(**d) for d in json.loads(blob or "[]")]


def decide_one(evidence: Sequence[Evidence], error: str | None, ran: Sequence[str], configured: dict[str, str],
               policy: DecisionPolicy) -> Decision:
    """One item's :class:`Decision` from its evidence.

    ``configured`` maps each image/text detector name of the run to its tier, to flag rows whose
    cascade stopped before a detector that the new policy would have needed.
    """
    evidence = list(evidence)
    if policy.classifier_threshold is not None:
        evidence = [_rethreshold(e, policy.classifier_threshold, policy.classifier_uncertain_threshold)
                    if e.detector == PROBE else e for e in evidence]
    v = fuse(evidence, policy.fusion)
    score = None if v.score is None else float(v.score)
    reasons = list(v.reasons)
    skipped = sorted({e.detector for e in evidence if is_not_applicable(e)})
    if v.verdict != SYNTHETIC and error:
        return Decision(verdict="error", decision="error", score=score, reasons=["error:unreadable", *reasons],
                        tier=None, not_applicable=skipped)
    order = policy.fusion.order
    rank = order.index(v.tier) if v.tier in order else len(order)
    missing = [n for n, tier in configured.items() if n not in ran and tier in order and order.index(tier) <= rank]
    if missing and ran:
        reasons.append("decide:not-run:" + ",".join(sorted(missing)))
    if v.verdict == SYNTHETIC or (v.verdict == UNCERTAIN and policy.reject_uncertain):
        decision = "reject"
    else:
        decision = "keep"
    return Decision(verdict=v.verdict, decision=decision, score=score, reasons=reasons, tier=v.tier,
                    not_applicable=skipped)


def watermark_cutoff(evidence: Sequence[Sequence[Evidence]], policy: DecisionPolicy) -> tuple[DecisionPolicy, dict[str, Any]]:
    """The policy to decide a run's rows with, and what the run card records about its watermark tests.

    With ``policy.fdr`` the step-up cutoff over every watermark p-value of the run replaces the
    per-item ``watermark_alpha`` (which caps it); without, ``watermark_alpha`` stays. The record:
    ``{"mode": "fdr"|"per-item", "tests", "cutoff", "expected_false_discoveries", ...}``; the expected
    number of false discoveries is ``tests * cutoff`` (an upper bound: as if no item were marked).
    """
    p = watermark_p_values(evidence)
    alpha = policy.fusion.watermark_alpha
    if policy.fdr is None:
        return policy, {"mode": "per-item", "tests": len(p), "cutoff": alpha, "rejected": sum(v <= alpha for v in p),
                        "expected_false_discoveries": len(p) * alpha}
    r = step_up(p, policy.fdr, policy.fdr_method, cap=alpha)
    fusion = replace(policy.fusion, watermark_alpha=r.cutoff)
    info = {"mode": "fdr", "method": r.method, "fdr": r.q, "tests": r.tests, "cutoff": r.cutoff, "cap": alpha,
            "rejected": r.rejected, "expected_false_discoveries": r.expected_false}
    return replace(policy, fusion=fusion), info


def decide_table(scores, configured: dict[str, str], policy: DecisionPolicy) -> tuple[list[Decision], dict[str, Any]]:
    """Decisions for every row of a score table (pyarrow) in order, and the run's watermark-test
    record (:func:`watermark_cutoff`). The evidence column's JSON is parsed here, once."""
    cols = scores.select(["evidence", "error", "detectors_run"]).to_pydict()
    evidence = [parse_evidence(blob) for blob in cols["evidence"]]
    effective, tests = watermark_cutoff(evidence, policy)
    return [decide_one(ev, err, ran or [], configured, effective)
            for ev, err, ran in zip(evidence, cols["error"], cols["detectors_run"])], tests


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
    """``{"verdict": {...}, "decision": {...}, "reason": {...}, "not_applicable": {detector: n}, "error": n}``."""
    out: dict[str, Any] = {"verdict": {}, "decision": {}, "reason": {}, "not_applicable": {}}
    for d in decisions:
        for det in d.get("not_applicable", ()):
            out["not_applicable"][det] = out["not_applicable"].get(det, 0) + 1
        out["verdict"][d["verdict"]] = out["verdict"].get(d["verdict"], 0) + 1
        out["decision"][d["decision"]] = out["decision"].get(d["decision"], 0) + 1
        if d["decision"] == "reject" and d["reasons"]:
            out["reason"][d["reasons"][0]] = out["reason"].get(d["reasons"][0], 0) + 1
    out["error"] = out["verdict"].get("error", 0)
    return out
