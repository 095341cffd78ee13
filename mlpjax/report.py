"""Aggregate a sweep of `mlpjax.train` runs: `python -m mlpjax.report DIR`.

DIR is a Hydra sweep dir (`multirun/…`, one sub-folder per job) or a single run dir.
Every job folder (one holding `.hydra/`, `summary.json`, `metrics.jsonl` or `error.txt`)
is read; one that has no readable `summary.json` is a FAILED job and is listed as such,
with what it left (`error.txt`, the last lines of its log, the epochs in `metrics.jsonl`).
Writes into DIR:
  report.csv            one row per configuration: activation, hidden, batch size, learning
                        rate (and any other setting the sweep varied); seeds; mean ± std of
                        test accuracy and of final train cost over the networks that did not
                        diverge; best and worst seed; fraction diverged; fraction at chance;
                        the per-network minima analysis (`summary.json` models[].minima,
                        `landscape.analyze_group`) averaged over seeds, when present;
                        failed jobs as rows with status `failed`
  report.md             the same table, the failed jobs, the plots
  accuracy_vs_lr.png    test accuracy against learning rate (log x), one panel per batch size
                        and hidden layers, one line per activation
  learning_curves.png   test accuracy per epoch at each batch size's best learning rate
  cost_spread.png       every network's final train cost against learning rate (log y)
  sharpness_vs_lr.png   (with minima) sharpness against learning rate, with the 2/η line
The markdown table is also printed. As a Hydra callback (`ReportCallback`), it runs on the
sweep dir when a multirun ends. Errors (no DIR, no job in it) are one line and exit code 2.
"""

from __future__ import annotations

import csv
import glob
import json
import math
import os
import re
import statistics
import sys
from typing import Any

import numpy as np
import yaml

from mlpjax import config, model, rundir

# A network is "at chance" when its test accuracy is below this (10 classes: chance ≈ 0.1;
# the commonest digit is 11.35% of the test set). Such networks did not learn: a collapse
# (every output driven to 0, cost 1.0) at too large a learning rate, or too few steps.
CHANCE = 0.2
# Settings that are part of a configuration but shown in their own columns (the settings that
# are not part of one are `config.NOT_CONFIGURATION`).
OWN_COLUMNS = {"model.activation", "model.hidden", "data.batch_size", "optim.lr"}
# Input and output sizes of MNIST's networks: for sorting configurations by parameter count
# where no job of the sweep left the sizes in its summary.
MNIST_SIZES = (28 * 28, 10)
MINIMA_ORDER = ("sharpness", "sharpness_lr", "min_eigenvalue", "saturated_units", "dead_units", "saturated_pairs", "dead_pairs",
                "init_barrier", "seed_barrier", "cost_subset")
# The minima columns of report.md (report.csv has them all), and their headers.
MD_MINIMA = {"sharpness": "sharpness", "sharpness_lr": "sharpness·η", "saturated_units": "saturated units",
             "dead_units": "dead units", "min_eigenvalue": "λ_min", "init_barrier": "init barrier", "seed_barrier": "seed barrier"}
JOB_MARKERS = (".hydra", "summary.json", "metrics.jsonl", "error.txt")
OUTPUTS = ("report.csv", "report.md", "accuracy_vs_lr.png", "learning_curves.png", "cost_spread.png", "sharpness_vs_lr.png")


class ReportError(Exception):
    """A problem with DIR that the user must fix; the message is one line."""


# --------------------------------------------------------------------------- reading


def _natural(path: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def find_jobs(root: str) -> list[str]:
    """Every job folder under `root` (itself included), in natural order (2 before 10)."""
    jobs = []
    for here, dirs, files in os.walk(root):
        if any(m in files or m in dirs for m in JOB_MARKERS):
            jobs.append(here)
            dirs[:] = []  # params/, checkpoint/, .hydra/ hold no jobs
        else:
            dirs[:] = [d for d in dirs if not d.startswith(".")]
    return sorted(jobs, key=_natural)


def _read_yaml(path: str) -> Any:
    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except (OSError, yaml.YAMLError):
        return None


def _tail(path: str, n: int = 5) -> list[str]:
    try:
        with open(path, errors="replace") as f:
            lines = [l.rstrip() for l in f if l.strip()]
    except OSError:
        return []
    return lines[-n:]


def _batch(v: Any) -> Any:
    return "full" if v in ("full", None) else int(v)


def _learning_rates(lr: Any) -> list[float]:
    """`optim.lr` of a failed job's config as floats; [] when it is missing or not numbers."""
    if not isinstance(lr, (list, int, float)):
        return []
    try:
        return config.learning_rates(lr)
    except (TypeError, ValueError):
        return []


def read_job(job_dir: str, root: str) -> dict:
    """What one job left: status ok/failed, its settings, its networks, its learning curves."""
    cfg = _read_yaml(os.path.join(job_dir, ".hydra", "config.yaml"))
    overrides = _read_yaml(os.path.join(job_dir, ".hydra", "overrides.yaml")) or []
    flat = config.flatten(cfg) if isinstance(cfg, dict) else {}
    job = {
        "dir": job_dir,
        "name": os.path.relpath(job_dir, root),
        "overrides": [str(o) for o in overrides] if isinstance(overrides, list) else [],
        "config": flat,
        "metrics": rundir.read_metrics(os.path.join(job_dir, "metrics.jsonl")),
    }
    summary, problem = None, None
    summary_path = os.path.join(job_dir, "summary.json")
    if os.path.exists(summary_path):
        try:
            with open(summary_path) as f:
                summary = json.load(f)
            if not isinstance(summary, dict) or not isinstance(summary.get("models"), list):
                summary, problem = None, "summary.json has no models list"
        except (OSError, json.JSONDecodeError) as e:
            problem = f"summary.json unreadable: {type(e).__name__}: {e}"
    error = _tail(os.path.join(job_dir, "error.txt"), 3)
    if summary is not None and not error:
        job["status"] = "ok"
        job["activation"] = summary.get("activation", flat.get("model.activation"))
        sizes = summary.get("sizes")
        job["sizes"] = list(sizes) if sizes else None
        job["hidden"] = tuple(sizes[1:-1]) if sizes else tuple(flat.get("model.hidden") or ())
        job["batch_size"] = _batch(summary.get("batch_size", flat.get("data.batch_size")))
        job["epochs"] = summary.get("epochs", flat.get("train.epochs"))
        job["models"] = summary["models"]
        job["wall_seconds"] = summary.get("wall_seconds")
        return job
    # A failed job: say why, with what it left behind.
    job["status"] = "failed"
    job["sizes"] = None
    job["activation"] = flat.get("model.activation")
    job["hidden"] = tuple(flat["model.hidden"]) if isinstance(flat.get("model.hidden"), list) else None
    job["batch_size"] = _batch(flat["data.batch_size"]) if "data.batch_size" in flat else None
    job["learning_rates"] = _learning_rates(flat.get("optim.lr"))
    job["seeds"] = flat.get("train.seeds")
    job["epochs"] = flat.get("train.epochs")
    if error:
        reason = " / ".join(error)
    elif summary is not None:
        reason = "error.txt next to summary.json"
    else:
        reason = problem or "no summary.json (killed or still running?)"
    epochs_done = len(job["metrics"])
    if epochs_done:
        reason += f"; metrics.jsonl reached epoch {job['metrics'][-1].get('epoch', epochs_done)}"
        if job["epochs"]:
            reason += f" of {job['epochs']}"
    elif cfg is None:
        reason += "; no .hydra/config.yaml"
    log_tail = []
    for log in sorted(glob.glob(os.path.join(job_dir, "*.log"))):
        log_tail += _tail(log, 5)
    job["reason"], job["log_tail"] = reason, log_tail
    return job


# --------------------------------------------------------------------------- aggregating


def _extras(jobs: list[dict]) -> list[str]:
    """Settings besides the own columns that differ between jobs: more columns of the table."""
    keys = set().union(*(j["config"] for j in jobs)) - OWN_COLUMNS - set(config.NOT_CONFIGURATION)
    varied = []
    for k in sorted(keys):
        values = {json.dumps(j["config"].get(k), sort_keys=True) for j in jobs if j["config"]}
        if len(values) > 1:
            varied.append(k)
    return varied


def _fmt_value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(map(str, v)) + "]"
    return str(v)


def _mean_std(xs: list[float]) -> tuple[float, float]:
    if not xs:
        return math.nan, math.nan
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def _param_count(hidden, sizes) -> int:
    """Weights and biases of a network with these hidden layers, and `sizes`' first and last size."""
    return model.count_for_sizes([sizes[0], *(hidden or ()), sizes[-1]])


def aggregate(jobs: list[dict]) -> tuple[list[dict], list[str], list[str]]:
    """One row per configuration, sorted; the extra setting columns; the minima columns."""
    extras = _extras(jobs)
    configurations = _configurations(jobs, extras)
    minima_cols = _minima_columns(configurations)
    # A failed job left no sizes: its configuration's networks have those of the sweep's others.
    sweep_sizes = next((j["sizes"] for j in jobs if j.get("sizes")), MNIST_SIZES)
    rows = [_row(c, minima_cols, sweep_sizes) for c in configurations]
    rows.sort(key=lambda r: _row_order(r, extras))
    return rows, extras, minima_cols


def _configurations(jobs: list[dict], extras: list[str]) -> list[dict]:
    """The networks of the jobs, and the failed jobs, per configuration, in the order first met.

    A configuration is its settings (the own columns and `extras`) and a learning rate; it
    holds `models` (summary.json's entries), `jobs` (names of the jobs they came from),
    `failed` (failed jobs, once per learning rate they were to train) and `sizes` (or None).
    """
    groups: dict[tuple, dict] = {}
    for j in jobs:
        extra_vals = tuple(_fmt_value(j["config"].get(k)) for k in extras)
        settings = {"activation": j["activation"], "hidden": j["hidden"], "batch_size": j["batch_size"]} | dict(zip(extras, extra_vals))
        if j["status"] == "ok":
            entries = [(float(m["learning_rate"]), m) for m in j["models"]]
        else:
            entries = [(lr, None) for lr in j["learning_rates"] or [None]]
        for lr, m in entries:
            key = (j["activation"], j["hidden"], j["batch_size"], extra_vals, lr)
            g = groups.setdefault(key, settings | {"learning_rate": lr, "models": [], "jobs": [], "failed": [], "sizes": None})
            g["sizes"] = g["sizes"] or j.get("sizes")
            if m is None:
                g["failed"].append(j)
                continue
            g["models"].append(m)
            if j["name"] not in g["jobs"]:
                g["jobs"].append(j["name"])
    return list(groups.values())


def _minima_columns(configurations: list[dict]) -> list[str]:
    """The numeric `minima` keys of any network: those of MINIMA_ORDER in its order, then the rest sorted."""
    keys = set()
    for g in configurations:
        for m in g["models"]:
            for k, v in (m.get("minima") or {}).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    keys.add(k)
    return [k for k in MINIMA_ORDER if k in keys] + sorted(keys - set(MINIMA_ORDER) - {"seed_barrier_to"})


def _row(g: dict, minima_cols: list[str], sweep_sizes) -> dict:
    """One configuration's line of the table: its settings, statistics over its networks, its status."""
    models = g["models"]
    alive = [m for m in models if not m.get("diverged")]
    acc_mean, acc_std = _mean_std([float(m["test_accuracy"]) for m in alive if _finite(m.get("test_accuracy"))])
    cost_mean, cost_std = _mean_std([float(m["train_cost"]) for m in alive if _finite(m.get("train_cost"))])
    ranked = sorted((m for m in alive if _finite(m.get("test_accuracy"))), key=lambda m: -float(m["test_accuracy"]))
    n_diverged = sum(bool(m.get("diverged")) for m in models)
    # At chance: did not learn, diverged networks included.
    n_chance = sum(not _finite(m.get("test_accuracy")) or float(m["test_accuracy"]) < CHANCE or bool(m.get("diverged")) for m in models)

    row = {k: v for k, v in g.items() if k not in ("models", "jobs", "failed", "sizes")}
    row |= {
        "seeds": len(models),
        "test_acc_mean": acc_mean,
        "test_acc_std": acc_std,
        "train_cost_mean": cost_mean,
        "train_cost_std": cost_std,
        "best_seed": ranked[0]["seed"] if ranked else None,
        "best_acc": float(ranked[0]["test_accuracy"]) if ranked else math.nan,
        "worst_seed": ranked[-1]["seed"] if ranked else None,
        "worst_acc": float(ranked[-1]["test_accuracy"]) if ranked else math.nan,
        "diverged": n_diverged,
        "diverged_frac": n_diverged / len(models) if models else math.nan,
        "chance_frac": n_chance / len(models) if models else math.nan,
        "status": _status(models, alive, g["failed"]),
        "failed_networks": sum(len(f["models"]) if "models" in f else (f.get("seeds") or 0) for f in g["failed"]),
        "jobs": " ".join(g["jobs"] + [f["name"] for f in g["failed"]]),
        "error": " | ".join(f"{f['name']}: {f['reason']}" for f in g["failed"]),
    }
    for k in minima_cols:
        vals = [float(m["minima"][k]) for m in alive if isinstance(m.get("minima"), dict) and _finite(m["minima"].get(k))]
        row[k] = statistics.fmean(vals) if vals else math.nan
    row["_models"] = models
    row["_params"] = math.inf if g["hidden"] is None else _param_count(g["hidden"], g["sizes"] or sweep_sizes)
    return row


def _status(models: list[dict], alive: list[dict], failed: list[dict]) -> str:
    if not models:
        return "failed"
    if not alive:
        return "diverged"
    return "partly failed" if failed else "ok"


def _row_order(r: dict, extras: list[str]) -> tuple:
    """Table order: activation, parameter count, hidden, batch size, extra settings, learning rate; unknowns last."""
    return (
        str(r["activation"]),
        r["_params"],
        str(r["hidden"]),
        math.inf if r["batch_size"] in ("full", None) else r["batch_size"],
        tuple(str(r.get(k)) for k in extras),
        math.inf if r["learning_rate"] is None else r["learning_rate"],
    )


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# --------------------------------------------------------------------------- writing


def _hidden_str(h) -> str:
    return "?" if h is None else ("[" + ",".join(map(str, h)) + "]")


def _num(v: Any, fmt: str) -> str:
    return format(v, fmt) if _finite(v) else ""


def write_csv(path: str, rows: list[dict], extras: list[str], minima_cols: list[str]) -> None:
    cols = (["activation", "hidden", "batch_size", *extras, "learning_rate", "seeds", "test_acc_mean", "test_acc_std",
             "train_cost_mean", "train_cost_std", "best_seed", "best_acc", "worst_seed", "worst_acc", "diverged",
             "diverged_frac", "chance_frac", *minima_cols, "status", "failed_networks", "jobs", "error"])
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            out = []
            for c in cols:
                v = r.get(c)
                if c == "hidden":
                    v = _hidden_str(v)
                elif isinstance(v, float):
                    v = f"{v:.6g}" if math.isfinite(v) else ""
                elif v is None:
                    v = ""
                out.append(v)
            w.writerow(out)


def _lr_str(lr) -> str:
    return "?" if lr is None else f"{lr:g}"


def markdown_table(rows: list[dict], extras: list[str], minima_cols: list[str]) -> str:
    md_minima = [k for k in minima_cols if k in MD_MINIMA]
    head = ["activation", "hidden", "batch", *extras, "lr", "seeds", "test acc % (mean ± std)", "train cost (mean ± std)",
            "best seed", "worst seed", "diverged", "at chance", *[MD_MINIMA[k] for k in md_minima], "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        seeds = str(r["seeds"])
        if r["status"] == "failed":
            acc = cost = best = worst = "—"
            div = chance = "—"
            seeds = f"— ({r['failed_networks']} in failed jobs)" if r["failed_networks"] else "—"
        else:
            acc = (f"{100 * r['test_acc_mean']:.2f} ± {100 * r['test_acc_std']:.2f}" if _finite(r["test_acc_mean"]) else "diverged")
            cost = (f"{r['train_cost_mean']:.4f} ± {r['train_cost_std']:.4f}" if _finite(r["train_cost_mean"]) else "diverged")
            best = f"{r['best_seed']} ({100 * r['best_acc']:.2f}%)" if r["best_seed"] is not None else "—"
            worst = f"{r['worst_seed']} ({100 * r['worst_acc']:.2f}%)" if r["worst_seed"] is not None else "—"
            div = f"{r['diverged']}/{r['seeds']}"
            chance = f"{round(r['chance_frac'] * r['seeds'])}/{r['seeds']}"
        status = r["status"].upper() if r["status"] != "ok" else "ok"
        if r["failed_networks"] and r["status"] != "failed":  # the same configuration also ran in a job that failed
            status += f" (+{r['failed_networks']} in failed jobs)"
        cells = [str(r["activation"] or "?"), _hidden_str(r["hidden"]), str(r["batch_size"] if r["batch_size"] is not None else "?"),
                 *[str(r.get(k)) for k in extras], _lr_str(r["learning_rate"]), seeds, acc, cost, best, worst, div, chance,
                 *[_num(r.get(k), ".3g") for k in md_minima], status]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_markdown(path: str, root: str, jobs: list[dict], rows: list[dict], table: str, pngs: list[str], minima_cols: list[str]) -> None:
    ok = [j for j in jobs if j["status"] == "ok"]
    failed = [j for j in jobs if j["status"] == "failed"]
    n_net = sum(len(j["models"]) for j in ok)
    n_div = sum(bool(m.get("diverged")) for j in ok for m in j["models"])
    n_chance = sum(not m.get("diverged") and _finite(m.get("test_accuracy")) and m["test_accuracy"] < CHANCE for j in ok for m in j["models"])
    epochs = sorted({j["epochs"] for j in ok if j.get("epochs") is not None})
    walls = [j["wall_seconds"] for j in ok if _finite(j.get("wall_seconds"))]
    out = [
        f"# Sweep report: {os.path.abspath(root)}",
        "",
        f"{len(jobs)} jobs: {len(ok)} finished, {len(failed)} FAILED. {n_net} networks trained "
        f"({', '.join(map(str, epochs)) or '?'} epochs): {n_div} diverged, {n_chance} more ended at chance (test accuracy < {100 * CHANCE:.0f}%)."
        + (f" Job wall time {sum(walls):.0f} s in all, {statistics.median(walls):.1f} s median." if walls else ""),
        "",
        "Per configuration: test accuracy and final train cost are mean ± sample std over the networks that did not "
        "diverge (a diverged network keeps its last finite parameters, so its numbers are not a result); best/worst "
        "seed by test accuracy; *diverged*: networks whose cost or parameter norm blew up; *at chance*: networks "
        f"(diverged included) below {100 * CHANCE:.0f}% test accuracy, i.e. that did not learn (at a large learning "
        "rate usually a collapse to all-zero outputs, cost 1.0).",
    ]
    if minima_cols:
        out += ["", "Minima columns (`landscape.analyze_group`, mean over the surviving seeds): sharpness = top Hessian "
                "eigenvalue on a training subset (Lanczos); sharpness·η (GD is unstable above 2); λ_min = the smallest "
                "eigenvalue (< 0: not yet a minimum); saturated/dead "
                "= fraction of hidden units stuck; init_barrier = cost rise along the straight path from the "
                "initialization; seed_barrier = rise above the line between this minimum and the next seed's."]
    out += ["", table, ""]
    if failed:
        out += ["## Failed jobs", ""]
        for j in failed:
            out.append(f"- **{j['name']}** ({' '.join(j['overrides']) or 'no overrides recorded'}): {j['reason']}")
            for line in j["log_tail"]:
                out.append(f"    - log: `{line}`")
        out.append("")
    if pngs:
        out += ["## Plots", ""] + [f"![{p}]({p})" for p in pngs] + [""]
    with open(path, "w") as f:
        f.write("\n".join(out))


# --------------------------------------------------------------------------- plots


def _panels(rows: list[dict]):
    """(batch sizes, hidden configs) of the grid of panels, in table order."""
    batches = sorted({r["batch_size"] for r in rows if r["batch_size"] is not None}, key=lambda b: math.inf if b == "full" else b)
    hiddens = sorted({r["hidden"] for r in rows if r["hidden"] is not None},
                     key=lambda h: (min(r["_params"] for r in rows if r["hidden"] == h), str(h)))
    return batches, hiddens


def _line_key(r: dict, extras: list[str]) -> str:
    return " ".join([str(r["activation"])] + [f"{k.split('.')[-1]}={r.get(k)}" for k in extras])


class _Grid:
    """What every plot shares: a panel per (batch size, hidden layers), a colour per line, the legend."""

    def __init__(self, root: str, rows: list[dict], extras: list[str]):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        self.plt, self.root, self.extras = plt, root, extras
        self.batches, self.hiddens = _panels(rows)
        self.line_keys = sorted({_line_key(r, extras) for r in rows if r["activation"] is not None})
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        self.color_of = {k: colors[i % len(colors)] for i, k in enumerate(self.line_keys)}

    def figure(self, title: str):
        """A new figure and its panels `axes[batch index][hidden index]`, titled."""
        nr, nc = len(self.batches), len(self.hiddens)
        fig, axes = self.plt.subplots(nr, nc, figsize=(3.2 * nc + 1, 2.6 * nr + 1), sharex=True, sharey=True, squeeze=False)
        fig.suptitle(title, fontsize=10)
        for i, b in enumerate(self.batches):
            for jj, h in enumerate(self.hiddens):
                ax = axes[i][jj]
                ax.set_title(f"hidden {_hidden_str(h)}, batch {b}", fontsize=9)
                ax.grid(alpha=0.3)
        return fig, axes

    def panel(self, axes, r: dict):
        """The panel of row `r`."""
        return axes[self.batches.index(r["batch_size"])][self.hiddens.index(r["hidden"])]

    def lines(self, axes, rows: list[dict]):
        """(panel, line key, the line's rows in that panel) for every panel and line, empty ones too."""
        for i, b in enumerate(self.batches):
            for jj, h in enumerate(self.hiddens):
                for k in self.line_keys:
                    rs = [r for r in rows if _line_key(r, self.extras) == k and r["batch_size"] == b and r["hidden"] == h]
                    yield axes[i][jj], k, rs

    def save(self, fig, axes, name: str, xlabel: str, ylabel: str) -> str:
        """Label the outer axes, add the legend, write `root/name`; returns `name`."""
        for ax in axes[-1]:
            ax.set_xlabel(xlabel)
        for row in axes:
            row[0].set_ylabel(ylabel)
        handles = [self.plt.Line2D([], [], color=self.color_of[k], marker="o", label=k) for k in self.line_keys]
        handles.append(self.plt.Line2D([], [], color="k", marker="x", linestyle="", label="diverged"))
        handles.append(self.plt.Line2D([], [], color="r", marker="s", linestyle="", label="failed job"))
        fig.legend(handles=handles, loc="center right", fontsize=8)
        fig.tight_layout(rect=(0, 0, 1 - 1.3 / fig.get_figwidth(), 0.97))
        fig.savefig(os.path.join(self.root, name), dpi=90)
        self.plt.close(fig)
        return name


def plot_all(root: str, jobs: list[dict], rows: list[dict], extras: list[str], minima_cols: list[str]) -> list[str]:
    """Draw the report's plots into `root` (see the module docstring); returns the file names written."""
    grid = _Grid(root, rows, extras)
    if not grid.batches or not grid.hiddens:
        return []
    # A failed job whose config was unreadable has no place on the axes.
    plotted = [r for r in rows if r["batch_size"] is not None and r["hidden"] is not None and r["learning_rate"] is not None]
    written = [_plot_accuracy(grid, plotted), _plot_cost_spread(grid, plotted), _plot_learning_curves(grid, plotted, jobs)]
    if "sharpness" in minima_cols:
        written.append(_plot_sharpness(grid, plotted))
    return written


def _plot_accuracy(grid: _Grid, plotted: list[dict]) -> str:
    """accuracy_vs_lr.png: test accuracy against learning rate."""
    fig, axes = grid.figure("final test accuracy: mean ± std over seeds (x at 0: some seed diverged; dotted: chance)")
    for ax, k, rs in grid.lines(axes, plotted):
        ok = [r for r in rs if _finite(r["test_acc_mean"])]
        if ok:
            ax.errorbar([r["learning_rate"] for r in ok], [100 * r["test_acc_mean"] for r in ok],
                        yerr=[100 * r["test_acc_std"] for r in ok], color=grid.color_of[k], marker="o", ms=3, capsize=2)
        div = [r for r in rs if r["diverged"]]
        ax.plot([r["learning_rate"] for r in div], [0] * len(div), "x", color=grid.color_of[k], ms=7)
        fail = [r for r in rs if r["status"] == "failed"]
        ax.plot([r["learning_rate"] for r in fail], [50] * len(fail), "s", color="r", ms=6)  # at 50%: no result
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.axhline(10, color="gray", lw=0.8, ls=":")
    return grid.save(fig, axes, "accuracy_vs_lr.png", "learning rate η", "test accuracy %")


def _plot_cost_spread(grid: _Grid, plotted: list[dict]) -> str:
    """cost_spread.png: every network's final train cost against learning rate."""
    fig, axes = grid.figure("final train cost of every seed (at the top, x: some seed diverged; red: failed job)")
    # Lines side by side around each learning rate, so that their points do not hide each other.
    offsets = {k: (i - (len(grid.line_keys) - 1) / 2) * 0.06 for i, k in enumerate(grid.line_keys)}
    top = max([float(m["train_cost"]) for r in plotted for m in r["_models"] if _finite(m.get("train_cost"))] or [1.0])
    for r in plotted:
        ax, k = grid.panel(axes, r), _line_key(r, grid.extras)
        x = r["learning_rate"] * 10 ** offsets[k]
        if r["failed_networks"] and not r["_models"]:
            ax.plot([x], [top * 1.5], "s", color="r", ms=6)
        if not r["_models"]:
            continue
        alive = [float(m["train_cost"]) for m in r["_models"] if not m.get("diverged") and _finite(m.get("train_cost"))]
        ax.plot([x] * len(alive), alive, "o", color=grid.color_of[k], ms=3, alpha=0.6)
        if r["diverged"]:
            ax.plot([x], [top * 1.5], "x", color=grid.color_of[k], ms=7)
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_yscale("log")
    return grid.save(fig, axes, "cost_spread.png", "learning rate η", "final train cost")


def _plot_learning_curves(grid: _Grid, plotted: list[dict], jobs: list[dict]) -> str:
    """learning_curves.png: test accuracy per epoch at each (line, panel)'s best learning rate."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = grid.figure("test accuracy per epoch at the best η (mean; band: min–max over seeds)")
    curves = _curves(jobs)
    for ax, k, rs in grid.lines(axes, [r for r in plotted if _finite(r["test_acc_mean"])]):
        if not rs:
            continue
        best = max(rs, key=lambda r: r["test_acc_mean"])
        acc_ExS = curves.get((k, best["hidden"], best["batch_size"], best["learning_rate"]))
        if acc_ExS is None or acc_ExS.size == 0:
            continue
        ep = np.arange(1, acc_ExS.shape[0] + 1)
        color = grid.color_of[k]
        ax.plot(ep, 100 * np.nanmean(acc_ExS, axis=1), "-o", color=color, ms=3, label=f"{k} η={best['learning_rate']:g}")
        ax.fill_between(ep, 100 * np.nanmin(acc_ExS, axis=1), 100 * np.nanmax(acc_ExS, axis=1), color=color, alpha=0.2)
    for ax in axes.flat:
        if ax.lines:
            ax.legend(fontsize=6, loc="lower right")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return grid.save(fig, axes, "learning_curves.png", "epoch", "test accuracy %")


def _plot_sharpness(grid: _Grid, plotted: list[dict]) -> str:
    """sharpness_vs_lr.png: sharpness against learning rate, with the 2/η line of GD's stability."""
    fig, axes = grid.figure("sharpness (top Hessian eigenvalue) at the minimum; dashed: 2/η")
    for ax, k, rs in grid.lines(axes, [r for r in plotted if _finite(r.get("sharpness"))]):
        if rs:  # floored: a log axis has no place for sharpness ≤ 0
            ax.plot([r["learning_rate"] for r in rs], [max(r["sharpness"], 1e-6) for r in rs], "-o", color=grid.color_of[k], ms=3)
    lrs = sorted({r["learning_rate"] for r in plotted})
    for ax in axes.flat:
        ax.plot(lrs, [2 / lr for lr in lrs], "--", color="gray", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
    return grid.save(fig, axes, "sharpness_vs_lr.png", "learning rate η", "sharpness")


def _curves(jobs: list[dict]) -> dict:
    """(line key, hidden, batch, lr) → test accuracy array (epochs × networks), diverged networks as NaN."""
    extras = _extras(jobs)
    out: dict[tuple, list] = {}
    for j in jobs:
        if j["status"] != "ok" or not j["metrics"]:
            continue
        r = {"activation": j["activation"]} | {k: _fmt_value(j["config"].get(k)) for k in extras}
        k = _line_key(r, extras)
        acc = np.array([rec.get("test_accuracy", []) for rec in j["metrics"]], dtype=float)
        div = np.array([rec.get("diverged", [False] * acc.shape[1]) for rec in j["metrics"]], dtype=bool)
        if acc.ndim != 2 or acc.shape[1] != len(j["models"]):
            continue
        acc[div] = np.nan
        for g, m in enumerate(j["models"]):
            out.setdefault((k, j["hidden"], j["batch_size"], float(m["learning_rate"])), []).append(acc[:, g])
    return {key: np.stack(cols, axis=1) for key, cols in out.items() if len({len(c) for c in cols}) == 1}


# --------------------------------------------------------------------------- entry points


def report(root: str, quiet: bool = False) -> dict:
    """Read every job under `root`, write the report files into it; returns what was written.

    Raises ReportError when `root` is not a folder or holds no job.
    """
    if not os.path.isdir(root):
        raise ReportError(f"{root}: no such directory")
    job_dirs = find_jobs(root)
    if not job_dirs:
        raise ReportError(f"{root}: no job folders in it (none holds .hydra/, summary.json, metrics.jsonl or error.txt)")
    jobs = [read_job(d, root) for d in job_dirs]
    rows, extras, minima_cols = aggregate(jobs)
    try:
        for name in OUTPUTS:  # plots of an earlier report that this one would not redraw
            if name.endswith(".png") and os.path.exists(os.path.join(root, name)):
                os.remove(os.path.join(root, name))
        write_csv(os.path.join(root, "report.csv"), rows, extras, minima_cols)
        pngs = plot_all(root, jobs, rows, extras, minima_cols)
        table = markdown_table(rows, extras, minima_cols)
        write_markdown(os.path.join(root, "report.md"), root, jobs, rows, table, pngs, minima_cols)
    except OSError as e:
        raise ReportError(f"{root}: cannot write the report: {e.strerror or e}") from None
    if not quiet:
        print(table)
        failed = [j for j in jobs if j["status"] == "failed"]
        for j in failed:
            print(f"FAILED job {j['name']}: {j['reason']}")
        print(f"report: {len(jobs)} jobs ({len(failed)} failed), {len(rows)} configurations -> "
              f"{os.path.join(root, 'report.md')}, report.csv, {', '.join(pngs)}")
    return {"jobs": jobs, "rows": rows, "pngs": pngs, "extras": extras, "minima_cols": minima_cols}


try:
    from hydra.experimental.callback import Callback
except ImportError:  # Hydra absent: the command line still works
    Callback = object  # type: ignore[misc,assignment]


class ReportCallback(Callback):
    """Hydra callback: writes the report into the sweep dir when a multirun ends.

    In the config: `hydra.callbacks.report: {_target_: mlpjax.report.ReportCallback}`.
    A failure here is printed as one line and does not fail the sweep.
    """

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = config.hydra.sweep.dir
        try:
            report(sweep_dir)
        except Exception as e:  # the sweep itself is done; its results are on disk
            print(f"report: could not write the report for {sweep_dir}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                  file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print("usage: python -m mlpjax.report DIR   (a sweep dir of mlpjax.train, e.g. multirun/2025-01-01/12-00-00)",
              file=sys.stderr if len(argv) != 1 else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    try:
        report(argv[0])
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
