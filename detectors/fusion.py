"""Evidence -> one verdict per item, in a documented order, and a cost cascade that stops early.

Default order (``Policy.order``), first decisive tier wins:

1. ``signed-provenance`` — C2PA signed and valid. AI ``digitalSourceType`` decides "synthetic" at
   strength >= ``synthetic_min_strength`` (default medium: an untrusted-but-valid signature that
   *declares* AI counts); a capture type decides "real" only at ``real_min_strength`` (strong = trusted).
2. ``watermark`` — decides "synthetic" when its exact p-value <= ``watermark_alpha`` (default 1e-3).
   A missing watermark is no evidence of anything.
3. ``unsigned-metadata`` — IPTC/XMP DigitalSourceType, generator text chunks, EXIF (forgeable and
   strippable, but nobody forges "made by AI"): decides "synthetic" if ``use_unsigned_metadata``.
4. ``classifier`` — the calibrated probe: above threshold "synthetic"; below "real" (if
   ``classifier_can_clear``); inside the uncertain band no decision.
5. abstain — "uncertain", reason ``abstain:no-decisive-evidence``.

Two decisive opinions that disagree *within* a tier give "uncertain" (``fusion:conflict``).
"Not applicable" evidence (a detector that could not look, e.g. an image below the SD mark's 256x256)
is kept with the item but never listed among its reasons.
The fused ``score`` is in [0, 1], higher = more synthetic: 1.0 / 0.0 for a decisive declaration,
``1 - p`` for a watermark, the probe's P(synthetic) for the classifier, ``None`` if nothing scored.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from provguard.detectors.evidence import (NONE, STRENGTHS, SYNTHETIC, TIER_CLASSIFIER, TIER_WATERMARK, TIERS,
                                          UNCERTAIN, Detector, Evidence, Item, is_not_applicable)
from provguard.errors import ProvguardError

_RANK = {s: len(STRENGTHS) - i for i, s in enumerate(STRENGTHS)}  # strong 3, medium 2, weak 1


@dataclass(frozen=True)
class Policy:
    """How evidence is weighed (all fields user-settable; see the module docstring). Frozen: derive a
    changed policy with ``dataclasses.replace(policy, watermark_alpha=...)`` (validated again)."""

    order: tuple[str, ...] = TIERS
    synthetic_min_strength: str = "medium"
    real_min_strength: str = "strong"
    watermark_alpha: float = 1e-3
    use_unsigned_metadata: bool = True
    classifier_can_clear: bool = True

    def __post_init__(self):
        object.__setattr__(self, "order", tuple(self.order))
        bad = [t for t in self.order if t not in TIERS]
        if bad or len(set(self.order)) != len(self.order):
            raise ProvguardError(f"policy order must be distinct tiers from {TIERS}, got {list(self.order)}")
        for s in (self.synthetic_min_strength, self.real_min_strength):
            if s not in STRENGTHS:
                raise ProvguardError(f"policy strength must be one of {STRENGTHS}, got {s!r}")
        if not 0 < self.watermark_alpha < 1:
            raise ProvguardError(f"watermark_alpha must be in (0, 1), got {self.watermark_alpha}")

    @classmethod
    def from_file(cls, path: str | Path) -> "Policy":
        """Read a JSON object with any of the fields above; unknown keys are an error."""
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ProvguardError(f"{path}: cannot read the policy as JSON ({exc})") from None
        unknown = set(d) - set(cls.__dataclass_fields__) if isinstance(d, dict) else {"<not an object>"}
        if unknown:
            raise ProvguardError(f"{path}: unknown policy fields {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    def decisive(self, e: Evidence) -> bool:
        """Whether ``e`` alone settles its item under this policy."""
        if e.verdict == NONE:
            return False
        if e.tier == TIER_WATERMARK:
            return e.verdict == SYNTHETIC and e.p_value is not None and e.p_value <= self.watermark_alpha
        if e.tier == TIER_CLASSIFIER:
            return e.verdict == SYNTHETIC or self.classifier_can_clear
        if e.tier == "unsigned-metadata" and not self.use_unsigned_metadata:
            return False
        need = self.synthetic_min_strength if e.verdict == SYNTHETIC else self.real_min_strength
        return _RANK[e.strength] >= _RANK[need]


@dataclass
class Verdict:
    """The fused call for one item. ``tier`` is the deciding tier (``None`` when abstaining)."""

    verdict: str
    score: float | None
    reasons: list[str]
    tier: str | None
    evidence: list[Evidence] = field(default_factory=list)
    detectors_run: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "score": self.score, "reasons": self.reasons, "tier": self.tier,
                "evidence": [e.to_dict() for e in self.evidence], "detectors_run": self.detectors_run}


def _score(e: Evidence) -> float:
    if e.tier == TIER_WATERMARK and e.p_value is not None:
        return 1.0 - float(e.p_value)
    if e.tier == TIER_CLASSIFIER and "p_synthetic" in e.detail:
        return float(e.detail["p_synthetic"])
    return 1.0 if e.verdict == SYNTHETIC else 0.0


def fuse(evidence: Sequence[Evidence], policy: Policy | None = None) -> Verdict:
    """Weigh ``evidence`` for one item in ``policy.order``; the first decisive tier decides."""
    policy = policy or Policy()
    ordered = sorted(evidence, key=lambda e: policy.order.index(e.tier) if e.tier in policy.order else len(TIERS))
    all_reasons = list(dict.fromkeys(e.reason for e in ordered if not is_not_applicable(e)))
    for tier in policy.order:
        decisive = [e for e in ordered if e.tier == tier and policy.decisive(e)]
        if not decisive:
            continue
        verdicts = {e.verdict for e in decisive}
        lead = [e.reason for e in decisive]
        if len(verdicts) > 1:
            return Verdict(UNCERTAIN, None, ["fusion:conflict", *dict.fromkeys(lead + all_reasons)], tier, list(ordered))
        reasons = list(dict.fromkeys(lead + all_reasons))
        pick = max if decisive[0].verdict == SYNTHETIC else min
        return Verdict(decisive[0].verdict, pick(_score(e) for e in decisive), reasons, tier, list(ordered))
    scored = [_score(e) for e in ordered
              if e.tier in (TIER_CLASSIFIER, TIER_WATERMARK) and (e.p_value is not None or "p_synthetic" in e.detail)]
    return Verdict(UNCERTAIN, max(scored) if scored else None, [*all_reasons, "abstain:no-decisive-evidence"], None, list(ordered))


def _settled(v: Verdict, remaining: Sequence[Detector], policy: Policy) -> bool:
    """A decision is final once no detector still to run works in an earlier-or-equal tier."""
    if v.tier is None or v.verdict == UNCERTAIN:
        return False
    rank = policy.order.index(v.tier)
    return all(policy.order.index(d.tier) > rank for d in remaining if d.tier in policy.order)


def cascade(items: Sequence[Item], detectors: Sequence[Detector], policy: Policy | None = None) -> list[Verdict]:
    """Run ``detectors`` cheapest-tier-first and stop per item as soon as its verdict is final.

    Detectors are ordered by (their tier's place in ``policy.order``, ``cost``); each sees only the
    items not yet settled, so the classifier (~70 ms/image on CPU) runs only where metadata and
    watermarks left the question open. ``Verdict.detectors_run`` lists what ran for each item.
    """
    policy = policy or Policy()
    plan = sorted(detectors, key=lambda d: (policy.order.index(d.tier) if d.tier in policy.order else len(TIERS), d.cost))
    evidence: list[list[Evidence]] = [[] for _ in items]
    ran: list[list[str]] = [[] for _ in items]
    pending = list(range(len(items)))
    for step, det in enumerate(plan):
        if not pending:
            break
        for i, evs in zip(pending, det.score_batch([items[i] for i in pending])):
            evidence[i] += evs
            ran[i].append(det.name)
        pending = [i for i in pending if not _settled(fuse(evidence[i], policy), plan[step + 1:], policy)]
    out = []
    for i in range(len(items)):
        v = fuse(evidence[i], policy)
        v.detectors_run = ran[i]
        out.append(v)
    return out
