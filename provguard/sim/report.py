"""Writing a run's results: the ``--json`` payload, a CSV of per-generation means/stds, and PNG plots."""
from __future__ import annotations

import csv
from pathlib import Path

from provguard.formatting import to_json

PLOTS = {
    "distance": ("w2sq", "l2sq", "fd"),
    "precision_recall": ("precision", "recall", "coverage"),
    "n_eff": ("n_eff",),
}


def payload(result, point: int = 0, baseline: int | None = None) -> dict:
    """``{"config", "generations", ["baseline_generations"], "feature_hash"}`` for one sweep point."""
    out = {"config": result.points[point].to_dict(), "generations": result.summary(point)}
    if baseline is not None:
        out["baseline_config"] = result.points[baseline].to_dict()
        out["baseline_generations"] = result.summary(baseline)
    if result.feature_hash:
        out["feature_hash"] = result.feature_hash
    return out


def write_json(path: Path, obj) -> None:
    path.write_text(to_json(obj))


def write_csv(path: Path, arms: dict[str, list[dict]]) -> None:
    """One row per (arm, generation): ``arm, t, leak_fraction, kept_real, kept_synth, <metric>_mean, <metric>_std``."""
    names = sorted({n for rows in arms.values() for r in rows for n in r["metrics"]})
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["arm", "t", "leak_fraction", "kept_real", "kept_synth"]
                   + [f"{n}_{s}" for n in names for s in ("mean", "std")])
        for arm, rows in arms.items():
            for r in rows:
                w.writerow([arm, r["t"], r["leak_fraction"], r["kept_real"], r["kept_synth"]]
                           + [r["metrics"].get(n, {}).get(s, "") for n in names for s in ("mean", "std")])


def plot_generations(out_dir: Path, arms: dict[str, list[dict]]) -> list[Path]:
    """Per-generation plots (mean +- std over chains) of distances, precision/recall, n_eff and leak fraction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    groups = dict(PLOTS, leak_fraction=("leak_fraction",))
    for fname, metrics in groups.items():
        fig, ax = plt.subplots(figsize=(6, 4))
        drawn = False
        for arm, rows in arms.items():
            for m in metrics:
                if m == "leak_fraction":
                    ts, ys, ss = [r["t"] for r in rows], [r["leak_fraction"] for r in rows], \
                        [r.get("leak_fraction_std", 0.0) for r in rows]
                elif rows and m in rows[0]["metrics"]:
                    ts = [r["t"] for r in rows]
                    ys = [r["metrics"][m]["mean"] for r in rows]
                    ss = [r["metrics"][m]["std"] for r in rows]
                else:
                    continue
                ax.errorbar(ts, ys, yerr=ss, label=f"{m} ({arm})", capsize=2, marker="o", ms=3)
                drawn = True
        if not drawn:
            plt.close(fig)
            continue
        ax.set_xlabel("generation t")
        ax.set_title(fname.replace("_", " "))
        if fname == "distance":
            ax.set_yscale("log")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / f"{fname}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def plot_phase(path: Path, grid: dict, admissible: float) -> None:
    """Phase diagram of final ``n_eff / n_real`` over one or two swept axes, admissible region outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    axes, values = grid["axes"], np.asarray(grid["ratio"], dtype=float)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if len(axes) == 1:
        (name, xs), = axes.items()
        ax.plot(xs, values, marker="o")
        ax.axhline(admissible, ls="--", c="k", label=f"admissible: n_eff/n_real >= {admissible:g}")
        ax.set_xlabel(name)
        ax.set_ylabel("n_eff / n_real (last generation)")
        ax.legend()
    else:
        (n1, xs), (n2, ys) = list(axes.items())[:2]
        img = ax.imshow(values.T, origin="lower", aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(xs)), [str(x) for x in xs])
        ax.set_yticks(range(len(ys)), [str(y) for y in ys])
        ax.set_xlabel(n1)
        ax.set_ylabel(n2)
        fig.colorbar(img, label="n_eff / n_real (last generation)")
        if np.nanmin(values) < admissible < np.nanmax(values):
            ax.contour(values.T, levels=[admissible], colors="w", linestyles="--")
        for i in range(len(xs)):
            for j in range(len(ys)):
                ax.text(i, j, f"{values[i, j]:.2f}" + ("*" if values[i, j] >= admissible else ""),
                        ha="center", va="center", fontsize=7, color="w")
        ax.set_title(f"* admissible (n_eff/n_real >= {admissible:g})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_required_recall(path: Path, payload: dict) -> None:
    """The criterion's value against recall (mean ± SE, every evaluated point), the tolerance and the answer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = payload["evaluations"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar([e["recall"] for e in ev], [e["value"] for e in ev], yerr=[e["se"] for e in ev], fmt="o", ms=3,
                capsize=2, label="simulated (mean ± SE)")
    ax.axhline(payload["tolerance"], ls="--", c="k", label=f"tolerance {payload['tolerance']:g}")
    r = payload.get("required_recall")
    if r is not None:
        err = payload.get("mc_error") or 0.0
        ax.axvspan(r - err, r + err, color="C1", alpha=0.3)
        ax.axvline(r, c="C1", label=f"required recall {r:.4f} ± {err:.2g}")
    ax.set_xlabel("filter recall")
    ax.set_ylabel("leak fraction" if payload["metric"] == "leak_fraction" else f"{payload['metric']} / real-only")
    ax.set_title(payload["criterion"], fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
