"""The neural family: DDPM generator API, Fashion-MNIST loader, a tiny loop run (a handful of steps)."""
import numpy as np
import pytest
from conftest import require_asset
import torch

from provguard.data import DatasetMissing, load_fashion_mnist

torch.set_num_threads(1)


def test_missing_dataset_names_the_install_command(tmp_path):
    with pytest.raises(DatasetMissing, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("train", root=tmp_path)


@pytest.fixture(scope="module")
def fmnist():
    try:
        return load_fashion_mnist("train")
    except DatasetMissing as exc:
        require_asset(False, f"Fashion-MNIST ({exc})")


def test_loader_shapes(fmnist):
    x, y = fmnist
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8 and y.max() == 9


def test_generator_train_sample_save_load(fmnist, tmp_path):
    from provguard.sim.neural import DDPMGenerator

    x, y = fmnist
    gen = DDPMGenerator(channels=8, seed=0).train(x[:256], y[:256], steps=3, batch=16)
    imgs, labels = gen.sample(5, guidance=1.0, steps=3, seed=7, return_labels=True)
    assert imgs.shape == (5, 28, 28) and imgs.dtype == np.uint8 and labels.shape == (5,)
    gen.save(tmp_path / "g.safetensors")
    assert (tmp_path / "g.json").is_file()
    again = DDPMGenerator.load(tmp_path / "g.safetensors")
    assert np.array_equal(again.sample(5, guidance=1.0, steps=3, seed=7), imgs)


def test_image_family_loop_runs_with_watermark_filter(fmnist):
    from provguard.sim.config import SimConfig
    from provguard.sim.engine import run
    from provguard.sim.features import FeatureExtractor

    x, y = fmnist
    fx = FeatureExtractor.train(x[:512], y[:512], steps=3, batch=32)
    cfg = SimConfig(model="ddpm", n_real=32, n_synth=32, generations=2, ddpm_train_steps=2, ddpm_batch=16,
                    ddpm_sample_steps=2, eval_samples=16, chains=1, extra={"feature_extractor": fx},
                    watermark_strength=8.0, filter_kind="watermark", filter_fpr=0.01)
    res = run(cfg)
    assert res.feature_hash == fx.hash and len(res.feature_hash) == 64
    row = res.summary()[1]
    for name in ("fd", "precision", "recall", "n_eff", "artifact_tpr"):
        assert np.isfinite(row["metrics"][name]["mean"])
    assert row["kept_synth"] < 32 * 0.5  # strong marks are caught


def test_image_family_probe_filter_reports_its_recall_per_generation(fmnist):
    """``--filter probe`` on images: a probe on frozen LeNet features separates marked DDPM outputs from real ones."""
    from provguard.sim.config import SimConfig
    from provguard.sim.engine import run
    from provguard.sim.features import FeatureExtractor

    x, y = fmnist
    fx = FeatureExtractor.train(x[:512], y[:512], steps=3, batch=32)
    cfg = SimConfig(model="ddpm", n_real=32, n_synth=32, generations=3, ddpm_train_steps=2, ddpm_batch=16,
                    ddpm_sample_steps=2, eval_samples=16, chains=2, extra={"feature_extractor": fx},
                    watermark_strength=8.0, filter_kind="probe", filter_fpr=0.1, probe_train=64,
                    probe_calibration=64)
    rows = run(cfg).summary()
    assert rows[0].get("filter_recall") is None or np.isnan(rows[0]["filter_recall"])  # generation 1 is real only
    for row in rows[1:]:
        # a 2-step DDPM's outputs are far from Fashion-MNIST: the probe catches most of them
        assert row["filter_recall"] > 0.7
        assert row["kept_synth"] < 32 * 0.5
        assert 0.0 <= row["filter_fpr"] <= 0.35  # calibrated at 0.1 on 64 held-out real images
