"""What a run is: :class:`RunConfig`, built in one place (:meth:`RunConfig.create`) by every entry point
(``provguard filter``/``scan``/``demo``, the library hooks), saved as ``config.json`` in the run directory.

Only the fields that change *scores* enter :meth:`RunConfig.fingerprint`; ``--resume`` refuses a run
directory whose fingerprint differs (mixing rows scored under two configurations would make the
manifest meaningless). Secrets never enter the file: a key is represented by a keyed digest.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from provguard import __version__
from provguard.detectors.fusion import Policy
from provguard.errors import BadArgument
from provguard.hashing import file_sha256

SCORING_FIELDS = ("source", "watermarks", "key_digest", "text_watermark", "probe", "trust_anchors",
                  "policy", "target_fpr", "cascade", "shard_size")


def key_digest(key) -> str | None:
    """A digest that tells two keys apart without revealing either (HMAC with a fixed label)."""
    if key is None:
        return None
    return hmac.new(b"provguard-run-key-digest", bytes(key), hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class FileRef:
    """A file a run depends on (probe, trust anchors): absolute ``path``, its ``sha256``, and for the probe
    where the choice came from (``source``: ``"default"``, ``"given"``, ``"$PROVGUARD_PROBE"``)."""

    path: str
    sha256: str
    source: str | None = None

    @classmethod
    def of(cls, path: str | Path, source: str | None = None) -> "FileRef":
        return cls(str(Path(path).absolute()), file_sha256(path), source)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None or k != "source"}


@dataclass(frozen=True)
class TextWatermarkSpec:
    """The text watermark a run checks: ``scheme`` (:func:`~provguard.watermark.text.list_schemes`),
    ``tokenizer`` (bundled name, folder or hub id), green-list fraction ``gamma``, ``context_width``."""

    scheme: str
    tokenizer: str
    gamma: float = 0.25
    context_width: int = 1


def _watermark_list(watermarks: str | Sequence[str]) -> list[str]:
    if isinstance(watermarks, str):
        return [] if watermarks.strip() == "none" else [w.strip() for w in watermarks.split(",") if w.strip()]
    return list(watermarks)


def _text_watermark(choice: str | None, tokenizer: str, key, notes: list[str]) -> TextWatermarkSpec | None:
    """The text-watermark spec for ``choice`` (a scheme, ``"auto"`` or ``"none"``/None), or None with a
    note saying why it is off."""
    if choice is None or choice == "none":
        return None
    if key is None:
        if choice != "auto":
            raise BadArgument("the text watermark needs a key: pass {name} or set $PROVGUARD_KEY", "key")
        notes.append("text watermark off: no key (pass --key-file to check texts for provguard's watermark)")
        return None
    if choice == "auto":
        from provguard.watermark.text.loading import list_bundled

        if tokenizer == "smollm2-135m-instruct" and tokenizer not in list_bundled():
            notes.append("text watermark off: the bundled tokenizer is not installed (pass --tokenizer PATH)")
            return None
        choice = "provguard-lefthash"
    return TextWatermarkSpec(choice, tokenizer)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a filtering run (build one with :meth:`create`).

    Attributes:
        source: the source's :meth:`~provguard.pipeline.sources.Source.spec` (root made absolute), or
            ``{}`` for in-memory batches (hooks).
        watermarks: image watermark methods to check (:func:`~provguard.watermark.image.list_image_watermarks`).
        key_digest: :func:`key_digest` of the key used for keyed watermarks (None when no detector needs one).
        text_watermark: the :class:`TextWatermarkSpec`, or None.
        probe: the calibrated probe's :class:`FileRef`, or None (classifier off).
        trust_anchors: a PEM file of C2PA roots (:class:`FileRef`), or None.
        policy: the fusion :class:`~provguard.detectors.fusion.Policy`; its ``watermark_alpha`` is the run's
            target false-positive rate for exact-p-value detectors (:attr:`target_fpr`).
        cascade: stop per item once its verdict is final (False: run every detector on every item).
        shard_size: items per shard (the unit of resume).
        batch_size, workers, device, engine: how to run (do not change results).
    """

    source: dict[str, Any]
    watermarks: tuple[str, ...] = ("sd",)
    key_digest: str | None = None
    text_watermark: TextWatermarkSpec | None = None
    probe: FileRef | None = None
    trust_anchors: FileRef | None = None
    policy: Policy = field(default_factory=Policy)
    cascade: bool = True
    shard_size: int = 256
    batch_size: int = 32
    workers: int = 2
    device: str = "auto"
    engine: str = "local"
    provguard_version: str = __version__

    @property
    def target_fpr(self) -> float:
        """False-positive rate for exact-p-value detectors (the policy's ``watermark_alpha``)."""
        return self.policy.watermark_alpha

    @classmethod
    def create(cls, source=None, *, watermarks: str | Sequence[str] = ("sd",), key=None, probe: str | Path | None = "none",
               text_watermark: str | None = None, tokenizer: str = "smollm2-135m-instruct",
               trust_anchors: str | Path | None = None, policy: Policy | str | Path | None = None,
               target_fpr: float | None = None, skip_unkeyed: bool = False, cascade: bool = True,
               shard_size: int = 256, batch_size: int = 32, workers: int = 2, device: str = "auto",
               engine: str = "local") -> tuple["RunConfig", list[str]]:
        """The one way to build a run; returns ``(config, notes)`` (notes: what is off, and why).

        Args:
            source: an opened :class:`~provguard.pipeline.sources.Source`, or None (in-memory batches).
            watermarks: image watermark names (a list, or ``"sd,provguard"``/``"none"``).
            key: the secret for keyed watermarks (:class:`~provguard.keys.SecretKey`, bytes or text) or None.
            probe: a probe file, ``"default"``, ``"none"``, or None (``$PROVGUARD_PROBE``, else the shipped
                probe): see :func:`~provguard.detectors.default_probe.resolve_probe`.
            text_watermark: a text scheme, ``"auto"`` (on when a key and the tokenizer exist), or None/``"none"``.
            policy: a :class:`Policy`, a JSON policy file, or None (defaults).
            target_fpr: overrides the policy's ``watermark_alpha`` when given.
            skip_unkeyed: leave out keyed watermarks when there is no key (with a note) instead of raising
                :class:`~provguard.errors.BadArgument`.
        """
        from provguard.detectors.default_probe import resolve_probe
        from provguard.keys import as_key
        from provguard.pipeline.engines import list_engines
        from provguard.watermark.image import list_image_watermarks, needs_key

        notes: list[str] = []
        key = as_key(key) if key is not None else None
        if not isinstance(policy, Policy):
            policy = Policy.from_file(policy) if policy is not None else Policy()
        if target_fpr is not None:
            policy = replace(policy, watermark_alpha=target_fpr)
        marks = []
        for m in _watermark_list(watermarks):
            if m not in list_image_watermarks():
                raise BadArgument(f"unknown image watermark {m!r} in {{name}}; choose from {list_image_watermarks()}",
                                  "watermarks")
            if needs_key(m) and key is None:
                if not skip_unkeyed:
                    raise BadArgument(f"the {m} watermark needs a key: pass {{name}} or set $PROVGUARD_KEY", "key")
                notes.append(f"{m} watermark skipped: it needs --key-file (or $PROVGUARD_KEY)")
                continue
            marks.append(m)
        if engine not in list_engines():
            raise BadArgument(f"unknown engine {engine!r}; {{name}} is one of {', '.join(list_engines())}", "engine")
        probe_path, probe_source = resolve_probe(probe)
        if probe_path is None:
            notes.append("classifier off (--probe none)")
        text = _text_watermark(text_watermark, tokenizer, key, notes)
        keyed = text is not None or any(needs_key(m) for m in marks)
        spec = {}
        if source is not None:
            spec = source.spec()
            spec["root"] = str(Path(spec["root"]).absolute())
        config = cls(source=spec, watermarks=tuple(marks), key_digest=key_digest(key) if keyed else None,
                     text_watermark=text, probe=FileRef.of(probe_path, probe_source) if probe_path else None,
                     trust_anchors=FileRef.of(trust_anchors) if trust_anchors else None, policy=policy,
                     cascade=cascade, shard_size=shard_size, batch_size=batch_size, workers=workers, device=device,
                     engine=engine)
        return config, notes

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` form (plain JSON types), with ``target_fpr`` and the ``fingerprint``."""
        d = {"source": self.source, "watermarks": list(self.watermarks), "key_digest": self.key_digest,
             "text_watermark": asdict(self.text_watermark) if self.text_watermark else None,
             "probe": self.probe.to_dict() if self.probe else None,
             "trust_anchors": self.trust_anchors.to_dict() if self.trust_anchors else None,
             "policy": self.policy.to_dict(), "target_fpr": self.target_fpr, "cascade": self.cascade,
             "shard_size": self.shard_size, "batch_size": self.batch_size, "workers": self.workers,
             "device": self.device, "engine": self.engine, "provguard_version": self.provguard_version}
        return {**d, "fingerprint": _fingerprint(d)}

    def scoring_view(self) -> dict[str, Any]:
        d = self.to_dict()
        return {k: d[k] for k in SCORING_FIELDS}

    def fingerprint(self) -> str:
        return self.to_dict()["fingerprint"]

    def differences(self, other: "RunConfig") -> list[str]:
        """Names of scoring fields that differ (for a refusal message)."""
        a, b = self.scoring_view(), other.scoring_view()
        return [k for k in SCORING_FIELDS if json.dumps(a[k], sort_keys=True, default=str) != json.dumps(b[k], sort_keys=True, default=str)]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        """Inverse of :meth:`to_dict` (``fingerprint`` and unknown keys are ignored)."""
        policy = {"watermark_alpha": d.get("target_fpr", Policy.watermark_alpha), **(d.get("policy") or {})}
        text, probe, anchors = d.get("text_watermark"), d.get("probe"), d.get("trust_anchors")
        plain = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and
                 k not in ("watermarks", "text_watermark", "probe", "trust_anchors", "policy")}
        return cls(**plain, watermarks=tuple(d.get("watermarks", ("sd",))), policy=Policy(**policy),
                   text_watermark=TextWatermarkSpec(**text) if text else None,
                   probe=FileRef(**probe) if probe else None, trust_anchors=FileRef(**anchors) if anchors else None)


def _fingerprint(d: dict[str, Any]) -> str:
    blob = json.dumps({k: d[k] for k in SCORING_FIELDS}, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()
