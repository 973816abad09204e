"""CLIP's ViT image tower (OpenAI layout, QuickGELU) in plain torch, for the built-in fp32 CLIP tower.

The module holds the same parameters under the same names as open_clip's ``VisionTransformer`` (so
its state dict loads with ``strict=True``) and runs the same operations in the same order, so its
outputs equal open_clip's bit for bit (tested). Two things open_clip does not give a caller:

- **Import cost:** this module needs torch only; ``import open_clip`` also loads transformers and
  torchvision's model zoo (several seconds per process start, paid by every ``scan`` and ``filter``).
- **Early exit:** :meth:`ClipViT.forward_features` runs only as many blocks as the deepest layer
  asked for (``cls10`` alone skips blocks 11 and 12, a sixth of the forward pass).

Shapes: pixels ``(B, 3, S, S)`` float32, CLIP-normalised; residual stream ``(B, 1 + (S/P)^2, width)``.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F


class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` that casts back to the input dtype (open_clip's ``LayerNorm``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps).to(x.dtype)


class QuickGELU(nn.Module):
    """OpenAI CLIP's activation, ``x * sigmoid(1.702 x)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    """Pre-norm residual block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``; ``(B, L, width)``."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_1 = LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, 4 * width)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(4 * width, width))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.ln_1(x)
        x = x + self.attn(q, q, q, need_weights=False, attn_mask=None)[0]
        return x + self.mlp(self.ln_2(x))


class Blocks(nn.Module):
    """The block stack, under the name open_clip's state dict uses (``transformer.resblocks.N``)."""

    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.ModuleList([Block(width, heads) for _ in range(layers)])


class ClipViT(nn.Module):
    """CLIP ViT image tower; defaults are ViT-B/16 at 224 px (width 768, 12 blocks, 12 heads, 512-d output)."""

    def __init__(self, width: int = 768, layers: int = 12, heads: int = 12, patch: int = 16, image_size: int = 224,
                 output_dim: int = 512):
        super().__init__()
        tokens = (image_size // patch) ** 2 + 1
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.positional_embedding = nn.Parameter(torch.zeros(tokens, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Blocks(width, layers, heads)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(torch.zeros(width, output_dim))

    @property
    def depth(self) -> int:
        return len(self.transformer.resblocks)

    def embed_patches(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` -> token sequence ``(B, 1 + (S/P)^2, width)`` after ``ln_pre``."""
        x = self.conv1(pixels)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding.view(1, 1, -1).expand(x.shape[0], -1, -1).to(x.dtype)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        return self.ln_pre(x)

    def forward_features(self, pixels: torch.Tensor, blocks: set[int] | frozenset[int] = frozenset(),
                         pooled: bool = False) -> tuple[dict[int, torch.Tensor], torch.Tensor | None]:
        """Residual streams after the 1-based ``blocks`` (``{N: (B, L, width)}``) and, if ``pooled``, the
        pre-projection class token ``(B, width)`` (after ``ln_post``). Runs only the blocks it needs."""
        if any(not 1 <= b <= self.depth for b in blocks):
            raise ValueError(f"blocks must lie in 1..{self.depth}, got {sorted(blocks)}")
        last = self.depth if pooled else max(blocks, default=0)
        x = self.embed_patches(pixels)
        states = {}
        for index, block in enumerate(self.transformer.resblocks[:last], start=1):
            x = block(x)
            if index in blocks:
                states[index] = x
        pre = self.ln_post(x)[:, 0] if pooled else None
        return states, pre

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """The projected image embedding ``(B, output_dim)``."""
        return self.forward_features(pixels, pooled=True)[1] @ self.proj
