"""Engine behaviour: fast path == per-sample path in distribution, filters, chunking, MAD's findings."""
import numpy as np
import pytest
import torch
from scipy import stats

from provguard.sim.config import SimConfig
from provguard.sim.engine import Engine, run

torch.set_num_threads(1)


def _final(cfg, name="logdet", t=None):
    res = run(cfg)
    return res.raw[(t or cfg.generations) - 1][name].numpy()


@pytest.mark.parametrize("loop,filt", [("synthetic", {}), ("fresh", {"filter_recall": 0.6, "filter_fpr": 0.2}),
                                       ("augment", {"watermark_strength": 1.0})])
def test_fast_path_matches_per_sample_path(loop, filt):
    cfg = SimConfig(loop=loop, dim=3, n_real=20, n_synth=30, generations=4, lam=0.9, chains=1500,
                    metrics="fast", **filt)
    for name in ("logdet", "mean_drift"):
        a = _final(cfg.replace(path="stats"), name)
        b = _final(cfg.replace(path="samples"), name)
        assert stats.ks_2samp(a, b).pvalue > 1e-3, name


def test_fast_path_differs_from_a_wrong_model():
    """The agreement test has power: lambda 0.9 vs 0.8 is detected."""
    cfg = SimConfig(loop="synthetic", dim=3, n_real=20, n_synth=30, generations=4, lam=0.9, chains=1500, metrics="fast")
    a = _final(cfg.replace(path="stats"))
    b = _final(cfg.replace(path="samples", lam=0.8))
    assert stats.ks_2samp(a, b).pvalue < 1e-6


@pytest.mark.parametrize("path", ["stats", "samples"])
def test_perfect_filter_in_fresh_loop_equals_real_only_loop(path):
    base = SimConfig(loop="fresh", dim=4, n_real=50, n_synth=200, generations=5, chains=12, metrics="fast", path=path)
    filtered = run(base.replace(filter_recall=1.0, filter_fpr=0.0))
    real_only = run(base.replace(n_synth=0))
    unfiltered = run(base)
    for t in range(5):
        assert torch.equal(filtered.raw[t]["w2sq"], real_only.raw[t]["w2sq"])
        assert float(filtered.raw[t]["_leak"].max()) == 0.0
    assert not torch.equal(unfiltered.raw[4]["w2sq"], real_only.raw[4]["w2sq"])


@pytest.mark.parametrize("model,extra", [("gaussian", {"path": "samples"}), ("gaussian", {"path": "stats"}),
                                         ("gmm", {"gmm_em_iters": 5}), ("categorical", {"dim": 30})])
def test_results_do_not_depend_on_chunk_size(model, extra):
    cfg = SimConfig(model=model, loop="fresh", n_real=100, n_synth=100, generations=3, chains=7,
                    filter_recall=0.5, eval_samples=40, **extra)
    a, b = run(cfg.replace(chunk=3)), run(cfg.replace(chunk=None))
    for t in range(3):
        for k in a.raw[t]:
            if k != "n_eff":  # n_eff shares one calibration; compared through the primary distance
                assert torch.allclose(a.raw[t][k], b.raw[t][k], rtol=1e-9, atol=1e-12, equal_nan=True), k


def test_sweep_points_share_random_numbers_and_match_single_runs():
    cfg = SimConfig(loop="fresh", dim=2, n_real=40, n_synth=80, generations=3, chains=5, metrics="fast")
    batched = Engine([cfg.replace(filter_recall=r) for r in (0.0, 0.5)]).run()
    single = run(cfg.replace(filter_recall=0.5))
    assert torch.allclose(batched.raw[2]["w2sq"][5:], single.raw[2]["w2sq"])


def test_mad_fully_synthetic_loop_collapses():
    res = run(SimConfig(loop="synthetic", dim=4, n_real=50, n_synth=50, generations=30, chains=200, metrics="fast"))
    logdet = [float(r["logdet"].mean()) for r in res.raw]
    w2 = [float(r["w2sq"].median()) for r in res.raw]
    assert logdet[-1] < logdet[0] - 2.0  # variance collapses
    assert w2[-1] > 5 * w2[0]


def test_mad_fixed_real_set_delays_but_does_not_prevent_collapse():
    kw = dict(dim=4, n_real=100, n_synth=100, generations=25, lam=0.8, chains=200, metrics="fast")
    synth = run(SimConfig(loop="synthetic", **kw))
    aug = run(SimConfig(loop="augment", **kw))
    fresh = run(SimConfig(loop="fresh", **kw))
    med = lambda r, t: float(r.raw[t - 1]["w2sq"].median())
    assert med(aug, 5) < med(synth, 5)  # delayed
    assert med(aug, 25) > 1.3 * med(aug, 1)  # but the model still degrades beyond its real-only start
    assert float(aug.raw[-1]["trace_ratio"].mean()) < 0.9  # diversity lost for good (fixed point 0.83)
    assert med(aug, 25) > med(fresh, 25)  # fresh data does better than a fixed real set


def test_mad_fresh_loop_reaches_a_fixed_point_independent_of_the_first_model():
    cfg = SimConfig(loop="fresh", dim=3, n_real=100, n_synth=100, generations=24, lam=0.9, chains=2000, metrics="fast")
    res = run(cfg)
    w = [r["w2sq"].numpy() for r in res.raw]
    early, late = np.mean([x.mean() for x in w[11:17]]), np.mean([x.mean() for x in w[18:24]])
    assert abs(early - late) < 0.1 * late  # stationary
    assert abs(np.corrcoef(w[0], w[-1])[0, 1]) < 0.1  # forgets the first model
    assert np.corrcoef(w[0], w[1])[0, 1] > 0.2  # (while the next generation does remember it)


def test_accumulate_keeps_error_bounded_while_replace_diverges():
    kw = dict(loop="synthetic", dim=2, n_real=50, n_synth=50, generations=40, chains=300, metrics="fast")
    replace = run(SimConfig(**kw))
    accumulate = run(SimConfig(accumulate=True, **kw))
    med = lambda r, t: float(r.raw[t - 1]["w2sq"].median())
    assert med(replace, 40) > 10 * med(replace, 1)
    assert med(accumulate, 40) < 3 * med(accumulate, 1)


def test_content_filter_truncates_real_tail_and_idealised_filter_does_not():
    kw = dict(loop="fresh", dim=2, n_real=400, n_synth=0, generations=1, chains=50, metrics="fast", filter_fpr=0.1)
    content = run(SimConfig(filter_kind="content", **kw))
    keyed = run(SimConfig(filter_kind="idealised", **kw))
    # truncating the tail shrinks the fitted variance; a key-based filter drops real data at random
    assert float(content.raw[0]["trace_ratio"].mean()) < 0.8
    assert abs(float(keyed.raw[0]["trace_ratio"].mean()) - 1.0) < 0.05
    assert float(keyed.raw[0]["_kept_real"].mean()) == pytest.approx(360, abs=6)


def test_stronger_marks_raise_recall_and_artifacts():
    out = {}
    for eps in (2.0, 5.0):
        cfg = SimConfig(loop="fresh", dim=4, n_real=200, n_synth=200, generations=6, chains=40, metrics="fast",
                        filter_kind="watermark", filter_fpr=0.01, watermark_strength=eps)
        res = run(cfg)
        leak = float(res.raw[-1]["_leak"].mean())
        unfiltered = run(cfg.replace(filter_kind="none", filter_fpr=0.0))
        out[eps] = (leak, float(unfiltered.raw[-1]["artifact_shift"].mean()))
    assert out[5.0][0] < out[2.0][0]  # higher recall -> less leak
    assert out[5.0][1] > out[2.0][1] > 0  # larger inherited artifact


def test_gmm_loses_rare_modes_first():
    res = run(SimConfig(model="gmm", loop="synthetic", n_real=200, n_synth=200, generations=20, lam=0.8,
                        chains=16, metrics="fast", gmm_em_iters=10))
    last = res.raw[-1]
    rare = float(last["rare_modes_lost"].mean()) / 2  # 2 rare modes
    common = float((last["modes_lost"] - last["rare_modes_lost"]).mean()) / 6  # 6 common modes
    assert rare >= 0.4
    assert rare > 5 * common


def test_categorical_loses_tail_tokens_unless_fresh_data():
    kw = dict(model="categorical", dim=500, n_real=1000, n_synth=1000, generations=15, chains=16, metrics="fast")
    synth, fresh = run(SimConfig(loop="synthetic", **kw)), run(SimConfig(loop="fresh", **kw))
    assert float(synth.raw[-1]["modes_lost"].mean()) > float(synth.raw[0]["modes_lost"].mean()) + 20
    assert float(synth.raw[-1]["tail_mass"].mean()) < float(fresh.raw[-1]["tail_mass"].mean())


@pytest.mark.parametrize("path", ["stats", "samples"])
def test_rank_deficient_fit_is_valid_and_measured_from_its_eigenvalues(path):
    """n = 4 samples in d = 5: rank 3, log det -inf, and W2 equal to an independent eigh computation."""
    cfg = SimConfig(loop="fresh", dim=5, n_real=4, n_synth=0, generations=1, chains=20, metrics="fast", path=path)
    res = run(cfg)
    mean = res.final_models[0].mean.numpy()
    cov = res.final_models[0].cov.numpy()
    for c in range(cfg.chains):
        assert np.linalg.matrix_rank(cov[c], tol=1e-10) == 3
        ev = np.linalg.eigvalsh(cov[c])
        ev[:2] = 0.0  # the null space of a fit on 4 points in 5-D
        w2 = (mean[c] ** 2).sum() + ev.sum() + 5 - 2 * np.sqrt(ev).sum()
        assert float(res.raw[0]["w2sq"][c]) == pytest.approx(w2, rel=1e-9)
    assert bool(torch.isneginf(res.raw[0]["logdet"]).all()) and bool((res.raw[0]["rank"] == 3).all())
    row = res.summary()[0]["metrics"]["logdet"]
    assert row["mean"] == -np.inf and "rank-deficient" in row["note"]


def test_rank_deficient_fast_path_matches_per_sample_path():
    cfg = SimConfig(loop="fresh", dim=6, n_real=5, n_synth=4, generations=3, lam=0.9, chains=1500, metrics="fast")
    for name in ("trace_ratio", "w2sq"):
        a = _final(cfg.replace(path="stats"), name)
        b = _final(cfg.replace(path="samples"), name)
        assert stats.ks_2samp(a, b).pvalue > 1e-3, name


def test_sample_metrics_run_on_a_nested_subsample_that_does_not_change_their_values():
    cfg = SimConfig(loop="fresh", dim=2, n_real=50, n_synth=50, generations=2, chains=12, eval_samples=30)
    small, large, every = (run(cfg.replace(sample_metric_chains=m)).raw[1] for m in (3, 7, 12))
    f3, f7 = ~torch.isnan(small["fd"]), ~torch.isnan(large["fd"])
    assert int(f3.sum()) == 3 and int(f7.sum()) == 7 and bool((f7 | ~f3).all())  # nested
    assert not torch.equal(f3, torch.arange(12) < 3)  # random, not the first replicates
    assert torch.equal(small["fd"][f3], every["fd"][f3]) and torch.equal(large["recall"][f7], every["recall"][f7])
    assert torch.equal(small["w2sq"], every["w2sq"])  # closed-form metrics on every chain
