"""Fashion-MNIST real images and a small VAE generator for the detector benchmarks.

This is benchmark support, deliberately separate from the simulator (``provguard.sim``): a
convolutional VAE (latent 16) trained for a fixed time budget on CPU, sampled from its prior. Its
samples are the "synthetic" class for the Fashion-MNIST probe experiment.
"""
from __future__ import annotations

import gzip
import time
from pathlib import Path

import numpy as np

FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def load_fashion_mnist(split: str = "train") -> np.ndarray:
    """``uint8 (N, 28, 28)`` images of the ``train`` (60k) or ``t10k`` (10k) split."""
    path = FMNIST_DIR / f"{split}-images-idx3-ubyte.gz"
    if not path.exists():
        raise RuntimeError(f"{path} is missing: `apt-get install dataset-fashion-mnist` (or run `make setup`)")
    return np.frombuffer(gzip.open(path).read(), np.uint8, offset=16).reshape(-1, 28, 28)


def to_rgb(grey: np.ndarray) -> list[np.ndarray]:
    """``(N, 28, 28)`` -> list of ``uint8 (28, 28, 3)``."""
    return [np.repeat(g[:, :, None], 3, axis=2) for g in grey]


def train_vae(images: np.ndarray, seconds: float = 90.0, seed: int = 0, latent: int = 16):
    """Train a conv VAE on ``uint8 (N, 28, 28)`` for about ``seconds`` of CPU time; returns the decoder."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    enc = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
                        nn.Flatten(), nn.Linear(64 * 7 * 7, 2 * latent))
    dec = nn.Sequential(nn.Linear(latent, 64 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
                        nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1))
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=2e-3)
    x_all = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]
    gen = torch.Generator().manual_seed(seed)
    start, steps = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        idx = torch.randint(0, len(x_all), (128,), generator=gen)
        x = x_all[idx]
        mu, logvar = enc(x).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        logits = dec(z)
        rec = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum() / len(x)
        opt.zero_grad()
        (rec + kl).backward()
        opt.step()
        steps += 1
    dec.eval()
    dec.steps_trained = steps
    return dec


def sample_vae(decoder, n: int, seed: int = 1, latent: int = 16) -> np.ndarray:
    """``uint8 (n, 28, 28)`` samples from the prior (decoder mean, rounded)."""
    import torch

    with torch.no_grad():
        z = torch.randn(n, latent, generator=torch.Generator().manual_seed(seed))
        p = torch.sigmoid(decoder(z))[:, 0].numpy()
    return np.clip(np.rint(p * 255), 0, 255).astype(np.uint8)
