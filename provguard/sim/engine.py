"""The batched loop engine: chains (replicates x sweep points) on one leading tensor axis.

``run(points)`` simulates every point of a sweep (configs that differ only in
:data:`provguard.sim.config.PER_CHAIN` fields) for ``chains`` replicates each, in chunks that bound
memory. Replicate ``r`` of every point uses the random streams of chain ``r`` (common random numbers
across points), and a chain's numbers do not depend on the chunk or batch it runs in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from provguard.devices import pick_device
from provguard.sim import config as C
from provguard.sim.families import create_family
from provguard.sim.families.base import EvalContext, count_mask, take_model
from provguard.sim.filters import conformal_threshold, idealised_keep, leak_fraction, threshold_keep
from provguard.sim.loops import Pool, adds_fresh_real
from provguard.sim.probe_filter import ProbeFilter
from provguard.sim.rng import ChainStreams
from provguard.sim.watermark import VectorMark

CALIBRATION_SEED_OFFSET = 0x5EED
SUBSAMPLE_SEED_OFFSET = 0x5AB5


def sample_metric_replicates(seed: int, replicates: int, n: int) -> torch.Tensor:
    """Boolean ``[replicates]``: the ``n`` replicates that get sample-based metrics.

    Each replicate has a uniform key from its own stream (seed offset, tag ``sample-metric-chains``);
    the ``n`` smallest keys are chosen. The subsample is random (not the first replicates) and nested:
    raising ``n`` adds chains without changing the chosen ones, and a chosen chain's metrics are drawn
    from its own ``eval/*`` streams, so they do not depend on ``n``.
    """
    if n >= replicates:
        return torch.ones(replicates, dtype=torch.bool)
    keys = ChainStreams(seed + SUBSAMPLE_SEED_OFFSET, torch.arange(replicates)).uniform(0, "sample-metric-chains", (1,))
    chosen = torch.zeros(replicates, dtype=torch.bool)
    chosen[torch.argsort(keys[:, 0])[:n]] = True
    return chosen


@dataclass
class ChainParams:
    """Per-chain settings ``[C]`` and the sweep point each chain belongs to."""

    point: torch.Tensor
    replicate: torch.Tensor
    lam: torch.Tensor
    recall: torch.Tensor
    fpr: torch.Tensor
    n_real: torch.Tensor
    n_synth: torch.Tensor
    eps: torch.Tensor

    @classmethod
    def build(cls, points: list[C.SimConfig], device) -> "ChainParams":
        reps = points[0].chains
        f64 = dict(dtype=torch.float64, device=device)
        i64 = dict(dtype=torch.int64, device=device)

        def col(attr, kw):
            return torch.tensor([getattr(p, attr) for p in points], **kw).repeat_interleave(reps)

        return cls(point=torch.arange(len(points), **i64).repeat_interleave(reps),
                   replicate=torch.arange(reps, **i64).repeat(len(points)),
                   lam=col("lam", f64), recall=col("filter_recall", f64), fpr=col("filter_fpr", f64),
                   n_real=col("n_real", i64), n_synth=col("n_synth", i64), eps=col("watermark_strength", f64))

    def take(self, index: torch.Tensor) -> "ChainParams":
        return ChainParams(*(getattr(self, f)[index] for f in self.__dataclass_fields__))


@dataclass
class RunResult:
    """Per-generation per-chain values: ``raw[t-1][name] -> [C]`` tensors (CPU), and the chain layout."""

    points: list[C.SimConfig]
    params: ChainParams
    raw: list[dict[str, torch.Tensor]] = field(default_factory=list)
    feature_hash: str | None = None
    n_eff_constant: torch.Tensor | None = None  # [C] n_real * E[primary distance of a real-only fit]
    final_models: list = field(default_factory=list)  # one batched model per chunk, chunks in chain order

    def summary(self, point: int = 0) -> list[dict]:
        """Mean/std over the replicates of ``point`` for every finished generation (the ``--json`` rows).

        ``n_eff_of_mean`` is ``n_real E[D_real-only] / mean(D)`` over the chains (``D``: the primary
        distance), with its standard error: the effective sample size of the average model, which
        unlike the chain mean of ``n_eff`` is not inflated by a few lucky chains.

        Each metric is ``{"mean", "std", "chains"}`` over the chains that computed it (sample-based
        metrics: the ``--sample-metric-chains`` subsample; NaN marks the others). A metric that is
        ``-inf`` on some chains (``logdet`` of a rank-deficient fit) has mean ``-inf`` and a ``note``.
        """
        sel = (self.params.point.cpu() == point)
        rows = []
        for t, values in enumerate(self.raw, start=1):
            metrics = {name: _describe(v[sel]) for name, v in values.items() if not name.startswith("_")}
            leak = values["_leak"][sel]
            cfg = self.points[point]
            row = {"t": t, "metrics": metrics, "leak_fraction": float(leak.mean()),
                   "leak_fraction_std": float(leak.std()) if leak.numel() > 1 else 0.0,
                   "kept_real": float(values["_kept_real"][sel].mean()),
                   "kept_synth": float(values["_kept_synth"][sel].mean())}
            if cfg.filter != "none" and "_filter_recall" in values:
                row["filter_recall"] = _nanmean(values["_filter_recall"][sel])
                row["filter_fpr"] = _nanmean(values["_filter_fpr"][sel])
            if cfg.filter in ("none", "idealised") and t > 1:
                row["leak_fraction_theory"] = _pool_leak_theory(cfg, t)
            if self.n_eff_constant is not None and "_primary" in values:
                d = values["_primary"][sel].to(torch.float64)
                mean = float(d.mean())
                const = float(self.n_eff_constant[sel.to(self.n_eff_constant.device)][0])
                se = float(d.std() / math.sqrt(d.numel())) if d.numel() > 1 else math.nan
                row["n_eff_of_mean"] = {"value": const / mean, "se": const * se / mean ** 2}
            rows.append(row)
        return rows


def _nanmean(x: torch.Tensor) -> float:
    x = x[~torch.isnan(x)]
    return float(x.mean()) if x.numel() else math.nan


def _describe(v: torch.Tensor) -> dict:
    """``{"mean", "std", "chains"}`` of one metric over chains ``[C]`` (NaN = not computed on that chain)."""
    x = v.to(torch.float64)
    x = x[~torch.isnan(x)]
    n = int(x.numel())
    out = {"mean": math.nan, "std": math.nan, "chains": n}
    neg_inf = int(torch.isneginf(x).sum())
    if neg_inf:
        out.update(mean=-math.inf, note=f"-inf on {neg_inf} of {n} chains (rank-deficient fit: n <= d samples)")
        return out
    if n:
        out["mean"] = float(x.mean())
        out["std"] = float(x.std()) if n > 1 else 0.0
    return out


def _pool_leak_theory(cfg: C.SimConfig, t: int) -> float:
    """Expected kept-synthetic share of generation ``t``'s pool under an idealised filter (ratio of means)."""
    r, f = (cfg.filter_recall, cfg.filter_fpr) if cfg.filter == "idealised" else (0.0, 0.0)
    gens = range(max(1, t - cfg.pool_memory + 1), t + 1)
    synth = sum(cfg.n_synth for g in gens if g > 1)
    real = sum(cfg.n_real for g in gens if adds_fresh_real(cfg.loop, g))
    if cfg.loop == "augment":
        real = cfg.n_real
    return float(leak_fraction(r, f, real, synth)) if real + synth > 0 else math.nan


def check_points(points: list[C.SimConfig]) -> None:
    """Validate every point, and that they differ only in per-chain fields."""
    if not points:
        raise C.ConfigError("nothing to simulate: no sweep points")
    for p in points:
        C.validate(p)
    shared = [f for f in C.SimConfig.__dataclass_fields__ if f not in C.PER_CHAIN.values()]
    for p in points[1:]:
        for f in shared:
            if getattr(p, f) != getattr(points[0], f):
                raise C.ConfigError(f"sweep points may vary only {', '.join(C.PER_CHAIN)}; {f} differs")
    kinds = {p.filter for p in points}
    if len(kinds) > 1 and not kinds <= {"none", "idealised"}:
        raise C.ConfigError(f"sweep points must share one detector filter kind (got {', '.join(sorted(kinds))})")
    if points[0].model == "gaussian" and points[0].path == "stats" and points[0].filter not in ("none", "idealised"):
        raise C.ConfigError("{path} stats cannot run a detector filter (it needs samples to score); use {path} auto")


class _Chunk:
    """State of one chunk of chains: streams, params, current model, pool."""

    def __init__(self, index, streams, params, pool, metric_chains):
        self.index, self.streams, self.params, self.pool = index, streams, params, pool
        self.metric_chains = metric_chains  # [k] positions in this chunk that get the sample metrics
        self.model = None


class Engine:
    """Runs the loop for a list of sweep points (see module docstring)."""

    def __init__(self, points: list[C.SimConfig]):
        check_points(points)
        self.points = points
        self.cfg = points[0]
        kinds = {p.filter for p in points}
        self.filter = "idealised" if "idealised" in kinds else self.cfg.filter
        self.device = pick_device(self.cfg.device)
        self.family = create_family(self.cfg, self.device)
        self.params = ChainParams.build(points, self.device)
        self.stats_path = self.family.has_stats_path and self.cfg.path != "samples" and \
            self.filter in ("none", "idealised")
        self.mark = self._build_mark() if (self.filter == "watermark" or bool((self.params.eps > 0).any())) else None
        self.thresholds = self._build_thresholds()
        n_sub = 0 if self.cfg.metrics == "fast" else self.cfg.sample_metric_chains
        self.metric_replicates = sample_metric_replicates(self.cfg.seed, self.cfg.chains, n_sub).to(self.device)

    # set-up -------------------------------------------------------------------------------------
    def _calibration_samples(self, n: int) -> torch.Tensor:
        """``n`` held-out real samples ``[n, ...]`` (one pseudo-chain with its own seed)."""
        return self.family.calibration_samples(n, self.cfg.seed + CALIBRATION_SEED_OFFSET)

    def _build_mark(self) -> VectorMark:
        moments = self.family.real_moments()
        if moments is not None:  # exact real mean and covariance
            mean, cov = moments
            return VectorMark.from_real(mean.numel(), mean, cov, device=self.device)
        cal = self._calibration_samples(20000)
        flat = cal.reshape(cal.shape[0], -1)
        return VectorMark.from_real(flat.shape[1], flat.to(torch.float64).mean(0), flat, device=self.device)

    def _build_thresholds(self) -> torch.Tensor | None:
        if self.filter not in ("content", "watermark"):
            return None
        cal = self._calibration_samples(20000)[None]
        scores = self.family.surprisal(cal) if self.filter == "content" else self.mark.score(cal)
        return conformal_threshold(scores[0], self.params.fpr)

    def calibrate_n_eff(self) -> torch.Tensor | None:
        """Per-chain ``n_real * E[primary distance of a real-only fit on n_real samples]``, or None (images).

        Families with an exact sufficient-statistic draw use it here on both paths: the constant is an
        expectation over real-only fits, which the fast path draws from exactly at O(d^2) per fit.
        """
        if not self.family.calibrate_with_chains:
            return None
        out = torch.empty(len(self.params.point), dtype=torch.float64, device=self.device)
        reps = min(self.cfg.calibration_chains, self.family.max_calibration_chains)
        for n in torch.unique(self.params.n_real).tolist():
            streams = ChainStreams(self.cfg.seed + CALIBRATION_SEED_OFFSET, torch.arange(reps), self.device)
            real = self.family.real_model(reps)
            ones = torch.ones(reps, dtype=torch.float64, device=self.device)
            counts = torch.full((reps,), n, device=self.device)
            if self.family.has_stats_path:  # exact in distribution on either path: no per-sample draws
                group = self.family.draw_stats(real, counts, ones, None, streams, 1, "real", False)
                model = self.family.fit_stats([group])
            else:
                group = self._draw(real, counts, ones, None, streams, 1, "real",
                                   synthetic=False, drop=torch.zeros_like(ones), detector=None)
                model = self.family.fit([group], None, streams, 1)
            ctx = EvalContext(real, streams, 1, ones, self.cfg.eval_samples, self.cfg.k)
            dist = self.family.metrics(model, ctx)[self.family.primary]
            out[self.params.n_real == n] = n * float(dist.mean())
        return out

    # one group of data --------------------------------------------------------------------------
    def _draw(self, model, n, lam, eps, streams, gen, tag, synthetic, drop, detector):
        """Draw ``n [C]`` samples of ``model`` (marked with ``eps`` if given) and apply the filter.

        ``drop [C]``: the idealised filter's drop probability; ``detector``: ``(score_fn, thresholds [C])``
        of a detector filter, or None. Returns a :class:`Samples` (per-sample path) or family ``Stats``
        (fast path) of the kept rows. On the fast path the idealised filter's kept count is one exact
        ``Binomial(n, 1 - drop)`` draw per chain (no per-sample uniforms).
        """
        shift = self.mark.shift(eps) if (eps is not None and self.mark is not None) else None
        if self.stats_path:
            counts = n
            if bool((drop > 0).any()):
                counts = streams.binomial(gen, f"filter/{tag}/kept", n, 1.0 - drop.to(torch.float64))
            return self.family.draw_stats(model, counts, lam, shift, streams, gen, tag, synthetic)
        n_max = int(n.max()) if n.numel() else 0
        keep = count_mask(n, n_max) & idealised_keep(streams, gen, tag, n_max, drop)
        group = self.family.sample(model, n_max, lam, streams, gen, tag)
        group.synthetic = synthetic
        if shift is not None:
            group.x = self.mark.embed(group.x, eps)
        if detector is not None:
            score, thresholds = detector
            keep = keep & threshold_keep(score(group.x), thresholds)
        group.mask = group.mask & keep
        return group

    def _detector(self, ch: _Chunk, gen: int, real):
        """``(score_fn, thresholds [C])`` of this chunk's detector filter at ``gen``, or None."""
        if self.filter == "content":
            return self.family.surprisal, self.thresholds[ch.index]
        if self.filter == "watermark":
            return self.mark.score, self.thresholds[ch.index]
        if self.filter == "probe" and gen > 1:
            embed = None if self.mark is None else (lambda x: self.mark.embed(x, ch.params.eps))
            probe = ProbeFilter.fit(self.family, ch.model, real, ch.params.lam, ch.params.fpr, ch.streams, gen,
                                    self.cfg.probe_train, self.cfg.probe_calibration, embed)
            return probe.score, probe.thresholds
        return None

    def _step(self, ch: _Chunk, gen: int) -> dict[str, torch.Tensor]:
        cfg, p, fam = self.cfg, ch.params, self.family
        idealised = self.filter == "idealised"
        zero = torch.zeros_like(p.lam)
        real = fam.real_model(len(ch.index))
        detector = self._detector(ch, gen, real)
        ones = torch.ones_like(p.lam)
        added = []
        if gen > 1:
            added.append(self._draw(ch.model, p.n_synth, p.lam, p.eps, ch.streams, gen, "synth", True,
                                    p.recall if idealised else zero, detector))
        if adds_fresh_real(cfg.loop, gen):
            added.append(self._draw(real, p.n_real, ones, None, ch.streams, gen, "real", False,
                                    p.fpr if idealised else zero, detector))
        ch.pool.add(gen, added)
        groups = ch.pool.training_set()
        kept = (lambda g: g.n) if self.stats_path else (lambda g: g.count)
        kept_s = sum(kept(g) for g in groups if g.synthetic) + zero
        kept_r = sum(kept(g) for g in groups if not g.synthetic) + zero
        ch.model = fam.fit_stats(groups) if self.stats_path else fam.fit(groups, ch.model, ch.streams, gen)
        ctx = EvalContext(real, ch.streams, gen, p.lam, cfg.eval_samples, cfg.k, self.mark)
        out = fam.metrics(ch.model, ctx)
        for idx in torch.split(ch.metric_chains, C.SAMPLE_METRIC_BATCH) if ch.metric_chains.numel() else ():
            for name, v in fam.sample_metrics(take_model(ch.model, idx), ctx.take(idx, take_model(real, idx))).items():
                out.setdefault(name, torch.full_like(p.lam, math.nan))[idx] = v.to(torch.float64)
        out["_leak"] = kept_s / (kept_s + kept_r).clamp_min(1.0)
        out["_kept_real"], out["_kept_synth"] = kept_r, kept_s
        nan = torch.full_like(p.lam, math.nan)
        out["_filter_recall"], out["_filter_fpr"] = nan, nan.clone()
        for g, n in zip(added, ([p.n_synth] if gen > 1 else []) + [p.n_real]):
            n = n.to(torch.float64)
            share = torch.where(n > 0, 1.0 - kept(g) / n.clamp_min(1.0), nan)
            out["_filter_recall" if g.synthetic else "_filter_fpr"] = share
        return out

    # the run ------------------------------------------------------------------------------------
    def run(self, on_generation: Callable[[int, RunResult], None] | None = None,
            progress: Callable[[int], None] | None = None) -> RunResult:
        """Simulate all generations; ``on_generation(t, result)`` after each (results so far survive Ctrl-C)."""
        cfg = self.cfg
        n_chains = len(self.params.point)
        size = C.chunk_size(cfg, n_chains, self.stats_path)
        size = min(size, self.family.max_chains_per_chunk or size)
        chunks = []
        for start in range(0, n_chains, size):
            index = torch.arange(start, min(start + size, n_chains), device=self.device)
            params = self.params.take(index)
            metric_chains = torch.nonzero(self.metric_replicates[params.replicate]).flatten()
            chunks.append(_Chunk(index, ChainStreams(cfg.seed, params.replicate, self.device), params,
                                 Pool(cfg.loop, cfg.pool_memory), metric_chains))
        result = RunResult(self.points, self.params)
        n_eff_const = self.calibrate_n_eff()
        for gen in range(1, cfg.generations + 1):
            parts = [self._step(ch, gen) for ch in chunks]
            names = list(dict.fromkeys(k for part in parts for k in part))  # chunks without subsample chains
            values = {k: torch.cat([part[k] if k in part else torch.full_like(part["_leak"], math.nan)
                                    for part in parts]).to(torch.float64) for k in names}
            primary = values.get(self.family.primary)
            if primary is not None:
                if n_eff_const is None:  # calibrate on generation 1 (real-only) of each point
                    n_eff_const = torch.empty_like(primary)
                    for pt in range(len(self.points)):
                        sel = self.params.point == pt
                        n_eff_const[sel] = self.params.n_real[sel].to(torch.float64) * primary[sel].mean()
                values["n_eff"] = n_eff_const / primary.clamp_min(1e-300)
                values["_primary"] = primary
                result.n_eff_constant = n_eff_const.cpu()
            result.raw.append({k: v.cpu() for k, v in values.items()})
            result.feature_hash = getattr(self.family, "feature_hash", None)
            if on_generation is not None:
                on_generation(gen, result)
            if progress is not None:
                progress(1)
        result.final_models = [ch.model for ch in chunks]
        return result


def run(points: C.SimConfig | list[C.SimConfig], **kwargs) -> RunResult:
    """Convenience wrapper: ``Engine(points).run(**kwargs)``."""
    return Engine([points] if isinstance(points, C.SimConfig) else list(points)).run(**kwargs)
