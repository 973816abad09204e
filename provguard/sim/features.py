"""A frozen feature extractor for image metrics: a LeNet trained once on real Fashion-MNIST.

Without Inception weights offline, MAD's practice for MNIST applies: a small classifier trained on the
real data, then frozen; FD/precision/recall/KID use its 64-d penultimate features. Its SHA-256 is
recorded with every result. Trained deterministically on first use and cached as safetensors + JSON
under ``$PROVGUARD_CACHE`` (default ``~/.cache/provguard``)/sim/.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from provguard.sim.nets import LeNet
from provguard.sim.neural import to_unit
from provguard.sim.weights import load_module, save_module, state_hash

CACHE_NAME = "fmnist-lenet-v1"


def cache_dir() -> Path:
    return Path(os.environ.get("PROVGUARD_CACHE", Path.home() / ".cache" / "provguard")) / "sim"


class FeatureExtractor:
    """Frozen LeNet: ``features(uint8 [N,28,28] or float [N,1,28,28]) -> float64 [N, 64]``, ``predict -> [N]``."""

    def __init__(self, net: LeNet):
        self.net = net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.hash = state_hash(self.net)

    @classmethod
    def train(cls, images, labels, steps: int = 1500, batch: int = 128, seed: int = 0) -> "FeatureExtractor":
        """Train on real uint8 images ``[N, 28, 28]`` with labels ``[N]`` (deterministic for a seed)."""
        torch.manual_seed(seed)
        net = LeNet()
        x_all, y_all = to_unit(images), torch.as_tensor(np.array(labels)).long()
        g = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(net.parameters(), lr=2e-3)
        for _ in range(steps):
            idx = torch.randint(0, len(y_all), (batch,), generator=g)
            loss = F.cross_entropy(net(x_all[idx]), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return cls(net)

    @classmethod
    def default(cls) -> "FeatureExtractor":
        """The cached extractor trained on the Fashion-MNIST training split (trained and cached on first use)."""
        path = cache_dir() / f"{CACHE_NAME}.safetensors"
        if path.is_file():
            state, _meta = load_module(path)
            net = LeNet()
            net.load_state_dict(state)
            return cls(net)
        from provguard.data import load_fashion_mnist

        images, labels = load_fashion_mnist("train")
        fx = cls.train(images, labels)
        save_module(path, fx.net, {"kind": "provguard.sim.FeatureExtractor", "data": "fashion-mnist/train",
                                   "steps": 1500, "seed": 0})
        return fx

    def save(self, path) -> None:
        save_module(path, self.net, {"kind": "provguard.sim.FeatureExtractor"})

    @torch.no_grad()
    def _run(self, images, fn, batch: int = 1024):
        x = images if isinstance(images, torch.Tensor) and images.is_floating_point() else to_unit(images)
        x = x.reshape(-1, 1, 28, 28).float()
        return torch.cat([fn(x[i:i + batch]) for i in range(0, len(x), batch)]) if len(x) else fn(x)

    def features(self, images) -> torch.Tensor:
        return self._run(images, self.net.features).to(torch.float64)

    def predict(self, images) -> torch.Tensor:
        return self._run(images, lambda x: self.net(x).argmax(1))
