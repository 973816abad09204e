"""Issue 11: the user's own filter (--filter-from), required recall, the probe filter, readable output."""
import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from scipy import stats

from provguard.cli import main
from provguard.sim.config import ConfigError, SimConfig
from provguard.sim.engine import run
from provguard.sim.operating_point import read_operating_point

torch.set_num_threads(1)


def _cp(k, n):
    """Clopper-Pearson 95% interval, computed here from the beta quantiles."""
    return (0.0 if k == 0 else stats.beta.ppf(0.025, k, n - k + 1), 1.0 if k == n else stats.beta.ppf(0.975, k + 1, n - k))


@pytest.fixture
def probe_eval(tmp_path):
    """The JSON `provguard probe eval --json` writes, made by the same function from labelled scores."""
    from provguard.detectors.evaluation import summarize

    rng = np.random.default_rng(0)
    real, synth = rng.normal(0, 1, 1000), rng.normal(3, 1, 400)
    rep = {"probe": "p.safetensors", **summarize(real, synth), "failed": []}
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(rep))
    return path, rep


def test_probe_eval_operating_point_uses_the_largest_fpr_and_exact_intervals(probe_eval):
    path, rep = probe_eval
    op = read_operating_point(path)
    assert op.fpr == 0.01 and op.tpr == rep["tpr_at_fpr"]["0.01"]
    assert op.tpr_ci == pytest.approx(tuple(rep["tpr_ci"]["0.01"]))
    assert op.fpr_ci == pytest.approx(_cp(10, 1000), rel=1e-9)
    assert op.arms()["pessimistic"] == (op.tpr_ci[0], op.fpr_ci[1])
    assert read_operating_point(path, at_fpr=0.001).fpr == 0.001


def test_calibrated_threshold_and_labelled_counts(tmp_path):
    p = tmp_path / "cal.json"
    p.write_text(json.dumps({"auc": 0.99, "n_real": 500, "n_synthetic": 200, "tpr_at_fpr": {"0.01": 0.9},
                             "tpr_ci": {"0.01": [0.85, 0.94]}, "at_threshold": {"threshold": 1.2, "fpr": 0.02, "tpr": 0.95}}))
    op = read_operating_point(p)
    assert (op.tpr, op.fpr) == (0.95, 0.02)
    assert op.tpr_ci == pytest.approx(_cp(190, 200)) and op.fpr_ci == pytest.approx(_cp(10, 500))
    q = tmp_path / "counts.json"
    q.write_text(json.dumps({"tp": 90, "fn": 10, "fp": 3, "tn": 297}))
    op = read_operating_point(q)
    assert (op.tpr, op.fpr) == (0.9, 0.01) and op.tpr_ci == pytest.approx(_cp(90, 100))


@pytest.mark.parametrize("doc,needle", [
    ("not json", "not a filter evaluation"),
    ({"hello": 1}, "not a filter evaluation"),
    ({"tpr": 1.5, "fpr": 0.01, "tpr_ci": [0.9, 1], "fpr_ci": [0, 0.02]}, "outside [0, 1]"),
    ({"tpr": 0.9, "fpr": -0.1, "tpr_ci": [0.8, 0.95], "fpr_ci": [0, 0.02]}, "outside [0, 1]"),
    ({"tpr": 0.9, "fpr": 0.01}, "no confidence interval"),
    ({"auc": 0.9, "n_real": 100, "n_synthetic": 100, "tpr_at_fpr": {"0.01": 0.8}, "tpr_ci": {"0.01": None}},
     "no confidence interval"),
])
def test_bad_evaluations_name_the_option(tmp_path, doc, needle):
    p = tmp_path / "bad.json"
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(ConfigError) as info:
        read_operating_point(p)
    assert str(info.value).startswith(f"evaluation {p}") and needle in str(info.value)
    res = CliRunner().invoke(main, ["simulate", "--filter-from", str(p), "-T", "2", "--chains", "2"])
    assert res.exit_code == 2 and f"error: --filter-from {p}" in res.output and needle in res.output


def test_filter_from_runs_the_band_in_one_batch(probe_eval):
    path, _ = probe_eval
    op = read_operating_point(path)
    res = CliRunner().invoke(main, ["simulate", "--filter-from", str(path), "-T", "3", "--chains", "6", "--dim", "2",
                                    "--metrics", "fast", "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["config"]["filter_recall"] == op.tpr and out["config"]["filter_fpr"] == op.fpr
    assert out["band"]["pessimistic"]["config"]["filter_recall"] == pytest.approx(op.tpr_ci[0])
    assert out["band"]["pessimistic"]["config"]["filter_fpr"] == pytest.approx(op.fpr_ci[1])
    assert out["band"]["optimistic"]["config"]["filter_recall"] == pytest.approx(op.tpr_ci[1])
    assert out["baseline_config"]["filter_recall"] == 0.0
    assert "buys" in out["conclusion"] and "Your filter" in out["conclusion"]
    # the leak fraction of each arm follows its own rates (the pool-leak law)
    for arm in (out, out["band"]["pessimistic"]):
        row = (arm.get("generations"))[-1]
        assert row["leak_fraction_theory"] == pytest.approx(
            (1 - arm["config"]["filter_recall"]) * 800 / ((1 - arm["config"]["filter_fpr"]) * 200
                                                          + (1 - arm["config"]["filter_recall"]) * 800))


def test_required_recall_cli_schema_and_leak_law(tmp_path):
    res = CliRunner().invoke(main, ["simulate", "required-recall", "--metric", "leak_fraction", "--tolerance", "0.2",
                                    "--dim", "1", "--n-real", "100", "--n-synth", "400", "--filter-fpr", "0.1",
                                    "-T", "3", "--chains", "400", "--rounds", "3", "--grid", "4",
                                    "--out", str(tmp_path), "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    exact = 1 - 0.2 * 0.9 * 100 / (0.8 * 400)
    assert {"required_recall", "criterion", "mc_error"} <= set(out)
    assert 0 < out["mc_error"] < 0.01
    assert abs(out["required_recall"] - exact) <= 4 * out["mc_error"]
    assert (tmp_path / "required_recall.png").is_file() and (tmp_path / "required_recall.json").is_file()


def test_required_recall_unreachable_reports_the_best_value():
    res = CliRunner().invoke(main, ["simulate", "required-recall", "--tolerance", "0.9", "--filter-fpr", "0.5",
                                    "--dim", "1", "-T", "4", "--chains", "64", "--rounds", "1", "--json"])
    assert res.exit_code == 1
    out = json.loads(res.stdout)
    assert out["required_recall"] is None and out["reachable"] is False
    assert 0.3 < out["best_reachable_value"] < 0.7  # half the real data is dropped: about 0.5 of its worth
    assert "Not reachable" in out["conclusion"]


def test_probe_filter_catches_a_mean_shift_and_not_a_shrunk_covariance():
    """A linear probe separates watermarked outputs (a shifted mean) but not N(0, lam I) from N(0, I)."""
    base = SimConfig(loop="fresh", dim=4, n_real=200, n_synth=200, generations=3, chains=3, metrics="fast",
                     filter_kind="probe", filter_fpr=0.05, probe_train=300, probe_calibration=400)
    marked = run(base.replace(watermark_strength=4.0, lam=1.0)).summary()
    shrunk = run(base.replace(lam=0.5)).summary()
    assert marked[0].get("filter_recall") is None or math.isnan(marked[0]["filter_recall"])  # gen 1: real only
    assert all(r["filter_recall"] > 0.8 for r in marked[1:])
    assert all(r["filter_recall"] < 0.3 for r in shrunk[1:])
    for r in marked[1:] + shrunk[1:]:
        assert r["filter_fpr"] == pytest.approx(0.05, abs=0.05)


def test_default_output_has_a_setup_line_and_a_conclusion():
    res = CliRunner().invoke(main, ["simulate", "--filter-recall", "0.9", "-T", "3", "--chains", "4",
                                    "--eval-samples", "40"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0].startswith("fresh loop | gaussian d=8 | n_real=200, n_synth=800")
    assert "filter: idealised (recall 0.9, FPR 0)" in lines[0]
    assert "synthetic share of pool" in lines[1] and "n_eff (real samples worth) (no filter)" in lines[1]
    assert lines[-1].startswith("At generation 3") and "the filter buys" in lines[-1]
