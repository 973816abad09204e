"""Saving small networks as safetensors + a JSON sidecar (never pickle), with a content hash."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def state_hash(module: torch.nn.Module) -> str:
    """SHA-256 (hex) over the module's parameters and buffers, in name order, as little-endian bytes."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_module(path: str | Path, module: torch.nn.Module, meta: dict) -> Path:
    """Write ``path`` (``.safetensors``) and ``path.json`` (``meta`` plus ``sha256``); returns the tensor file."""
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(path))
    meta = dict(meta, sha256=state_hash(module))
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return path


def load_module(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state_dict, meta)`` from :func:`save_module` files."""
    path = Path(path).with_suffix(".safetensors")
    if not path.is_file() or not path.with_suffix(".json").is_file():
        raise FileNotFoundError(f"no saved model at {path} (+ .json)")
    return load_file(str(path)), json.loads(path.with_suffix(".json").read_text())
