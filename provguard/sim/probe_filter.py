"""A real detector inside the loop: a linear probe refitted every generation (``--filter probe``).

At generation ``t`` each chain fits :class:`provguard.detectors.probe.LinearProbe` (logistic
regression, balanced classes) on ``probe_train`` fresh outputs of its previous model (label 1) against
as many real samples (label 0), on the family's probe features (raw vectors for the Gaussian and GMM
families, frozen LeNet features for images); the threshold is the conformal ``(1 - fpr)`` order
statistic of the probe's scores on ``probe_calibration`` held-out real samples
(:func:`provguard.detectors.calibration.conformal_threshold`). Pool samples scoring above it are
dropped. The probe's recall is an outcome, reported per generation.

A linear probe on raw vectors sees only what a hyperplane separates - a shifted mean, such as a
watermark's shift - not a shrunk covariance; that is the point of putting a real detector in the loop.
"""
from __future__ import annotations

import numpy as np
import torch

from provguard.sim.rng import ChainStreams

#: held-out real data is drawn under an ``eval/`` tag (the image family serves those from its t10k split)
CALIBRATION_TAG = "eval/probe-calibration"


class ProbeFilter:
    """One fitted probe and threshold per chain; ``score(x [C, N, ...]) -> [C, N]`` decision values."""

    def __init__(self, family, probes: list, thresholds: torch.Tensor):
        self.family = family
        self.probes = probes
        self.thresholds = thresholds  # [C] float64, drop where score > threshold

    @classmethod
    def fit(cls, family, model, real, lam: torch.Tensor, fpr: torch.Tensor, streams: ChainStreams, gen: int,
            n_train: int, n_calibration: int, embed=None) -> "ProbeFilter":
        """Fit and calibrate the probes of the chains of ``streams`` on ``model``'s outputs (bias ``lam [C]``).

        ``embed(x [C, N, ...])`` marks the outputs as the generator would (watermark), or None.
        """
        from provguard.detectors.calibration import conformal_threshold
        from provguard.detectors.probe import LinearProbe

        ones = torch.ones_like(lam)
        synth = family.sample(model, n_train, lam, streams, gen, "probe/synth").x
        synth = family.probe_features(synth if embed is None else embed(synth)).cpu().numpy()
        realx = family.probe_features(family.sample(real, n_train, ones, streams, gen, "probe/real").x).cpu().numpy()
        cal = family.probe_features(family.sample(real, n_calibration, ones, streams, gen, CALIBRATION_TAG).x)
        cal = cal.cpu().numpy()
        y = np.concatenate([np.zeros(n_train), np.ones(n_train)])
        probes, thr = [], []
        for i in range(len(streams)):
            probe = LinearProbe(kind="logistic", C=1.0, normalize=family.probe_normalize, class_weight="balanced")
            probe.fit(np.concatenate([realx[i], synth[i]]), y)
            probes.append(probe)
            thr.append(conformal_threshold(probe.decision_function(cal[i]), float(fpr[i])))
        return cls(family, probes, torch.tensor(thr, dtype=torch.float64, device=lam.device))

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Decision values ``[C, N]`` (higher = more synthetic) of samples ``x [C, N, ...]``."""
        feats = self.family.probe_features(x).cpu().numpy()
        out = np.stack([p.decision_function(f) for p, f in zip(self.probes, feats)])
        return torch.as_tensor(out, dtype=torch.float64, device=x.device)
