"""Unit tests of the shard store and of deciding one row, without running any detector (fast)."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest

from provguard.detectors.evidence import Evidence
from provguard.detectors.fusion import Policy
from provguard.errors import ProvguardError
from provguard.pipeline.decide import DecisionPolicy, counts, decide_one, decide_table
from provguard.pipeline.items import SourceItem
from provguard.pipeline.rundir import RunDir
from provguard.pipeline.shards import ShardStore, describe


# ---------------------------------------------------------------------------------------------- shards
def _items(n: int) -> list[SourceItem]:
    return [SourceItem(i, f"k{i}.png", "image" if i % 3 else "text", {"path": f"/x/k{i}"}, 10 * i, f"/x/k{i}".encode(),
                       None if i != 4 else "broken") for i in range(n)]


def _table(rows: list[int]) -> pa.Table:
    return pa.table({"index": pa.array(rows, pa.int64()), "score": pa.array([float(r) for r in rows])})


@pytest.fixture
def store(tmp_path):
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    return ShardStore(run, shard_size=3, fingerprint="f" * 64)


def test_plan_round_trips_and_splits(store):
    items = _items(8)
    store.write_plan(items)
    assert store.read_plan() == items
    split = store.split(items)
    assert [s for s, _ in split] == [0, 1, 2] and [len(c) for _, c in split] == [3, 3, 2]
    assert [it.index for it in split[2][1]] == [6, 7]
    assert describe(items) == {"text": 3, "image": 5}


def test_plan_digest_depends_on_keys_sizes_and_order():
    items = _items(4)
    d = ShardStore.plan_digest(items)
    assert len(d) == 64 and d == ShardStore.plan_digest(_items(4))
    assert d != ShardStore.plan_digest(items[::-1])
    changed = list(items)
    changed[1] = SourceItem(1, "k1.png", "image", {}, 11, b"", None)
    assert d != ShardStore.plan_digest(changed)
    assert ShardStore.plan_digest([SourceItem(0, "a", "image", {}, 12, b"", None)]) != \
        ShardStore.plan_digest([SourceItem(0, "a1", "image", {}, 2, b"", None)])  # fields are separated


def test_a_shard_is_done_only_with_a_matching_marker(store):
    items = _items(8)
    assert [s for s, _ in store.pending(items)] == [0, 1, 2]
    store.complete(0, _table([0, 1, 2]), {"score": 1.5})
    store.complete(1, _table([3, 4, 5]), {"score": 2.0, "decode": 0.5})
    assert store.is_done(0) and store.is_done(1) and not store.is_done(2)
    assert [s for s, _ in store.pending(items)] == [2]
    data, marker = store._paths(1)
    m = json.loads(marker.read_text())
    assert m["rows"] == 3 and m["fingerprint"] == "f" * 64 and m["timings"] == {"score": 2.0, "decode": 0.5}
    # another configuration's marker, a data file that no longer matches, a broken or missing marker
    other = ShardStore(store.run, 3, "e" * 64)
    assert not other.is_done(0) and [s for s, _ in other.pending(items)] == [0, 1, 2]
    data.write_bytes(data.read_bytes() + b"x")
    assert not store.is_done(1)
    marker.write_text("{not json")
    assert not store.is_done(1)
    store._paths(0)[1].unlink()
    assert not store.is_done(0)


def test_timings_add_up_over_finished_shards(store):
    store.complete(0, _table([0, 1, 2]), {"score": 1.5})
    store.complete(2, _table([6, 7]), {"score": 2.0, "decode": 0.25})
    assert store.timings(8) == {"score": 3.5, "decode": 0.25}


def test_gather_checks_every_index_exactly_once(store):
    store.complete(0, _table([0, 1, 2]), {})
    store.complete(1, _table([3, 4, 5]), {})
    store.complete(2, _table([6, 7]), {})
    assert store.gather(8).column("index").to_pylist() == list(range(8))
    store.complete(2, _table([6, 6]), {})
    with pytest.raises(ProvguardError, match="exactly once"):
        store.gather(8)
    store.complete(2, _table([6]), {})
    with pytest.raises(ProvguardError, match="exactly once"):
        store.gather(8)


# ---------------------------------------------------------------------------------------------- decide
def _ev(detector, tier, verdict, score=1.0, p=None, reason=None, strength="strong", **detail):
    return Evidence(detector, verdict, score, p, reason or f"{detector}:{verdict}", strength, tier, detail).to_dict()


def _decide(evidence, error=None, ran=("provguard-watermark",), configured=None, policy=None):
    configured = configured if configured is not None else {"provguard-watermark": "watermark"}
    return decide_one([Evidence(**e) for e in evidence], error, list(ran), configured, policy or DecisionPolicy())


def test_decide_one_maps_verdicts_to_decisions():
    wm = [_ev("provguard-watermark", "watermark", "synthetic", 60.0, p=1e-9, reason="watermark:provguard:detected")]
    d = _decide(wm)
    assert {k: d[k] for k in ("verdict", "decision", "score", "reasons", "tier")} == {
        "verdict": "synthetic", "decision": "reject", "score": pytest.approx(1 - 1e-9),
        "reasons": ["watermark:provguard:detected"], "tier": "watermark"}
    weak = [_ev("provguard-watermark", "watermark", "synthetic", 40.0, p=0.01)]
    d = _decide(weak)
    assert (d["verdict"], d["decision"], d["tier"]) == ("uncertain", "keep", None)
    assert d["reasons"][-1] == "abstain:no-decisive-evidence"
    assert _decide(weak, policy=DecisionPolicy(reject_uncertain=True))["decision"] == "reject"
    assert _decide(weak, policy=DecisionPolicy(Policy(watermark_alpha=0.05)))["decision"] == "reject"
    real = [_ev("c2pa", "signed-provenance", "real", 0.0, reason="c2pa:capture")]
    d = _decide(real, configured={})
    assert (d["verdict"], d["decision"], d["tier"], d["score"]) == ("real", "keep", "signed-provenance", 0.0)


def test_decide_one_error_rows_unless_shown_synthetic():
    d = _decide([], error="cannot decode")
    assert (d["verdict"], d["decision"], d["score"], d["reasons"][0], d["tier"]) == \
        ("error", "error", None, "error:unreadable", None)
    wm = [_ev("provguard-watermark", "watermark", "synthetic", 60.0, p=1e-9)]
    assert _decide(wm, error="exif broken")["decision"] == "reject"


def test_decide_one_flags_detectors_the_cascade_skipped():
    meta = [_ev("png-text", "unsigned-metadata", "synthetic", reason="png-text:automatic1111", strength="medium")]
    configured = {"png-text": "unsigned-metadata", "provguard-watermark": "watermark", "clip-probe": "classifier"}
    d = _decide(meta, ran=["png-text"], configured=configured)
    assert d["decision"] == "reject" and d["reasons"] == ["png-text:automatic1111", "decide:not-run:provguard-watermark"]
    d = _decide(meta, ran=["png-text", "provguard-watermark"], configured=configured)
    assert d["reasons"] == ["png-text:automatic1111"]  # the classifier's tier comes later: not needed
    assert _decide(meta, ran=[], configured=configured)["reasons"] == ["png-text:automatic1111"]


def test_decide_one_rethresholds_the_probe_score():
    probe = [_ev("clip-probe", "classifier", "real", 0.3, reason="clip-probe:below-threshold", p_synthetic=0.4)]
    d = _decide(probe, ran=["clip-probe"], configured={"clip-probe": "classifier"},
                policy=DecisionPolicy(classifier_threshold=0.2))
    assert (d["verdict"], d["decision"], d["reasons"][0]) == ("synthetic", "reject", "clip-probe:above-threshold")
    d = _decide(probe, ran=["clip-probe"], configured={"clip-probe": "classifier"},
                policy=DecisionPolicy(classifier_threshold=0.3))
    assert (d["verdict"], d["decision"]) == ("real", "keep")  # at the threshold: not above it
    d = _decide(probe, ran=["clip-probe"], configured={"clip-probe": "classifier"},
                policy=DecisionPolicy(classifier_threshold=0.5, classifier_uncertain_threshold=0.25))
    assert (d["verdict"], d["reasons"][0]) == ("uncertain", "clip-probe:uncertain-band")
    broken = [_ev("clip-probe", "classifier", "none", float("nan"), reason="clip-probe:error")]
    d = _decide(broken, ran=["clip-probe"], configured={"clip-probe": "classifier"},
                policy=DecisionPolicy(classifier_threshold=-5.0))
    assert d["verdict"] == "uncertain" and d["reasons"][0] == "clip-probe:error"


def test_decision_policy_round_trips():
    p = DecisionPolicy(Policy(watermark_alpha=0.01, use_unsigned_metadata=False), True, 0.7, 0.2)
    assert DecisionPolicy.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    assert DecisionPolicy.from_dict({}) == DecisionPolicy()


def test_decide_table_and_counts():
    rows = [json.dumps([_ev("provguard-watermark", "watermark", "synthetic", 60.0, p=1e-9, reason="wm:yes")]),
            json.dumps([]), None]
    table = pa.table({"evidence": rows, "error": [None, None, "bad file"],
                      "detectors_run": [["provguard-watermark"], ["provguard-watermark"], None]})
    decisions, tests = decide_table(table, {"provguard-watermark": "watermark"}, DecisionPolicy())
    assert tests["tests"] == 1 and tests["rejected"] == 1
    assert [d["decision"] for d in decisions] == ["reject", "keep", "error"]
    c = counts(decisions)
    assert {k: c[k] for k in ("verdict", "decision", "reason", "error")} == {
        "verdict": {"synthetic": 1, "uncertain": 1, "error": 1}, "decision": {"reject": 1, "keep": 1, "error": 1},
        "reason": {"wm:yes": 1}, "error": 1}
