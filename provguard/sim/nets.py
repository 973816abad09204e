"""Small convolutional networks for 28x28 grey images: a time/class-conditional U-Net and a LeNet-style classifier."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding ``[B, dim]`` of diffusion times ``t [B]`` (float, 0..1)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int):
        super().__init__()
        self.n1, self.c1 = nn.GroupNorm(8, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.n2, self.c2 = nn.GroupNorm(8, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.emb = nn.Linear(emb, cout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, e):
        h = self.c1(F.silu(self.n1(x))) + self.emb(e)[:, :, None, None]
        return self.skip(x) + self.c2(F.silu(self.n2(h)))


class TinyUNet(nn.Module):
    """Noise predictor ``eps(x [B,1,28,28], t [B], y [B]) -> [B,1,28,28]``; class ``n_classes`` means "no label"."""

    def __init__(self, ch: int = 32, n_classes: int = 10):
        super().__init__()
        emb = 4 * ch
        self.ch = ch
        self.t_mlp = nn.Sequential(nn.Linear(ch, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.y_emb = nn.Embedding(n_classes + 1, emb)
        self.inp = nn.Conv2d(1, ch, 3, padding=1)
        self.d1 = ResBlock(ch, ch, emb)
        self.down1 = nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1)   # 14x14
        self.d2 = ResBlock(2 * ch, 2 * ch, emb)
        self.down2 = nn.Conv2d(2 * ch, 2 * ch, 3, stride=2, padding=1)  # 7x7
        self.mid = ResBlock(2 * ch, 2 * ch, emb)
        self.up2 = nn.ConvTranspose2d(2 * ch, 2 * ch, 4, stride=2, padding=1)  # 14x14
        self.u2 = ResBlock(4 * ch, 2 * ch, emb)
        self.up1 = nn.ConvTranspose2d(2 * ch, ch, 4, stride=2, padding=1)  # 28x28
        self.u1 = ResBlock(2 * ch, ch, emb)
        self.out = nn.Sequential(nn.GroupNorm(8, ch), nn.SiLU(), nn.Conv2d(ch, 1, 3, padding=1))

    def forward(self, x, t, y):
        e = self.t_mlp(timestep_embedding(t, self.ch)) + self.y_emb(y)
        h1 = self.d1(self.inp(x), e)
        h2 = self.d2(self.down1(h1), e)
        h = self.mid(self.down2(h2), e)
        h = self.u2(torch.cat([self.up2(h), h2], 1), e)
        h = self.u1(torch.cat([self.up1(h), h1], 1), e)
        return self.out(h)


class LeNet(nn.Module):
    """Classifier ``[B,1,28,28] -> logits [B,10]``; ``features`` gives the 64-d penultimate layer."""

    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(32 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
        self.head = nn.Linear(64, n_classes)

    def features(self, x):
        return self.fc(self.conv(x))

    def forward(self, x):
        return self.head(self.features(x))
