"""The score stage: a batch of decoded items -> manifest rows holding scores and evidence.

No decision is stored here: verdicts come from :mod:`provguard.pipeline.decide`, so a policy can be
changed later without re-running any model ("score once, decide many times").
"""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

from provguard.detectors.fusion import Policy, cascade
from provguard.pipeline.detector_set import DetectorSet
from provguard.pipeline.items import IMAGE, TEXT, Payload


def _json_default(obj):
    return obj.item() if hasattr(obj, "item") else str(obj)


def run_detectors(items: Sequence, detectors: Sequence, policy: Policy, use_cascade: bool) -> list[tuple[list, list[str]]]:
    """``(evidence, detectors_run)`` per item: the cost cascade, or every detector on every item."""
    if not items:
        return []
    if use_cascade:
        return [(v.evidence, v.detectors_run) for v in cascade(items, detectors, policy)]
    evidence: list[list] = [[] for _ in items]
    for det in detectors:
        for evs, new in zip(evidence, det.score_batch(items)):
            evs += new
    names = [d.name for d in detectors]
    return [(evs, list(names)) for evs in evidence]


def base_row(payload: Payload) -> dict[str, Any]:
    """The identity columns of a row (everything but scores)."""
    it = payload.item
    return {"index": it.index, "key": it.key, "media_type": it.media_type, "size": it.size,
            "path": os.fsdecode(it.path_raw).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            if it.path_raw else None, "path_raw": it.path_raw, "sha256": payload.sha256, "error": payload.error}


def score_decoded(batch: list[tuple[Payload, Any, str | None]], detectors: DetectorSet, policy: Policy,
                  use_cascade: bool) -> list[dict[str, Any]]:
    """Rows for one decoded batch (same order). Unloadable items get a row with ``error`` and no evidence."""
    rows = [base_row(p) for p, _, _ in batch]
    for i, (_, _, decode_error) in enumerate(batch):
        if decode_error:
            rows[i]["error"] = decode_error
    for media, dets in ((IMAGE, detectors.image), (TEXT, detectors.text)):
        idx = [i for i, (p, item, _) in enumerate(batch) if p.error is None and item is not None and p.item.media_type == media]
        for i, (evidence, ran) in zip(idx, run_detectors([batch[i][1] for i in idx], dets, policy, use_cascade)):
            rows[i]["evidence"] = json.dumps([e.to_dict() for e in evidence], default=_json_default)
            rows[i]["detectors_run"] = ran
        for i in idx:
            batch[i][1].release_pixels()
    for r in rows:
        r.setdefault("evidence", "[]")
        r.setdefault("detectors_run", [])
    return rows
