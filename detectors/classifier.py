"""The calibrated CLIP-probe classifier as a :class:`~provguard.detectors.evidence.Detector`.

Refuses to run without a calibrated threshold: an uncalibrated probe (for instance a freshly
imported published head) has no meaningful operating point off its authors' domain.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from provguard.detectors.backbones import ImageTower, create_backbone
from provguard.detectors.calibration import Calibration
from provguard.detectors.embedding import EmbeddingCache, Embedder
from provguard.detectors.evidence import (MEDIUM, NONE, REAL, SYNTHETIC, TIER_CLASSIFIER, WEAK, Evidence, Item,
                                          not_applicable)
from provguard.detectors.probe import LinearProbe, ProbeError


def load_probe_and_tower(path: str | Path, device: str | None = None) -> tuple[LinearProbe, ImageTower]:
    """Load a probe file and build the backbone it names (checked against the recorded weights hash)."""
    probe = LinearProbe.load(path)
    tower = create_backbone(probe.backbone_["id"], layer=probe.backbone_["layer"], device=device)
    probe.check_backbone(tower)
    return probe, tower


MIN_SIDE = 32  # px: below this on the short side the tower sees upsampled blur; "not applicable"
MEANING = {"synthetic": "above the threshold calibrated on real photos: evidence of synthesis",
           "real": "below the threshold: no evidence of synthesis (not proof of a real photo)",
           "uncertain": "inside the uncertain band: no decision"}


class ProbeDetector:
    """Scores images with ``tower`` + ``probe`` at the probe's calibrated threshold.

    Evidence: ``score`` = the probe's decision value (log-odds for logistic), ``detail.p_synthetic`` =
    its (Platt) probability, ``detail.threshold``, ``detail.meaning``; reasons ``clip-probe:above-threshold``
    (synthetic), ``clip-probe:below-threshold`` (verdict "real" for fusion, meaning *no evidence of
    synthesis*, never proof of a photo), ``clip-probe:uncertain-band`` (no opinion), ``clip-probe:error``
    (the file could not be decoded), ``clip-probe:not-applicable`` (under :data:`MIN_SIDE` px). Animated
    files are judged on their first frame; CMYK, 16-bit and palette images are converted to 8-bit RGB.
    """

    name, tier, cost = "clip-probe", TIER_CLASSIFIER, 0.07

    def __init__(self, probe: LinearProbe, tower: ImageTower, cache: EmbeddingCache | None = None,
                 batch_size: int = 16):
        if not probe.calibration_:
            raise ProbeError("this probe is not calibrated: run `provguard probe calibrate PROBE --real DIR "
                             "--target-fpr 0.01` first (provguard never uses an uncalibrated 0.5 threshold)")
        probe.check_backbone(tower)
        self.probe, self.tower = probe, tower
        self.calibration = Calibration.from_dict(probe.calibration_)
        self.embedder = Embedder(tower, cache, batch_size)

    def score_batch(self, items: Sequence[Item]) -> list[list[Evidence]]:
        shapes = [image_shape(it) for it in items]
        small = [s is not None and min(s[:2]) < MIN_SIDE for s in shapes]
        todo = [i for i in range(len(items)) if not small[i]]
        vecs, errs = self.embedder.embed([items[i] for i in todo])
        errors: list[str | None] = [None] * len(items)
        scores = np.full(len(items), np.nan)
        probs = np.full(len(items), np.nan)
        for j, i in enumerate(todo):
            errors[i] = errs[j]
        good = [j for j, e in enumerate(errs) if e is None]
        if good:
            rows = [todo[j] for j in good]
            scores[rows] = self.probe.decision_function(vecs[good])
            probs[rows] = self.probe.predict_proba(vecs[good])[:, 1]
        calls = self.calibration.decide(np.nan_to_num(scores, nan=-np.inf))
        out = []
        for i in range(len(items)):
            if small[i]:
                h, w = shapes[i][:2]
                out.append([not_applicable(self.name, "clip-probe", f"image is {w}x{h} px; the classifier needs at "
                                           f"least {MIN_SIDE} px on the short side", TIER_CLASSIFIER)])
                continue
            if errors[i] is not None:
                out.append([Evidence(self.name, NONE, float("nan"), None, "clip-probe:error", WEAK, TIER_CLASSIFIER,
                                     {"error": errors[i]})])
                continue
            verdict, reason = {"synthetic": (SYNTHETIC, "clip-probe:above-threshold"),
                               "real": (REAL, "clip-probe:below-threshold"),
                               "uncertain": (NONE, "clip-probe:uncertain-band")}[calls[i]]
            detail = {"p_synthetic": float(probs[i]), "threshold": self.calibration.threshold,
                      "uncertain_threshold": self.calibration.uncertain_threshold,
                      "target_fpr": self.calibration.target_fpr, "backbone": self.tower.id, "layer": self.tower.layer,
                      "meaning": MEANING[calls[i]]}
            if shapes[i] is not None and len(shapes[i]) > 2 and shapes[i][2] > 1:
                detail["frames"] = f"animated ({shapes[i][2]} frames): the first frame was scored"
            out.append([Evidence(self.name, verdict, float(scores[i]), None, reason, MEDIUM, TIER_CLASSIFIER, detail)])
        return out


def image_shape(item: Item) -> tuple[int, ...] | None:
    """``(height, width[, frames])`` from decoded pixels or the file header (no decode); ``None`` if unreadable
    (the embedder then reports the decoding error)."""
    if item._rgb is not None:
        return tuple(item._rgb.shape[:2])
    if item.data is None:
        return None
    try:
        with Image.open(io.BytesIO(item.data)) as img:
            frames = int(getattr(img, "n_frames", 1)) if getattr(img, "is_animated", False) else 1
            return (img.height, img.width, frames) if frames > 1 else (img.height, img.width)
    except Exception:  # noqa: BLE001 - any header Pillow rejects is reported by the decoder, with its reason
        return None
