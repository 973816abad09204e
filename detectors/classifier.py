"""The calibrated CLIP-probe classifier as a :class:`~provguard.detectors.evidence.Detector`.

Refuses to run without a calibrated threshold: an uncalibrated probe (for instance a freshly
imported published head) has no meaningful operating point off its authors' domain.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from provguard.detectors.backbones import ImageTower, create_backbone
from provguard.detectors.calibration import Calibration
from provguard.detectors.embedding import EmbeddingCache, Embedder
from provguard.detectors.evidence import MEDIUM, NONE, REAL, SYNTHETIC, TIER_CLASSIFIER, WEAK, Evidence, Item
from provguard.detectors.probe import LinearProbe, ProbeError


def load_probe_and_tower(path: str | Path, device: str | None = None) -> tuple[LinearProbe, ImageTower]:
    """Load a probe file and build the backbone it names (checked against the recorded weights hash)."""
    probe = LinearProbe.load(path)
    tower = create_backbone(probe.backbone_["id"], layer=probe.backbone_["layer"], device=device)
    probe.check_backbone(tower)
    return probe, tower


class ProbeDetector:
    """Scores images with ``tower`` + ``probe`` at the probe's calibrated threshold.

    Evidence: ``score`` = the probe's decision value (log-odds for logistic), ``detail.p_synthetic`` =
    its (Platt) probability, ``detail.threshold``; reasons ``clip-probe:above-threshold`` (synthetic),
    ``clip-probe:below-threshold`` (real), ``clip-probe:uncertain-band`` (no opinion),
    ``clip-probe:error`` (the image could not be decoded).
    """

    name, tier, cost = "clip-probe", TIER_CLASSIFIER, 0.07

    def __init__(self, probe: LinearProbe, tower: ImageTower, cache: EmbeddingCache | None = None,
                 batch_size: int = 16):
        if not probe.calibration_:
            raise ProbeError("this probe is not calibrated: run `provguard probe calibrate PROBE --real DIR "
                             "--target-fpr 0.01` first (provguard never uses an uncalibrated 0.5 threshold)")
        probe.check_backbone(tower)
        self.probe, self.tower = probe, tower
        self.calibration = Calibration(**{**probe.calibration_, "fpr_ci": tuple(probe.calibration_["fpr_ci"])})
        self.embedder = Embedder(tower, cache, batch_size)

    def score_batch(self, items: Sequence[Item]) -> list[list[Evidence]]:
        vecs, errors = self.embedder.embed(items)
        ok = np.array([e is None for e in errors], bool)
        scores = np.full(len(items), np.nan)
        probs = np.full(len(items), np.nan)
        if ok.any():
            scores[ok] = self.probe.decision_function(vecs[ok])
            probs[ok] = self.probe.predict_proba(vecs[ok])[:, 1]
        calls = self.calibration.decide(np.nan_to_num(scores, nan=-np.inf))
        out = []
        for i in range(len(items)):
            if errors[i] is not None:
                out.append([Evidence(self.name, NONE, float("nan"), None, "clip-probe:error", WEAK, TIER_CLASSIFIER,
                                     {"error": errors[i]})])
                continue
            verdict, reason = {"synthetic": (SYNTHETIC, "clip-probe:above-threshold"),
                               "real": (REAL, "clip-probe:below-threshold"),
                               "uncertain": (NONE, "clip-probe:uncertain-band")}[calls[i]]
            detail = {"p_synthetic": float(probs[i]), "threshold": self.calibration.threshold,
                      "uncertain_threshold": self.calibration.uncertain_threshold,
                      "target_fpr": self.calibration.target_fpr, "backbone": self.tower.id, "layer": self.tower.layer}
            out.append([Evidence(self.name, verdict, float(scores[i]), None, reason, MEDIUM, TIER_CLASSIFIER, detail)])
        return out
