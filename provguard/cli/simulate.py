"""``provguard simulate``: batched self-consuming (MAD) loop simulations, sweeps and exact-law validation."""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from provguard.cli.common import (EXIT_FATAL, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, emit_json, fail, format_table,
                                  user_errors)
from provguard.sim.families import list_families


def _sim_options(fn):
    """Options shared by ``simulate`` and ``simulate sweep`` (they build a SimConfig)."""
    opts = [
        click.option("--loop", type=click.Choice(["fresh", "synthetic", "augment"]), default="fresh", show_default=True,
                     help="fresh: new real data each generation; synthetic: only the last model's samples; "
                          "augment: a fixed real set plus synthetic"),
        click.option("--model", type=click.Choice(list_families()), default="gaussian",
                     show_default=True, help="model family"),
        click.option("--dim", type=int, default=None, help="data dimension (vocabulary size for categorical) "
                                                           "[default: gaussian 8, gmm 2, categorical 1000]"),
        click.option("--n-real", type=int, default=200, show_default=True, help="real samples per generation"),
        click.option("--n-synth", type=int, default=800, show_default=True, help="synthetic samples per generation"),
        click.option("--generations", "-T", type=int, default=20, show_default=True),
        click.option("--lambda", "lam", type=float, default=0.8, show_default=True,
                     help="sampling bias (1 = unbiased; <1 = less diverse, as deployed generators are: "
                          "N(mu, lambda*Sigma), temperature, guidance w = 1/lambda - 1)"),
        click.option("--estimator", type=click.Choice(["unbiased", "mle"]), default="unbiased", show_default=True),
        click.option("--filter", "filter_kind", type=click.Choice(["none", "idealised", "content", "watermark", "probe"]),
                     default=None, help="filter between the data pool and training [default: idealised when "
                                        "--filter-recall/--filter-fpr is given, else none]; probe: a linear probe "
                                        "refitted each generation on the last model's outputs vs real data"),
        click.option("--filter-recall", type=float, default=0.0, show_default=True,
                     help="idealised filter: share of synthetic samples dropped"),
        click.option("--filter-fpr", type=float, default=0.0, show_default=True,
                     help="share of real samples dropped (idealised), or the detector's target FPR"),
        click.option("--watermark-strength", type=float, default=0.0, show_default=True,
                     help="mark strength eps (real-data std units along the key direction) carried by synthetic samples"),
        click.option("--accumulate", is_flag=True, help="keep all past data (Gerstgrasser et al.) instead of replacing it"),
        click.option("--memory", type=int, default=1, show_default=True, help="generations of data kept (1 = replace)"),
        click.option("--chains", type=int, default=16, show_default=True, help="independent replicates"),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
        click.option("--chunk", type=int, default=None, help="chains per batch [default: fit the memory budget]"),
        click.option("--path", type=click.Choice(["auto", "stats", "samples"]), default="auto", show_default=True,
                     help="gaussian: sufficient-statistic fast path or per-sample draws"),
        click.option("--metrics", type=click.Choice(["all", "fast"]), default="all", show_default=True,
                     help="all: closed-form metrics on every chain plus the sample metrics (k-NN, FD, KID) on "
                          "--sample-metric-chains chains; fast: closed-form only"),
        click.option("--sample-metric-chains", type=int, default=64, show_default=True,
                     help="replicates per arm that also get the sample-based metrics (a random nested subsample "
                          "with its own stream: a chain's values do not depend on this number)"),
        click.option("--probe-train-samples", "probe_train", type=int, default=512, show_default=True,
                     help="--filter probe: samples per class the probe is fitted on, per generation"),
        click.option("--probe-calibration-samples", "probe_calibration", type=int, default=2000, show_default=True,
                     help="--filter probe: held-out real samples its threshold is calibrated on"),
        click.option("-k", "k", type=int, default=5, show_default=True, help="k of the k-NN metrics"),
        click.option("--eval-samples", type=int, default=256, show_default=True, help="samples per chain for sample metrics"),
        click.option("--ddpm-train-steps", type=int, default=300, show_default=True),
        click.option("--mem-budget-gb", type=float, default=2.0, show_default=True),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="folder for summary.json, generations.csv and PNG plots"),
        click.option("--json", "as_json", is_flag=True, help="print the result as JSON on stdout"),
    ]
    return functools.reduce(lambda f, o: o(f), reversed(opts), fn)


#: read_operating_point's parameters -> the options that set them
_EVALUATION_FLAGS = {"evaluation": "--filter-from", "at_fpr": "--filter-at-fpr"}


def _config(kw: dict):
    from provguard.sim.config import SimConfig

    fields = {k: v for k, v in kw.items() if k in SimConfig.__dataclass_fields__}
    return SimConfig(**fields)


#: metric -> column title in the table (what the number is)
_TITLES = {"w2sq": "W2^2 to real", "l2sq": "L2^2 to real", "fd": "FD to real (samples)", "precision": "precision",
           "recall": "recall (diversity)", "modes_lost": "modes lost", "n_eff": "n_eff (real samples worth)"}


def _cell(metric: dict | None) -> str:
    if not metric or metric["mean"] is None:
        return "-"
    m, s = metric["mean"], metric["std"]
    return f"{m:.4g}±{s:.2g}" if s == s else f"{m:.4g}"


def _table(rows: list[dict], baseline: list[dict] | None) -> str:
    names = [n for n in _TITLES if rows and n in rows[0]["metrics"]]
    recall = any("filter_recall" in r for r in rows)
    header = ["gen", "synthetic share of pool"] + (["filter recall"] if recall else []) + [_TITLES[n] for n in names]
    header += [f"{_TITLES[n]} (no filter)" for n in names] if baseline else []
    body = []
    for i, r in enumerate(rows):
        line = [r["t"], f"{r['leak_fraction']:.3f}"]
        if recall:
            line.append("-" if r.get("filter_recall") is None or r["filter_recall"] != r["filter_recall"]
                        else f"{r['filter_recall']:.3f}")
        line += [_cell(r["metrics"].get(n)) for n in names]
        if baseline:
            b = baseline[i]["metrics"] if i < len(baseline) else {}
            line += [_cell(b.get(n)) for n in names]
        body.append(line)
    return format_table(body, header) + "\n(mean±std over chains)"


def _setup_line(cfg, chains_note: str = "") -> str:
    """One line stating the experiment."""
    filt = {"none": "none", "idealised": f"idealised (recall {cfg.filter_recall:g}, FPR {cfg.filter_fpr:g})",
            "content": f"content detector at FPR {cfg.filter_fpr:g}",
            "watermark": f"watermark detector at FPR {cfg.filter_fpr:g} (strength {cfg.watermark_strength:g})",
            "probe": f"linear probe refitted each generation, calibrated at FPR {cfg.filter_fpr:g}"}[cfg.filter]
    mem = ", accumulate" if cfg.accumulate else (f", memory {cfg.pool_memory}" if cfg.pool_memory > 1 else "")
    return (f"{cfg.loop} loop{mem} | {cfg.model} d={cfg.d} | n_real={cfg.n_real}, n_synth={cfg.n_synth} per "
            f"generation | lambda={cfg.lam:g} | filter: {filt} | {cfg.chains} chains x {cfg.generations} "
            f"generations{chains_note}")


def _n_eff_text(row: dict | None) -> str | None:
    v = (row or {}).get("n_eff_of_mean")
    return None if not v else f"{v['value']:.4g} ± {v['se']:.2g}"


def _conclusion(payload: dict) -> str:
    """One sentence on what the filter buys (or how far the loop is from a real-only one)."""
    cfg = payload["config"]
    rows, base = payload["generations"], payload.get("baseline_generations")
    if not rows:
        return "no generation finished."
    t = rows[-1]["t"]
    ours = _n_eff_text(rows[-1])
    if ours is None:
        return f"generation {t}: see the table (this family has no closed-form distance for n_eff)."
    head = f"At generation {t}, n_eff of the average model = {ours} (of n_real = {cfg['n_real']})"
    band = payload.get("band")
    if band:
        lo, hi = (band[k]["generations"][-1]["n_eff_of_mean"]["value"] for k in ("pessimistic", "optimistic"))
        op = payload["filter_from"]
        head = (f"Your filter (TPR {op['tpr']:.3g} [{op['tpr_ci'][0]:.3g}, {op['tpr_ci'][1]:.3g}], FPR "
                f"{op['fpr']:.3g} [{op['fpr_ci'][0]:.3g}, {op['fpr_ci'][1]:.3g}]): at generation {t}, n_eff = "
                f"{ours} [band {lo:.4g} to {hi:.4g} over the intervals] of n_real = {cfg['n_real']}")
    if base and _n_eff_text(base[-1]):
        without = base[-1]["n_eff_of_mean"]["value"]
        gain = rows[-1]["n_eff_of_mean"]["value"] / without
        return f"{head}; without a filter {_n_eff_text(base[-1])}: the filter buys {gain:.2f}x the effective real data."
    share = rows[-1]["n_eff_of_mean"]["value"] / cfg["n_real"]
    return f"{head}: {share:.0%} of the real data's worth."


def _notes(payload: dict) -> list[str]:
    """Metric notes (e.g. -inf log det of rank-deficient fits), one line per metric."""
    seen: dict[str, list[int]] = {}
    for r in payload["generations"]:
        for name, m in r["metrics"].items():
            if m.get("note"):
                seen.setdefault(name, []).append(r["t"])
    return [f"note: {name} is -inf at generation(s) {', '.join(map(str, ts))}: the fit saw n <= d samples, so its "
            "covariance is singular (rank-deficient but valid; W2, FD and n_eff stay finite)" for name, ts in seen.items()]


class _Writer:
    """Writes the results so far to ``--out`` after every generation (so Ctrl-C keeps them)."""

    def __init__(self, out: Path | None):
        self.out = out
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)

    def write(self, payload: dict, plots: bool = False) -> None:
        if self.out is None:
            return
        from provguard.sim import report

        report.write_json(self.out / "summary.json", payload)
        arms = {"filtered": payload["generations"]}
        if payload.get("baseline_generations"):
            arms["no_filter"] = payload["baseline_generations"]
        for name, arm in (payload.get("band") or {}).items():
            arms[name] = arm["generations"]
        report.write_csv(self.out / "generations.csv", arms)
        if plots:
            report.plot_generations(self.out, arms)


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="gen", file=sys.stderr, leave=False, disable=None)


def _arms(cfg, op) -> dict:
    """The configurations to run: ``main``, ``no_filter`` (when filtered) and the band ends of ``op``."""
    if op is not None:
        arms = {name: cfg.replace(filter_kind="idealised", filter_recall=r, filter_fpr=f)
                for name, (r, f) in op.arms().items()}
        arms["main"] = arms.pop("measured")
    else:
        arms = {"main": cfg.replace(filter_kind="idealised") if cfg.filter == "idealised" else cfg}
    if cfg.filter != "none" or op is not None:
        kind = "idealised" if arms["main"].filter == "idealised" else "none"  # idealised: same batch, rates 0
        arms["no_filter"] = cfg.replace(filter_kind=kind, filter_recall=0.0, filter_fpr=0.0)
    return arms


def _run_main(cfg, writer: _Writer, op=None) -> dict:
    """The experiment, the same loop without its filter, and the band ends of ``op``; returns the state."""
    from provguard.sim import report
    from provguard.sim.engine import Engine

    arms = _arms(cfg, op)
    batched = arms["main"].filter == "idealised"
    groups = [list(arms)] if batched else [["main"]] + ([["no_filter"]] if "no_filter" in arms else [])
    state = {"payload": {"config": arms["main"].to_dict(), "generations": []}, "cfg": arms["main"]}
    if op is not None:
        state["payload"]["filter_from"] = op.to_dict()

    def on_generation(names):
        def update(t, result):
            if writer.out is None and t < result.points[0].generations:
                return  # nothing to write until the end (the payload is rebuilt from all generations)
            pl = state["payload"]
            for i, name in enumerate(names):
                rows = result.summary(i)
                if name == "main":
                    pl.update({k: v for k, v in report.payload(result, i).items() if k != "config"})
                elif name == "no_filter":
                    pl["baseline_config"], pl["baseline_generations"] = arms[name].to_dict(), rows
                else:
                    pl.setdefault("band", {})[name] = {"config": arms[name].to_dict(), "generations": rows}
            writer.write(pl)
        return update

    bar = _progress(cfg.generations * len(groups), "simulate")
    try:
        for names in groups:
            Engine([arms[n] for n in names]).run(on_generation=on_generation(names), progress=bar.update)
    finally:
        bar.close()
        state["interrupted"] = sys.exc_info()[0] is KeyboardInterrupt
    state["payload"]["conclusion"] = _conclusion(state["payload"])
    return state


@click.group("simulate", invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@_sim_options
@click.option("--filter-from", "filter_from", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="your filter's evaluation (JSON of `provguard probe eval --json`, or a labelled evaluation): its "
                   "measured TPR and FPR become the recall and FPR, and the interval ends give a band")
@click.option("--filter-at-fpr", type=float, default=None,
              help="with --filter-from on a probe evaluation: which listed FPR's operating point to use "
                   "[default: the calibrated threshold's, else the largest listed FPR with a TPR]")
@click.pass_context
def simulate(ctx, out, as_json, filter_from, filter_at_fpr, **kw):
    """Simulate self-consuming (MAD) training loops, with filters and watermarks inside.

    Chains run batched on one tensor axis (CUDA when present). Prints a set-up line, a per-generation
    table (mean ± std over chains) beside the same loop without the filter, and a one-line conclusion;
    writes summary.json, generations.csv and plots to --out. Ctrl-C keeps the finished generations.

    \b
    Examples:
      provguard simulate --filter-recall 0.9
      provguard simulate --filter-from probe_eval.json --chains 256
      provguard simulate --dim 100 --n-real 100 --n-synth 900 --lambda 1 -T 30 --chains 200
      provguard simulate --loop synthetic --lambda 0.9 --generations 30 --out runs/collapse
      provguard simulate --model gmm --filter content --filter-fpr 0.05 --json
      provguard simulate --filter probe --filter-fpr 0.01 --watermark-strength 2
      provguard simulate sweep --vary filter-recall=0,0.5,0.9,0.99 --vary n-synth=100,400,1600 --out runs/phase
      provguard simulate required-recall --filter-fpr 0.01 --tolerance 0.9 --out runs/required
      provguard simulate validate
    """
    if ctx.invoked_subcommand is not None:
        return
    from provguard.sim.config import ConfigError

    writer = _Writer(out)
    try:
        with user_errors(flags=_EVALUATION_FLAGS):
            cfg = _config(kw)
            op = None
            if filter_from is not None:
                if kw["filter_recall"] or kw["filter_fpr"] or kw["filter_kind"] not in (None, "idealised"):
                    raise ConfigError("{evaluation} sets the filter's recall and FPR from your evaluation: drop "
                                      "{filter_recall}, {filter_fpr} and {filter_kind}")
                from provguard.sim.operating_point import read_operating_point

                op = read_operating_point(filter_from, filter_at_fpr)
            elif filter_at_fpr is not None:
                raise ConfigError("{at_fpr} only applies with {evaluation}")
            state = _run_main(cfg, writer, op)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted; finished generations are in {out}" if out else "\ninterrupted", err=True)
        sys.exit(EXIT_SOME_FAILED)
    payload = state["payload"]
    writer.write(payload, plots=True)
    if as_json:
        emit_json(payload)
    else:
        main_cfg = state["cfg"]
        sub = "" if main_cfg.metrics == "fast" or main_cfg.sample_metric_chains >= main_cfg.chains or \
            main_cfg.model in ("categorical", "ddpm") else \
            f" (FD, precision, recall on {main_cfg.sample_metric_chains} of them)"
        click.echo(_setup_line(main_cfg, sub))
        click.echo(_table(payload["generations"], payload.get("baseline_generations")))
        for note in _notes(payload):
            click.echo(note)
        click.echo(payload["conclusion"])
        if out:
            click.echo(f"wrote {out}/summary.json, generations.csv and plots", err=True)
    sys.exit(EXIT_OK)


@simulate.command("sweep")
@_sim_options
@click.option("--vary", multiple=True, required=True,
              help="NAME=V1,V2,... (NAME: filter-recall, filter-fpr, n-synth, n-real, lambda, watermark-strength)")
@click.option("--admissible", type=float, default=1.0, show_default=True,
              help="n_eff/n_real at or above which a grid point is admissible")
def sweep_cmd(vary, admissible, out, as_json, **kw):
    """Run a grid of settings in one batched call and draw the phase diagram of n_eff/n_real.

    \b
    Example:
      provguard simulate sweep --vary filter-recall=0,0.5,0.9,0.99 --vary n-synth=100,400,1600 --out runs/phase
    """
    from provguard.sim import report
    from provguard.sim.sweep import parse_vary, run_sweep

    try:
        with user_errors():
            grid_vary = parse_vary(list(vary))
            cfg = _config(kw)
            bar = _progress(cfg.generations, "sweep")
            try:
                result, grid = run_sweep(cfg, grid_vary, progress=bar.update)
            finally:
                bar.close()
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        sys.exit(EXIT_SOME_FAILED)
    points = [{"point": {k.replace("_", "-"): getattr(p, k) for k in grid_vary},
               "generations": result.summary(i)} for i, p in enumerate(result.points)]
    payload = {"config": cfg.to_dict(), "vary": {k.replace("_", "-"): v for k, v in grid_vary.items()},
               "phase": grid, "admissible": admissible, "points": points}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        report.write_json(out / "sweep.json", payload)
        report.plot_phase(out / "phase.png", grid, admissible)
    if as_json:
        emit_json(payload)
    else:
        rows = []
        for p in points:
            last = p["generations"][-1]
            n_eff = last["metrics"].get("n_eff", {}).get("mean")
            n_real = p["point"].get("n-real", cfg.n_real)
            ratio = n_eff / n_real if n_eff is not None else None
            rows.append([*(p["point"].values()), f"{last['leak_fraction']:.3f}",
                         f"{ratio:.3f}" if ratio is not None else "-",
                         "yes" if ratio is not None and ratio >= admissible else "no"])
        click.echo(format_table(rows, [*grid["axes"], "leak", "n_eff/n_real", "admissible"]))
    sys.exit(EXIT_OK)


@simulate.command("required-recall")
@_sim_options
@click.option("--metric", default="n_eff", show_default=True,
              help="criterion metric: n_eff, w2sq, l2sq, mean_drift, trace_ratio, gini_simpson, entropy, support "
                   "(compared with the real-only loop) or leak_fraction (absolute)")
@click.option("--tolerance", type=float, default=0.9, show_default=True,
              help="n_eff / n_eff(real-only) (or the metric's ratio to the real-only loop) must reach this; for "
                   "leak_fraction, the largest admissible synthetic share")
@click.option("--rounds", type=int, default=4, show_default=True, help="bisection rounds (one batched run each)")
@click.option("--grid", type=int, default=5, show_default=True, help="recalls per round")
def required_recall_cmd(metric, tolerance, rounds, grid, out, as_json, **kw):
    """The smallest filter recall, at --filter-fpr, that keeps a metric within a tolerance of the real-only loop.

    Bisection over batched runs (each round: a grid of recalls plus the real-only loop, common random
    numbers); the steady state is each chain's average over the last half of the generations. Prints
    the required recall with its Monte Carlo error and writes required_recall.json and
    required_recall.png (metric against recall) to --out. Exit code 1 when the target cannot be reached
    even at recall 1 (the best reachable value is reported).

    \b
    Examples:
      provguard simulate required-recall --filter-fpr 0.01 --tolerance 0.9 --chains 400 --out runs/required
      provguard simulate required-recall --metric leak_fraction --tolerance 0.05 --n-synth 4000 --json
    """
    from provguard.sim import report
    from provguard.sim.required import required_recall

    kw.pop("filter_recall")
    if kw.get("filter_kind") not in (None, "idealised"):
        fail("required-recall searches over an idealised filter's recall: drop --filter", EXIT_USAGE)
    try:
        with user_errors():
            cfg = _config({**kw, "metrics": "fast", "filter_kind": "idealised"})
            bar = _progress(cfg.generations * rounds, "required-recall")
            try:
                ans = required_recall(cfg, metric, tolerance, rounds=rounds, grid=grid, progress=bar.update)
            finally:
                bar.close()
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        sys.exit(EXIT_SOME_FAILED)
    payload = {"config": cfg.to_dict(), "metric": metric, "tolerance": tolerance, **ans.to_dict()}
    if ans.reachable:
        line = (f"Required recall at FPR {cfg.filter_fpr:g}: {ans.required_recall:.4f} ± {ans.mc_error:.2g} "
                f"(Monte Carlo error) for {ans.criterion}.")
    else:
        line = (f"Not reachable: even at recall 1 (FPR {cfg.filter_fpr:g}) the best value is {ans.best_value:.4g}, "
                f"short of {ans.criterion}; lower --filter-fpr, raise --n-real or relax --tolerance.")
    payload["conclusion"] = line
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        report.write_json(out / "required_recall.json", payload)
        report.plot_required_recall(out / "required_recall.png", payload)
    if as_json:
        emit_json(payload)
    else:
        click.echo(_setup_line(cfg.replace(filter_recall=0.0), "") + " | recall searched")
        rows = [[f"{e['recall']:.4f}", f"{e['value']:.4g} ± {e['se']:.2g}", "yes" if e["margin"] >= 0 else "no"]
                for e in payload["evaluations"]]
        value_name = "leak fraction" if metric == "leak_fraction" else f"{metric} vs real-only"
        click.echo(format_table(rows, ["recall", value_name, "meets criterion"]))
        click.echo(line)
    sys.exit(EXIT_OK if ans.reachable else EXIT_SOME_FAILED)


@simulate.command("validate")
@click.option("--chains", type=int, default=4000, show_default=True, help="Monte Carlo chains per law")
@click.option("--only", default=None, help="run only checks whose title contains this text")
@click.option("--json", "as_json", is_flag=True, help="print the checks as JSON")
def validate_cmd(chains, only, as_json):
    """Check the simulator against exact laws (log-moments, log-det drift, categorical diversity and
    fixation, filter leak, artifact inheritance, truncation, metric sanity); exit 1 if any is off by
    more than 4 standard errors.

    \b
    Example:
      provguard simulate validate --chains 4000
    """
    from provguard.sim.validate import TOLERANCE_SE, run_all

    if chains < 100:
        fail("--chains must be >= 100 for meaningful standard errors", EXIT_USAGE)
    try:
        laws = run_all(chains, only)
    except Exception as exc:  # a failure here is a bug, but report it as one line
        fail(f"validation crashed: {exc!r}", EXIT_FATAL)
    if not laws:
        fail(f"no check matches --only {only!r}", EXIT_USAGE)
    if as_json:
        emit_json({"chains": chains, "tolerance_se": TOLERANCE_SE, "laws": [law.as_dict() for law in laws]})
    else:
        rows = [[law.name, f"{law.theory:.5g}", f"{law.simulated:.5g}", f"{law.se:.2g}", f"{law.z:+.2f}",
                 "ok" if law.ok else "FAIL"] for law in laws]
        click.echo(format_table(rows, ["law", "theory", "simulated", "se", "z", ""]))
    sys.exit(EXIT_OK if all(law.ok for law in laws) else EXIT_SOME_FAILED)
