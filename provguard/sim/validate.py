"""Exact-law checks of the simulator: each returns theory, simulated value and its standard error.

``run_all(chains)`` is what ``provguard simulate validate`` prints and what the tests assert; a law
passes when ``|simulated - theory| <= 4 * se``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from scipy import stats as _stats

from provguard.sim import metrics as M
from provguard.sim.config import SimConfig
from provguard.sim.engine import Engine, run
from provguard.sim.families.categorical import zipf
from provguard.sim.families.gaussian import fresh_moment_law, log_moment_law
from provguard.sim.filters import leak_fraction
from provguard.sim.rng import ChainStreams

TOLERANCE_SE = 4.0


@dataclass
class Law:
    name: str
    theory: float
    simulated: float
    se: float

    @property
    def z(self) -> float:
        return (self.simulated - self.theory) / self.se if self.se > 0 else (0.0 if self.simulated == self.theory else math.inf)

    @property
    def ok(self) -> bool:
        return abs(self.z) <= TOLERANCE_SE

    def as_dict(self) -> dict:
        return {"law": self.name, "theory": self.theory, "simulated": self.simulated, "se": self.se,
                "z": self.z, "ok": self.ok}


def _mean_law(name: str, theory: float, x: torch.Tensor) -> Law:
    x = x.to(torch.float64)
    return Law(name, float(theory), float(x.mean()), float(x.std() / math.sqrt(x.numel())))


def _var_law(name: str, theory: float, x: torch.Tensor) -> Law:
    """Sample variance with the delta-method SE ``sqrt((m4 - var^2) / N)``."""
    x = x.to(torch.float64)
    c = x - x.mean()
    var = float((c ** 2).mean())
    m4 = float((c ** 4).mean())
    return Law(name, float(theory), var * x.numel() / (x.numel() - 1), math.sqrt(max(m4 - var ** 2, 0) / x.numel()))


def gaussian_log_moments(chains: int, path: str = "stats", t: int = 8, n: int = 10, lam: float = 0.9) -> list[Law]:
    """1-D fully synthetic loop: E and Var of log sigma_t^2, and E[sigma_2^2] (raw mean at small t)."""
    cfg = SimConfig(loop="synthetic", dim=1, n_real=n, n_synth=n, generations=t, lam=lam, chains=chains,
                    metrics="fast", path=path, estimator="unbiased")
    res = run(cfg)
    mean, var = log_moment_law(t, n, lam, "unbiased", 1)
    k, big_d = n - 1, n - 1
    logs = res.raw[t - 1]["logdet"]
    return [_mean_law(f"E[log sigma_{t}^2] 1-D n={n} lam={lam} ({path})", mean, logs),
            _var_law(f"Var[log sigma_{t}^2] 1-D = t*trigamma(k/2) ({path})", var, logs),
            _mean_law(f"E[sigma_2^2] = lam*(k/D)^2 ({path})", lam * (k / big_d) ** 2,
                      torch.exp(res.raw[1]["logdet"]))]


def gaussian_logdet_drift(chains: int, path: str = "stats", d: int = 4, n: int = 12, t: int = 5,
                          lam: float = 0.95, estimator: str = "mle") -> list[Law]:
    """d-dim log-det drift over ``t`` generations of the fully synthetic loop."""
    cfg = SimConfig(loop="synthetic", dim=d, n_real=n, n_synth=n, generations=t, lam=lam, chains=chains,
                    metrics="fast", path=path, estimator=estimator)
    res = run(cfg)
    mean, _ = log_moment_law(t, n, lam, estimator, d)
    return [_mean_law(f"E[log det Sigma_{t}] d={d} n={n} {estimator} ({path})", mean, res.raw[t - 1]["logdet"])]


def categorical_laws(chains: int) -> list[Law]:
    """Gini-Simpson decay ``(1-1/M)^t`` and fixation probabilities ``p_0i`` (V=3, M=8)."""
    v, m, t = 3, 8, 6
    cfg = SimConfig(model="categorical", loop="synthetic", dim=v, n_real=m, n_synth=m, generations=t,
                    chains=chains, zipf_exponent=1.0, metrics="fast")
    res = run(cfg)
    p0 = zipf(v, 1.0, "cpu")
    gini0 = 1.0 - float((p0 ** 2).sum())
    laws = [_mean_law(f"E[Gini-Simpson_{t}] = (1-1/M)^t (1-sum p0^2), M={m}", (1 - 1 / m) ** t * gini0,
                      res.raw[t - 1]["gini_simpson"])]
    return laws


def categorical_fixation(chains: int) -> list[Law]:
    """P(chain fixes on token i) = p_0i (neutral Wright-Fisher), from final model probabilities."""
    v, m = 3, 8
    cfg = SimConfig(model="categorical", loop="synthetic", dim=v, n_real=m, n_synth=m, generations=120,
                    chains=chains, zipf_exponent=1.0, metrics="fast")
    res = run(cfg)
    p0 = zipf(v, 1.0, "cpu")
    final = torch.cat([m.p for m in res.final_models])
    return [_mean_law(f"P(fix on token {i}) = p0_{i} = {float(p0[i]):.3f}", float(p0[i]), final[:, i])
            for i in range(v)]


def leak_law(chains: int) -> list[Law]:
    """Realised leak fraction of an idealised filter vs ``(1-r)n_s / ((1-f)n_r + (1-r)n_s)`` (ratio of means)."""
    r, f, nr, ns = 0.7, 0.1, 300, 600
    cfg = SimConfig(loop="fresh", dim=2, n_real=nr, n_synth=ns, generations=2, filter_recall=r, filter_fpr=f,
                    chains=chains, metrics="fast")
    res = run(cfg)
    ks, kr = res.raw[1]["_kept_synth"], res.raw[1]["_kept_real"]
    return [_mean_law("kept synthetic = (1-r) n_s", (1 - r) * ns, ks),
            _mean_law("kept real = (1-f) n_r", (1 - f) * nr, kr),
            Law("leak fraction a (ratio of means)", leak_fraction(r, f, nr, ns), float(ks.mean() / (ks.mean() + kr.mean())),
                float((ks / (ks + kr)).std() / math.sqrt(chains)))]


def binomial_count_law(chains: int) -> list[Law]:
    """Fast path: the idealised filter's kept counts are exact ``Binomial(n, 1 - rate)`` draws (mean,
    variance and one CDF value), with no per-sample uniforms."""
    r, f, nr, ns = 0.7, 0.2, 50, 40
    cfg = SimConfig(loop="fresh", dim=1, n_real=nr, n_synth=ns, generations=2, filter_recall=r, filter_fpr=f,
                    chains=chains, metrics="fast", path="stats")
    res = run(cfg)
    ks, kr = res.raw[1]["_kept_synth"], res.raw[1]["_kept_real"]
    k0 = int(_stats.binom.median(ns, 1 - r))
    return [_mean_law(f"E[kept synthetic] = n_s(1-r) (binomial, n_s={ns}, r={r})", ns * (1 - r), ks),
            _var_law("Var[kept synthetic] = n_s r (1-r)", ns * r * (1 - r), ks),
            _var_law(f"Var[kept real] = n_r f (1-f) (n_r={nr}, f={f})", nr * f * (1 - f), kr),
            _mean_law(f"P(kept synthetic <= {k0}) = binomial CDF", float(_stats.binom.cdf(k0, ns, 1 - r)),
                      (ks <= k0).to(torch.float64))]


def fresh_fixed_point_law(chains: int, d: int = 100, n_real: int = 100, n_synth: int = 900, lam: float = 0.9,
                          t: int = 6, recall: float = 0.0, fpr: float = 0.0) -> list[Law]:
    """MAD's fresh-data Gaussian loop (default: d = 100, 100 real + 900 synthetic, so generation 1 is a
    rank-deficient fit): E[tr Sigma_t]/d and E|mu_t|^2 against the exact recursion of
    :func:`provguard.sim.families.gaussian.fresh_moment_law` (with the filter's binomial counts)."""
    cfg = SimConfig(loop="fresh", dim=d, n_real=n_real, n_synth=n_synth, generations=t, lam=lam, chains=chains,
                    metrics="fast", filter_recall=recall, filter_fpr=fpr)
    res = run(cfg)
    laws = []
    for g in sorted({1, t}):
        s, q = fresh_moment_law(g, n_real, n_synth, lam, "unbiased", recall, fpr)
        tag = f"d={d} n_r={n_real} n_s={n_synth} lam={lam}" + (f" r={recall} f={fpr}" if recall or fpr else "")
        laws += [_mean_law(f"E[tr Sigma_{g}]/d fresh loop {tag}", s, res.raw[g - 1]["trace_ratio"]),
                 _mean_law(f"E|mu_{g}|^2 fresh loop {tag}", d * q, res.raw[g - 1]["mean_drift"] ** 2)]
    return laws


def required_recall_laws(chains: int) -> list[Law]:
    """``required-recall`` (bisection over batched runs) against exact laws, within its MC error:

    * leak criterion: the recall where the idealised filter's leak fraction
      ``(1-r) n_s / ((1-f) n_r + (1-r) n_s)`` equals ``a`` is ``1 - a (1-f) n_r / ((1-a) n_s)``;
    * diversity criterion: the recall where the steady-state ``E[tr Sigma_t]/d`` (exact recursion with
      binomial kept counts, :func:`fresh_moment_law`) reaches ``tol`` x the real-only loop's (= 1).
    """
    from scipy.optimize import brentq

    from provguard.sim.required import required_recall

    laws = []
    a, f, nr, ns = 0.1, 0.1, 100, 400
    cfg = SimConfig(loop="fresh", dim=1, n_real=nr, n_synth=ns, generations=4, filter_fpr=f, chains=chains,
                    metrics="fast")
    ans = required_recall(cfg, "leak_fraction", a, rounds=3, grid=4)
    laws.append(Law(f"required recall for leak <= {a} (f={f}, n_r={nr}, n_s={ns}) = 1 - a(1-f)n_r/((1-a)n_s)",
                    1 - a * (1 - f) * nr / ((1 - a) * ns), ans.required_recall, ans.mc_error))
    lam, tol, t, d, nr, ns, f = 0.8, 0.95, 10, 2, 50, 200, 0.05
    cfg = SimConfig(loop="fresh", dim=d, n_real=nr, n_synth=ns, generations=t, lam=lam, filter_fpr=f,
                    chains=chains, metrics="fast")
    steady = range(t // 2 + 1, t + 1)

    def margin(r):
        return sum(fresh_moment_law(g, nr, ns, lam, "unbiased", r, f)[0] for g in steady) / len(steady) - tol

    ans = required_recall(cfg, "trace_ratio", tol, rounds=3, grid=4)
    laws.append(Law(f"required recall for E[tr Sigma]/d >= {tol} x real-only (lam={lam}, f={f})",
                    brentq(margin, 0.0, 1.0, xtol=1e-10), ans.required_recall, ans.mc_error))
    return laws


def watermark_artifact_law(chains: int) -> list[Law]:
    """Fresh loop, lam=1, marks of strength eps on synthetic data: the model's shift along the key
    direction has the fixed point ``eps * n_s / n_r`` (each refit averages real (0) and marked model
    outputs: m' = a (m + eps), a = n_s / (n_r + n_s))."""
    eps, nr, ns, t = 0.5, 400, 400, 14
    cfg = SimConfig(loop="fresh", dim=4, n_real=nr, n_synth=ns, generations=t, watermark_strength=eps,
                    chains=chains, metrics="fast")
    res = run(cfg)
    return [_mean_law(f"artifact shift at t={t} -> eps*n_s/n_r", eps * ns / nr * (1 - (ns / (nr + ns)) ** (t - 1)),
                      res.raw[t - 1]["artifact_shift"])]


def content_truncation_law(chains: int) -> list[Law]:
    """A content filter with FPR f on 1-D real data (no synthetic) keeps |x| <= c: the refit variance is
    the truncated-normal variance ``1 - 2 c phi(c) / (1 - f)``."""
    f = 0.2
    cfg = SimConfig(loop="fresh", dim=1, n_real=200, n_synth=0, generations=1, filter_kind="content", filter_fpr=f,
                    chains=chains, metrics="fast")
    eng = Engine([cfg])
    res = eng.run()
    c = math.sqrt(2.0 * float(eng.thresholds[0]))
    p = 2.0 * _stats.norm.sf(c)
    theory = 1.0 - 2.0 * c * _stats.norm.pdf(c) / (1.0 - p)
    return [_mean_law(f"content filter FPR={f}: Var kept real = truncated variance (c={c:.3f})", theory,
                      torch.exp(res.raw[0]["logdet"]))]


def metric_laws(chains: int, d: int = 6, n: int = 300, k: int = 5) -> list[Law]:
    """P = Q sanity laws: E[density] = 1, E[coverage] = 1 - prod (N-j)/(N+M-j), FD bias, E[KID] = 0."""
    streams = ChainStreams(99, torch.arange(chains), "cpu")
    a = streams.normal(0, "metric/a", (n, d))
    b = streams.normal(0, "metric/b", (n, d))
    pr = M.prdc(a, b, k)
    cov_theory = 1.0 - math.prod((n - j) / (n + n - j) for j in range(1, k + 1))
    return [_mean_law("E[density] = 1 (P = Q)", 1.0, pr["density"]),
            _mean_law("E[coverage] = 1 - prod (N-j)/(N+M-j) (P = Q)", cov_theory, pr["coverage"]),
            _mean_law("E[precision] = E[recall] (P = Q)", float(pr["recall"].mean()), pr["precision"]),
            _mean_law(f"E[FD] ~ (2d + d(d+1)/2)/n (d={d}, n={n})", (2 * d + d * (d + 1) / 2) / n, M.fd(a, b)),
            _mean_law("E[KID] = 0 (P = Q, unbiased)", 0.0, M.kid(a, b))]


CHECKS = (
    ("gaussian log-moments (fast path)", lambda c: gaussian_log_moments(c, "stats")),
    ("gaussian log-moments (per-sample path)", lambda c: gaussian_log_moments(c, "samples")),
    ("gaussian log-det drift (fast path)", lambda c: gaussian_logdet_drift(c, "stats")),
    ("gaussian log-det drift (per-sample path, unbiased)", lambda c: gaussian_logdet_drift(c, "samples", estimator="unbiased")),
    ("categorical diversity", categorical_laws),
    ("categorical fixation", categorical_fixation),
    ("idealised filter leak", leak_law),
    ("idealised filter kept counts (binomial, fast path)", binomial_count_law),
    ("fresh-loop fixed point, d=100 rank-deficient start (MAD)", lambda c: fresh_fixed_point_law(max(100, c // 10))),
    ("fresh-loop moments with a filter (binomial counts)",
     lambda c: fresh_fixed_point_law(c, d=3, n_real=30, n_synth=60, lam=0.8, t=6, recall=0.5, fpr=0.1)),
    ("required recall (bisection) vs exact laws", required_recall_laws),
    ("watermark artifact inheritance", watermark_artifact_law),
    ("content filter truncation", content_truncation_law),
    ("metric sanity (P = Q)", lambda c: metric_laws(max(16, c // 50))),
)


def run_all(chains: int = 4000, only: str | None = None) -> list[Law]:
    """Every check in :data:`CHECKS` (or those whose title contains ``only``)."""
    laws: list[Law] = []
    for title, fn in CHECKS:
        if only is None or only in title:
            laws.extend(fn(chains))
    return laws
