"""Bad input fails before running with a message that names the option; the CLI's JSON schema."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from provguard.cli import main
from provguard.cli.common import command_flags
from provguard.cli.simulate import simulate
from provguard.sim.config import ConfigError, SimConfig, validate
from provguard.sim.engine import Engine

torch.set_num_threads(1)


@pytest.mark.parametrize("changes,needle", [
    ({"loop": "synthetic", "n_synth": 0}, "--n-synth > 0"),
    ({"filter_recall": 1.5}, "--filter-recall must be in [0, 1]"),
    ({"filter_fpr": -0.1}, "--filter-fpr must be in [0, 1]"),
    ({"dim": 50, "n_real": 1, "n_synth": 0}, "needs at least 2 training samples"),
    ({"filter_kind": "probe", "filter_fpr": 0.01, "probe_calibration": 50}, "--probe-calibration-samples"),
    ({"filter_kind": "probe", "filter_fpr": 0.1, "model": "categorical"}, "--filter probe needs vectors"),
    ({"filter_kind": "probe", "filter_recall": 0.5, "filter_fpr": 0.1}, "recall is an outcome"),
    ({"sample_metric_chains": -1}, "--sample-metric-chains must be >= 0"),
    ({"loop": "synthetic", "filter_recall": 1.0}, "no training data"),
    ({"n_real": 10 ** 7, "n_synth": 10 ** 7, "dim": 500, "path": "samples"}, "memory budget"),
    ({"filter_kind": "content", "filter_recall": 0.5, "filter_fpr": 0.1}, "recall is an outcome"),
    ({"filter_kind": "watermark", "filter_fpr": 0.01}, "--watermark-strength > 0"),
    ({"model": "categorical", "watermark_strength": 1.0}, "continuous family"),
    ({"lam": 0.0}, "--lambda must be > 0"),
])
def test_impossible_configs_fail_before_running(changes, needle):
    with pytest.raises(ConfigError, match=None) as info:
        Engine([SimConfig(**changes)])
    assert needle in info.value.message_for(command_flags(simulate))  # as the command line shows it
    assert "--" not in str(info.value)  # the library names parameters, not flags


def test_sweep_points_may_only_vary_per_chain_fields():
    with pytest.raises(ConfigError, match="may vary only"):
        Engine([SimConfig(), SimConfig(dim=3)])


def test_valid_default_config():
    validate(SimConfig())


def _invoke(args):
    return CliRunner().invoke(main, ["simulate", *args], catch_exceptions=False)


def test_cli_json_schema(tmp_path):
    res = _invoke(["--filter-recall", "0.9", "--generations", "3", "--chains", "4", "--eval-samples", "40",
                   "--out", str(tmp_path / "run"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["config"]["filter_recall"] == 0.9 and out["config"]["filter_kind"] == "idealised"
    assert [g["t"] for g in out["generations"]] == [1, 2, 3]
    for g in out["generations"]:
        for name in ("w2sq", "fd", "precision", "recall", "n_eff"):
            assert set(g["metrics"][name]) == {"mean", "std", "chains"}
            assert np.isfinite(g["metrics"][name]["mean"])
        assert 0 <= g["leak_fraction"] <= 1
    assert out["generations"][2]["leak_fraction"] == pytest.approx(0.2857, abs=0.03)
    assert out["baseline_generations"][2]["leak_fraction"] == pytest.approx(0.8, abs=0.01)
    for name in ("summary.json", "generations.csv", "distance.png", "leak_fraction.png", "precision_recall.png"):
        assert (tmp_path / "run" / name).is_file(), name


def test_cli_bad_input_exit_code():
    res = CliRunner().invoke(main, ["simulate", "--filter-recall", "2"])
    assert res.exit_code == 2
    assert "--filter-recall must be in [0, 1]" in res.output


def test_cli_sweep_and_validate(tmp_path):
    res = _invoke(["sweep", "--vary", "filter-recall=0,0.9", "--vary", "n-synth=100,400", "--generations", "3",
                   "--chains", "4", "--metrics", "fast", "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out["points"]) == 4 and np.array(out["phase"]["ratio"]).shape == (2, 2)
    assert (tmp_path / "phase.png").is_file()
    res = _invoke(["validate", "--chains", "400", "--only", "leak", "--json"])
    assert res.exit_code == 0, res.output
    assert all(law["ok"] for law in json.loads(res.stdout)["laws"])


@pytest.mark.parametrize("args", [[], ["sweep"], ["validate"]])
def test_help_has_examples(args):
    res = CliRunner().invoke(main, ["simulate", *args, "--help"])
    assert res.exit_code == 0 and "Example" in res.output
