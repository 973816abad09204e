"""A small class-conditional DDPM for 28x28 grey images (Fashion-MNIST): the simulator's neural family,
and a public generator of synthetic images for other parts of provguard.

    gen = DDPMGenerator(seed=0).train(images, labels, steps=2000)   # images uint8 [N, 28, 28]
    fake = gen.sample(100, seed=1)                                   # uint8 [100, 28, 28]
    fake, ys = gen.sample(100, guidance=1.0, seed=1, return_labels=True)
    gen.save("gen.safetensors"); gen = DDPMGenerator.load("gen.safetensors")

Noise schedule: cosine (Nichol & Dhariwal 2021) over ``timesteps`` training steps; sampling is
deterministic DDIM (eta = 0) over ``sample_steps`` steps from seeded Gaussian noise. Classifier-free
guidance (label dropout 10% in training): ``eps = (1 + w) eps(x, y) - w eps(x, none)``; MAD's sampling
bias is ``lambda = 1 / (1 + w)``.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch.nn import functional as F

from provguard.sim.nets import TinyUNet
from provguard.sim.weights import load_module, save_module

N_CLASSES = 10


def to_unit(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, 28, 28]`` -> float32 ``[N, 1, 28, 28]`` in [-1, 1]."""
    x = torch.from_numpy(np.array(images, dtype=np.float32)) if not isinstance(images, torch.Tensor) else images.float()
    return (x / 127.5 - 1.0)[:, None]


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float ``[N, 1, 28, 28]`` (or ``[N, 28, 28]``) in [-1, 1] -> uint8 ``[N, 28, 28]`` (rounded, clipped)."""
    x = x.reshape(x.shape[0], 28, 28)
    return ((x.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).cpu().numpy()


def _alpha_bar(t: torch.Tensor) -> torch.Tensor:
    """Cosine-schedule cumulative signal level at continuous time ``t`` in [0, 1]."""
    s = 0.008
    return (torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2).clamp(1e-5, 1.0)


class DDPMGenerator:
    """Class-conditional DDPM (see module docstring). ``channels`` sets the U-Net width."""

    def __init__(self, channels: int = 16, timesteps: int = 400, seed: int = 0, device: str | torch.device = "cpu"):
        self.channels, self.timesteps, self.seed = channels, timesteps, seed
        self.device = torch.device(device)
        torch.manual_seed(seed)
        self.net = TinyUNet(channels, N_CLASSES).to(self.device)
        self.steps_trained = 0

    def copy(self) -> "DDPMGenerator":
        """An independent copy (for warm-starting the next generation)."""
        return copy.deepcopy(self)

    def train(self, images, labels=None, steps: int = 1000, batch: int = 64, lr: float = 2e-3,
              seed: int = 0, label_dropout: float = 0.1) -> "DDPMGenerator":
        """Train on uint8 images ``[N, 28, 28]`` (or float ``[N, 1, 28, 28]`` in [-1, 1]) with labels ``[N]`` (optional)."""
        x_all = images if isinstance(images, torch.Tensor) and images.is_floating_point() else to_unit(images)
        x_all = x_all.reshape(-1, 1, 28, 28).float().to(self.device)
        n = x_all.shape[0]
        if n == 0:
            raise ValueError("cannot train a DDPM on 0 images")
        y_all = (torch.full((n,), N_CLASSES, dtype=torch.long) if labels is None
                 else torch.as_tensor(np.array(labels)).long()).to(self.device)
        g = torch.Generator(device="cpu").manual_seed(int(seed))
        opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.net.train()
        for _ in range(int(steps)):
            idx = torch.randint(0, n, (min(batch, n),), generator=g)
            x0, y = x_all[idx], y_all[idx].clone()
            y[torch.rand(len(y), generator=g) < label_dropout] = N_CLASSES
            t = (torch.randint(1, self.timesteps + 1, (len(y),), generator=g).float() / self.timesteps).to(self.device)
            noise = torch.randn(x0.shape, generator=g).to(self.device)
            ab = _alpha_bar(t)[:, None, None, None]
            loss = F.mse_loss(self.net(ab.sqrt() * x0 + (1 - ab).sqrt() * noise, t, y), noise)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        self.steps_trained += int(steps)
        self.net.eval()
        return self

    @torch.no_grad()
    def sample_float(self, n: int, labels=None, guidance: float = 0.0, steps: int = 25, seed: int = 0,
                     batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x float32 [n, 1, 28, 28] in [-1, 1], labels [n])``; labels uniform over classes unless given."""
        g = torch.Generator(device="cpu").manual_seed(int(seed) & ((1 << 63) - 1))
        y = (torch.randint(0, N_CLASSES, (n,), generator=g) if labels is None
             else torch.as_tensor(np.asarray(labels)).long().reshape(n))
        x = torch.randn(n, 1, 28, 28, generator=g)
        times = torch.linspace(1.0, 0.0, steps + 1)
        self.net.eval()
        out = []
        for s in range(0, n, batch):
            xb, yb = x[s:s + batch].to(self.device), y[s:s + batch].to(self.device)
            for i in range(steps):
                t, t_next = times[i].item(), times[i + 1].item()
                tt = torch.full((len(yb),), t, device=self.device)
                eps = self.net(xb, tt, yb)
                if guidance:
                    eps = (1 + guidance) * eps - guidance * self.net(xb, tt, torch.full_like(yb, N_CLASSES))
                ab, ab_next = _alpha_bar(torch.tensor(t)), _alpha_bar(torch.tensor(t_next)) if t_next > 0 else torch.tensor(1.0)
                x0 = ((xb - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)
                xb = ab_next.sqrt() * x0 + (1 - ab_next).sqrt() * eps
            out.append(xb.clamp(-1, 1).cpu())
        return torch.cat(out), y

    def sample(self, n: int, labels=None, guidance: float = 0.0, steps: int = 25, seed: int = 0,
               return_labels: bool = False):
        """``n`` uint8 images ``[n, 28, 28]`` (and their class labels ``[n]`` if ``return_labels``)."""
        x, y = self.sample_float(n, labels, guidance, steps, seed)
        return (to_uint8(x), y.numpy()) if return_labels else to_uint8(x)

    def save(self, path) -> None:
        """Write ``path`` (.safetensors) and its ``.json`` config (no pickle)."""
        save_module(path, self.net, {"kind": "provguard.sim.DDPMGenerator", "channels": self.channels,
                                     "timesteps": self.timesteps, "seed": self.seed,
                                     "steps_trained": self.steps_trained})

    @classmethod
    def load(cls, path, device: str | torch.device = "cpu") -> "DDPMGenerator":
        state, meta = load_module(path)
        gen = cls(meta["channels"], meta["timesteps"], meta.get("seed", 0), device)
        gen.net.load_state_dict(state)
        gen.steps_trained = meta.get("steps_trained", 0)
        gen.net.eval()
        return gen
