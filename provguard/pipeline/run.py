"""Orchestration: ``scan -> score -> decide -> act`` over one run directory.

:func:`run_filter` is what ``provguard filter`` calls; :func:`redecide` is ``provguard decide``;
:func:`finalize` (manifest, lists, run card, summary) is shared by both.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from provguard import __version__
from provguard.detectors.fusion import Policy
from provguard.errors import BadArgument, ProvguardError
from provguard.pipeline import actions as act
from provguard.pipeline.config import RunConfig
from provguard.pipeline.decide import DecisionPolicy, counts, decide_table, recalibrate_probe
from provguard.pipeline.fdr import DEFAULT_FDR
from provguard.pipeline.manifest import build_manifest, read_manifest, write_parquet
from provguard.pipeline.rundir import RunDir, read_json, write_json, write_text
from provguard.pipeline.shards import ShardStore, describe
from provguard.pipeline.sources import source_from_spec
from provguard.pipeline.summary import render


class RunDirInUse(ProvguardError):
    """RUN_DIR (``out``) already holds something: this run unfinished, or something that is not a run."""

    names_parameters = True


class ConfigMismatch(RunDirInUse):
    """RUN_DIR holds a run with a different scoring configuration."""


@dataclass
class FilterResult:
    """What a run produced: paths, counts, the run card and the summary text."""

    run_dir: Path
    manifest: Path
    counts: dict[str, Any]
    card: dict[str, Any]
    summary: str
    notes: list[str] = field(default_factory=list)
    action_result: dict[str, int] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.counts.get("error") else 0

    def to_json(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir), "manifest": str(self.manifest), "counts": self.counts,
                "report": str(self.run_dir / "report.html"), "action": self.action_result, "notes": self.notes,
                "timings": self.card.get("timings"), "items_per_second": self.card.get("items_per_second")}


def check_or_write_config(run: RunDir, config: RunConfig, resume: bool) -> None:
    """Write ``config.json`` for a new run; for an existing one, refuse a different scoring config."""
    if run.exists():
        old = RunConfig.from_dict(read_json(run.config))
        diff = old.differences(config)
        if diff:
            raise ConfigMismatch(f"{run.root} holds a run with a different configuration ({', '.join(diff)} differ); "
                                 "use another {out}, or repeat the original options to resume it")
        if not resume:
            raise RunDirInUse(f"{run.root} already holds this run; pass {{resume}} to continue it or choose another {{out}}")
        return
    if run.root.exists() and any(run.root.iterdir()):
        raise RunDirInUse(f"{run.root} exists and is not a provguard run directory; choose another {{out}}")
    run.root.mkdir(parents=True, exist_ok=True)
    write_json(run.config, config.to_dict())


def caught_by(decisions: list[dict[str, Any]]) -> dict[str, int]:
    """Rejected items per deciding reason family (``watermark:sd``, ``png-text``, ``clip-probe`` ...)."""
    out: dict[str, int] = {}
    for d in decisions:
        if d["decision"] == "reject" and d["reasons"]:
            parts = d["reasons"][0].split(":")
            fam = ":".join(parts[:2]) if parts[0] == "watermark" else parts[0]
            out[fam] = out.get(fam, 0) + 1
    return out


def finalize(run: RunDir, scores, policy: DecisionPolicy, card: dict[str, Any]) -> tuple[dict[str, Any], list[dict]]:
    """Decide, then write the manifest, the lists, the run card and the summary. Returns (card, rows)."""
    configured = {d["name"]: d["tier"] for d in card["detectors"]}
    decisions, tests = decide_table(scores, configured, policy)
    manifest = build_manifest(scores, decisions, list(configured))
    write_parquet(manifest, run.manifest)
    rows = manifest.select(["key", "path", "path_raw", "sha256", "verdict", "decision", "score", "reasons", "error"]).to_pylist()
    act.write_lists(run, rows)
    card = {**card, "decision": policy.to_dict(), "counts": counts(decisions), "caught_by": caught_by(decisions),
            "watermark_tests": tests, "run_dir": str(run.root), "manifest": str(run.manifest)}
    write_json(run.card, card)
    errors = [r for r in rows if r["error"]]
    write_text(run.summary, render(card, errors) + "\n")
    return card, rows


def _act(run: RunDir, action: str, rows: list[dict], source, dest: str | None) -> dict[str, int]:
    if action == "report":
        return {}
    if not source.file_backed:
        raise BadArgument(f"{{name}} {action} needs a folder source (files to copy or move); a {source.kind} "
                             "source keeps its items inside containers: use the kept/rejected lists instead", "action")
    if action == "copy-kept":
        return act.copy_kept(run, rows, source.root, dest)
    if action == "move-rejected":
        return act.move_rejected(run, rows, source.root)
    raise ProvguardError(f"unknown action {action!r}; choose from {act.ACTIONS}")


def run_filter(config: RunConfig, out: str | Path, *, key=None, source=None, notes: Sequence[str] = (),
               action: str = "report", resume: bool = True, reject_uncertain: bool = False, dest: str | None = None,
               fdr: float | None = DEFAULT_FDR, fdr_method: str = "bh",
               on_total: Callable[[int], None] = lambda n: None, on_items: Callable[[int], None] = lambda n: None,
               probe_objects=None) -> FilterResult:
    """Run (or resume) a filtering run into ``out``; see the module docstring.

    ``config`` and ``notes`` come from :meth:`RunConfig.create`; the notes travel on the result
    (``--json``). ``source``: the already opened source (default: reopened from ``config.source``).
    ``key``: the secret for keyed watermarks (ignored when the config needs none).
    ``fdr``/``fdr_method``: the run-wide false discovery rate for watermark evidence (None: per-item
    ``target_fpr`` only), see :mod:`provguard.pipeline.fdr`. Decision-only: not part of the fingerprint.
    """
    from provguard.pipeline.detector_set import build_detectors
    from provguard.pipeline.engines import get_engine

    source = source if source is not None else source_from_spec(config.source)
    run = RunDir(out)
    check_or_write_config(run, config, resume)
    run.lock()
    store = ShardStore(run, config.shard_size, config.fingerprint())
    t0 = time.perf_counter()
    if run.plan.exists():
        items = store.read_plan()
    else:
        items = source.scan()
        store.write_plan(items)
    scan_seconds = time.perf_counter() - t0
    if not items:
        raise ProvguardError(f"no images or texts found in {config.source['root']}")
    pending = store.pending(items)
    on_total(len(items))
    on_items(len(items) - sum(len(c) for _, c in pending))
    old_card = read_json(run.card) if run.card.exists() else {}
    detectors = build_detectors(config, key, config.device if config.device != "auto" else None, probe_objects)
    start = time.perf_counter()
    engine_info = old_card.get("engine_info", {})  # what the engine reports about itself (Ray: readers used)
    if pending:
        engine_info = get_engine(config.engine)(source, pending, config, detectors, store, on_items=on_items, key=key)
    score_seconds = time.perf_counter() - start
    scores = store.gather(len(items))
    timings = store.timings(len(items))
    timings["scan"] = scan_seconds + old_card.get("timings", {}).get("scan", 0.0) * (not pending)
    wall = timings.get("wall", score_seconds)
    card = {"provguard_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "config_fingerprint": config.fingerprint(), "engine": config.engine, "engine_info": engine_info,
            "source": {**config.source, "fingerprint": store.plan_digest(items), "items": describe(items)},
            "detectors": [{"name": d.name, "tier": d.tier} for d in detectors.image + detectors.text],
            **detectors.info, "probe": config.to_dict()["probe"], "target_fpr": config.target_fpr,
            "thresholds": {"watermark_alpha": config.policy.watermark_alpha,
                           "classifier": (detectors.info.get("probe_calibration") or {}).get("threshold")},
            "timings": timings, "items_per_second": len(items) / wall if wall > 0 else None}
    policy = DecisionPolicy(config.policy, reject_uncertain, fdr=fdr, fdr_method=fdr_method)
    card, rows = finalize(run, scores, policy, card)
    action_result = _act(run, action, rows, source, dest)
    if action_result:
        card["actions"] = card.get("actions", []) + [{"action": action, **action_result}]
        write_json(run.card, card)
    return FilterResult(run.root, run.manifest, card["counts"], card, run.summary.read_text(), list(notes), action_result)


def redecide(out: str | Path, *, target_fpr: float | None = None, policy_file: str | None = None,
             reject_uncertain: bool | None = None, classifier_threshold: float | None = None,
             calibrate_on: list[str] | None = None, fdr: float | None | str = "keep",
             fdr_method: str | None = None) -> FilterResult:
    """``provguard decide``: new verdicts and lists from the stored scores (no model is loaded).

    ``fdr``: a new run-wide FDR level, None to decide watermarks per item, ``"keep"`` for the run's.
    """
    run = RunDir(out).require()
    card = read_json(run.card)
    old = DecisionPolicy.from_dict(card.get("decision", {}))
    fusion = Policy.from_file(policy_file) if policy_file else old.fusion
    if target_fpr is not None:
        fusion = replace(fusion, watermark_alpha=float(target_fpr))
    policy = DecisionPolicy(fusion, old.reject_uncertain if reject_uncertain is None else reject_uncertain,
                            classifier_threshold if classifier_threshold is not None else old.classifier_threshold,
                            old.classifier_uncertain_threshold, old.fdr if fdr == "keep" else fdr,
                            fdr_method or old.fdr_method)
    scores = read_manifest(run.manifest).select(["index", "key", "path", "path_raw", "media_type", "size", "sha256",
                                                  "error", "detectors_run", "evidence"])
    if calibrate_on:
        if target_fpr is None:
            raise BadArgument("{calibrate_on} needs {name} (the false-positive rate to calibrate at)", "target_fpr")
        cal = recalibrate_probe(scores, calibrate_on, target_fpr)
        policy.classifier_threshold, policy.classifier_uncertain_threshold = cal["threshold"], None
        card["thresholds"] = {**card.get("thresholds", {}), "classifier": cal["threshold"], "classifier_calibration": cal}
    elif policy.classifier_threshold is not None:
        card["thresholds"] = {**card.get("thresholds", {}), "classifier": policy.classifier_threshold}
    card["thresholds"] = {**card.get("thresholds", {}), "watermark_alpha": fusion.watermark_alpha}
    if target_fpr is not None:
        card["target_fpr"] = float(target_fpr)
    card["decided"] = card.get("decided", 0) + 1
    card, _ = finalize(run, scores, policy, card)
    return FilterResult(run.root, run.manifest, card["counts"], card, run.summary.read_text())


def read_rows(run: RunDir, columns: list[str]) -> list[dict[str, Any]]:
    """Selected manifest columns as dicts."""
    return read_manifest(run.manifest).select(columns).to_pylist()


def restore_run(out: str | Path) -> dict[str, int]:
    """``provguard restore``: every quarantined file back to its place."""
    run = RunDir(out)
    if not run.journal.exists():
        raise ProvguardError(f"{run.root}: nothing to restore (no journal.jsonl: move-rejected never ran here)")
    config = read_json(run.config)
    return act.restore(run, config["source"]["root"])


__all__ = ["ConfigMismatch", "FilterResult", "finalize", "redecide", "restore_run", "run_filter"]
