"""What a run is: :class:`RunConfig`, saved as ``config.json`` in the run directory.

Only the fields that change *scores* enter :meth:`RunConfig.fingerprint`; ``--resume`` refuses a run
directory whose fingerprint differs (mixing rows scored under two configurations would make the
manifest meaningless). Secrets never enter the file: a key is represented by a keyed digest.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from provguard import __version__

SCORING_FIELDS = ("source", "watermarks", "key_digest", "text_watermark", "probe", "trust_anchors",
                  "policy", "target_fpr", "cascade", "shard_size")


def key_digest(key) -> str | None:
    """A digest that tells two keys apart without revealing either (HMAC with a fixed label)."""
    if key is None:
        return None
    return hmac.new(b"provguard-run-key-digest", bytes(key), hashlib.sha256).hexdigest()[:16]


@dataclass
class RunConfig:
    """Everything that defines a filtering run.

    Attributes:
        source: the source's :meth:`~provguard.pipeline.sources.Source.spec` (root made absolute).
        watermarks: image watermark methods to check (``"sd"``, ``"provguard"``).
        key_digest: :func:`key_digest` of the key used for keyed watermarks (or None).
        text_watermark: ``{"scheme", "tokenizer", "gamma", "context_width"}`` or None.
        probe: ``{"path", "sha256"}`` of the calibrated probe, or None (classifier off).
        trust_anchors: ``{"path", "sha256"}`` of a PEM file of C2PA roots, or None.
        policy: the fusion :class:`~provguard.detectors.fusion.Policy` as a dict.
        target_fpr: false-positive rate for exact-p-value detectors (watermark alpha).
        cascade: stop per item once its verdict is final (False: run every detector on every item).
        shard_size: items per shard (the unit of resume).
        batch_size, workers, device, engine: how to run (do not change results).
    """

    source: dict[str, Any]
    watermarks: list[str] = field(default_factory=lambda: ["sd"])
    key_digest: str | None = None
    text_watermark: dict[str, Any] | None = None
    probe: dict[str, Any] | None = None
    trust_anchors: dict[str, Any] | None = None
    policy: dict[str, Any] = field(default_factory=dict)
    target_fpr: float = 1e-3
    cascade: bool = True
    shard_size: int = 256
    batch_size: int = 32
    workers: int = 2
    device: str = "auto"
    engine: str = "local"
    provguard_version: str = __version__

    def scoring_view(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in SCORING_FIELDS}

    def fingerprint(self) -> str:
        blob = json.dumps(self.scoring_view(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()

    def differences(self, other: "RunConfig") -> list[str]:
        """Names of scoring fields that differ (for a refusal message)."""
        a, b = self.scoring_view(), other.scoring_view()
        return [k for k in SCORING_FIELDS if json.dumps(a[k], sort_keys=True, default=str) != json.dumps(b[k], sort_keys=True, default=str)]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fingerprint": self.fingerprint()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**d)
