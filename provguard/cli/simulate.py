"""``provguard simulate``: batched self-consuming (MAD) loop simulations, sweeps and exact-law validation."""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from provguard.cli.common import EXIT_FATAL, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, emit_json, fail, format_table

_SHOWN = ("w2sq", "l2sq", "fd", "precision", "recall", "modes_lost", "n_eff")


def _sim_options(fn):
    """Options shared by ``simulate`` and ``simulate sweep`` (they build a SimConfig)."""
    opts = [
        click.option("--loop", type=click.Choice(["fresh", "synthetic", "augment"]), default="fresh", show_default=True,
                     help="fresh: new real data each generation; synthetic: only the last model's samples; "
                          "augment: a fixed real set plus synthetic"),
        click.option("--model", type=click.Choice(["gaussian", "gmm", "categorical", "ddpm"]), default="gaussian",
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
        click.option("--filter", "filter_kind", type=click.Choice(["none", "idealised", "content", "watermark"]),
                     default=None, help="filter between the data pool and training [default: idealised when "
                                        "--filter-recall/--filter-fpr is given, else none]"),
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
                     help="fast = closed-form metrics only (no k-NN/FD/KID)"),
        click.option("-k", "k", type=int, default=5, show_default=True, help="k of the k-NN metrics"),
        click.option("--eval-samples", type=int, default=256, show_default=True, help="samples per chain for sample metrics"),
        click.option("--ddpm-train-steps", type=int, default=300, show_default=True),
        click.option("--mem-budget-gb", type=float, default=2.0, show_default=True),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="folder for summary.json, generations.csv and PNG plots"),
        click.option("--json", "as_json", is_flag=True, help="print the result as JSON on stdout"),
    ]
    return functools.reduce(lambda f, o: o(f), reversed(opts), fn)


def _config(kw: dict):
    from provguard.sim.config import SimConfig

    fields = {k: v for k, v in kw.items() if k in SimConfig.__dataclass_fields__}
    return SimConfig(**fields)


def _cell(metric: dict | None) -> str:
    if not metric or metric["mean"] is None:
        return "-"
    m, s = metric["mean"], metric["std"]
    return f"{m:.4g}±{s:.2g}"


def _table(rows: list[dict], baseline: list[dict] | None) -> str:
    names = [n for n in _SHOWN if rows and n in rows[0]["metrics"]]
    header = ["t", "leak"] + names + ([f"{n} (no filter)" for n in names] if baseline else [])
    body = []
    for i, r in enumerate(rows):
        line = [r["t"], f"{r['leak_fraction']:.3f}"] + [_cell(r["metrics"].get(n)) for n in names]
        if baseline:
            b = baseline[i]["metrics"] if i < len(baseline) else {}
            line += [_cell(b.get(n)) for n in names]
        body.append(line)
    return format_table(body, header)


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
        report.write_csv(self.out / "generations.csv", arms)
        if plots:
            report.plot_generations(self.out, arms)


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="gen", file=sys.stderr, leave=False, disable=None)


def _run_main(cfg, writer: _Writer) -> dict:
    """The experiment and, when a filter is on, the same loop without it; returns the payload."""
    from provguard.sim import report
    from provguard.sim.engine import Engine

    baseline_cfg = None
    if cfg.filter != "none":
        kind = cfg.filter_kind if cfg.filter == "idealised" else "none"  # idealised: same batch, rates 0
        baseline_cfg = cfg.replace(filter_kind=kind, filter_recall=0.0, filter_fpr=0.0)
    batched = baseline_cfg is not None and cfg.filter == "idealised"
    state = {"payload": {"config": cfg.to_dict(), "generations": []}}

    def on_main(t, result):
        state["payload"] = report.payload(result, 0, 1 if batched else None)
        writer.write(state["payload"])

    runs = 1 if (baseline_cfg is None or batched) else 2
    bar = _progress(cfg.generations * runs, "simulate")
    try:
        Engine([cfg, baseline_cfg] if batched else [cfg]).run(on_generation=on_main, progress=bar.update)
        if runs == 2:
            def on_base(t, result):
                state["payload"]["baseline_config"] = baseline_cfg.to_dict()
                state["payload"]["baseline_generations"] = result.summary(0)
                writer.write(state["payload"])

            Engine([baseline_cfg]).run(on_generation=on_base, progress=bar.update)
    finally:
        bar.close()
        state["interrupted"] = sys.exc_info()[0] is KeyboardInterrupt
    return state


@click.group("simulate", invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@_sim_options
@click.pass_context
def simulate(ctx, out, as_json, **kw):
    """Simulate self-consuming (MAD) training loops, with filters and watermarks inside.

    Chains run batched on one tensor axis (CUDA when present). Prints a per-generation table (mean ±
    std over chains) beside the same loop without the filter, and writes summary.json,
    generations.csv and plots to --out. Ctrl-C keeps the finished generations.

    \b
    Examples:
      provguard simulate --filter-recall 0.9
      provguard simulate --loop synthetic --lambda 0.9 --generations 30 --out runs/collapse
      provguard simulate --model gmm --filter content --filter-fpr 0.05 --json
      provguard simulate sweep --vary filter-recall=0,0.5,0.9,0.99 --vary n-synth=100,400,1600 --out runs/phase
      provguard simulate validate
    """
    if ctx.invoked_subcommand is not None:
        return
    from provguard.sim.config import ConfigError

    writer = _Writer(out)
    try:
        cfg = _config(kw)
        state = _run_main(cfg, writer)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted; finished generations are in {out}" if out else "\ninterrupted", err=True)
        sys.exit(EXIT_SOME_FAILED)
    payload = state["payload"]
    writer.write(payload, plots=True)
    if as_json:
        emit_json(payload)
    else:
        click.echo(_table(payload["generations"], payload.get("baseline_generations")))
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
    from provguard.sim.config import ConfigError
    from provguard.sim.sweep import parse_vary, run_sweep

    try:
        grid_vary = parse_vary(list(vary))
        cfg = _config(kw)
        n_points = 1
        for v in grid_vary.values():
            n_points *= len(v)
        bar = _progress(cfg.generations, "sweep")
        try:
            result, grid = run_sweep(cfg, grid_vary, progress=bar.update)
        finally:
            bar.close()
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
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
