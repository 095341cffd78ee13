"""Aggregate a sweep of `mlpjax.train` runs: `python -m mlpjax.report DIR`.

DIR is a Hydra sweep dir (`multirun/…`, one sub-folder per job) or a single run dir.
Every job folder (one holding `.hydra/`, `summary.json`, `metrics.jsonl` or `error.txt`)
is read; one that has no readable `summary.json` is a FAILED job and is listed as such,
with what it left (`error.txt`, the last lines of its log, the epochs in `metrics.jsonl`).

Every choice is made on the validation split when the jobs held one out (`data.validation`),
and only then is the test set read: the best seed of a configuration, the best (batch, η) of
an activation and hidden layers, the η of the learning curves. Without a validation split the
choices fall back to the test set, and report.md says so.

Writes into DIR:
  report.csv            one row per configuration: activation, hidden, batch size, learning
                        rate (and any other setting the sweep varied); seeds; mean ± std of
                        validation accuracy (when held out), test accuracy and final train cost
                        over the networks that did not diverge; test min–max; best and worst
                        seed (chosen on validation); diverged; fraction at chance; networks that
                        are candidates / show negative curvature / still descend after SGD and after
                        the float32 polish (`minima.kind`; no verified minima: `landscape critical`
                        verifies) with the median ‖∇C‖, λ_min, λ_max; the end-point analysis
                        (`landscape.analyze_group`) averaged over seeds; failed jobs as rows
                        with status `failed`
  networks.csv          one row per network: its settings, seed, every number of summary.json
                        (stationary points before/after the polish and their kind, minima keys)
  differences.csv       (sigmoid and ReLU both present) sigmoid − ReLU at equal hidden, batch
                        and η, paired by seed: mean, std and 95% bootstrap interval
  report.md             the selection on validation, the paired differences, the checked
                        minima, the table, the failed jobs, the plots with one-line captions
  accuracy_vs_lr.png    every network's validation (or test) accuracy and the median, against η
  learning_curves.png   validation (or test) error per epoch (log) at the η chosen on validation
  cost_spread.png       every network's final train cost against η
  sharpness_vs_lr.png   (with minima) sharpness against η, both activations, with the 2/η line
  sharpness_vs_cost.png (with minima) sharpness against final train cost, every network
  sharpness_vs_batch.png (with minima) sharpness against batch size at each η
The markdown table is also printed. As a Hydra callback (`ReportCallback`), it runs on the
sweep dir when a multirun ends. Errors (no DIR, no job in it) are one line and exit code 2.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import glob
import json
import math
import os
import re
import statistics
import sys
import textwrap
import warnings
from typing import Any

import numpy as np
import yaml

from mlpjax import config, minima, model, rundir

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
MINIMA_ORDER = (
    "sharpness",
    "sharpness_lr",
    "min_eigenvalue",
    "saturated_units",
    "dead_units",
    "saturated_pairs",
    "dead_pairs",
    "init_barrier",
    "seed_barrier",
    "cost_subset",
)
# The minima columns of report.md (report.csv has them all), and their headers.
MD_MINIMA = {
    "sharpness": "sharpness",
    "sharpness_lr": "sharpness·η",
    "saturated_units": "saturated units",
    "dead_units": "dead units",
    "min_eigenvalue": "λ_min",
    "init_barrier": "init barrier",
    "seed_barrier": "seed barrier",
}
JOB_MARKERS = (".hydra", "summary.json", "metrics.jsonl", "error.txt")
PLOTS = (
    "accuracy_vs_lr.png",
    "learning_curves.png",
    "cost_spread.png",
    "sharpness_vs_lr.png",
    "sharpness_vs_cost.png",
    "sharpness_vs_batch.png",
)
OUTPUTS = ("report.csv", "networks.csv", "differences.csv", "report.md", *PLOTS)
# A network's own numbers in summary.json, copied into networks.csv.
NETWORK_NUMBERS = (
    "validation_accuracy",
    "validation_cost",
    "test_accuracy",
    "test_cost",
    "train_accuracy",
    "train_cost",
    "diverged",
    "diverged_epoch",
)
# The stationary points of `train.polish_and_check`: after SGD, after the L-BFGS polish.
WHEN = ("sgd", "polished")
POINT_KEYS = ("grad_norm", "lambda_max", "lambda_min")
# report.csv's count columns per kind of point (`minima.kind`): candidates_sgd, negative_curvature_polished, …
KIND_COLUMNS = {minima.CANDIDATE: "candidates", minima.NEGATIVE: "negative_curvature", minima.DESCENDING: "descending"}
# The paired sigmoid − ReLU differences: summary key, report.md header, scale and format in report.md,
# and whether networks at chance are left out (a collapsed network's accuracy or sharpness says
# nothing about the activation at that setting; its cost 1.0 is still a cost).
PAIRED = ("sigmoid", "relu")
DIFFERENCES = (
    ("validation_accuracy", "validation acc (points)", 100, "+.2f", True),
    ("test_accuracy", "test acc (points)", 100, "+.2f", True),
    ("train_cost", "final train cost", 1, "+.3g", False),
    ("sharpness", "sharpness", 1, "+.3g", True),
    ("seed_barrier", "seed barrier", 1, "+.3g", True),
)


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
        job["post"] = summary.get("post") if isinstance(summary.get("post"), dict) else {}
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


# --------------------------------------------------------------------------- networks


def _finite(v: Any) -> bool:
    """A finite number (NumPy's too), not a bool."""
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and math.isfinite(v)


def _point_kind(point: Any, tol: Any) -> str | None:
    """`minima.kind` of a stationary point, None when the point or the job's polish_tol is missing."""
    if not isinstance(point, dict) or not _finite(tol) or not all(k in point for k in POINT_KEYS):
        return None
    return minima.kind({k: float(point[k]) if point[k] is not None else math.nan for k in POINT_KEYS}, float(tol))


def network_record(job: dict, m: dict, settings: dict) -> dict:
    """One network of an ok job as a flat record (a row of networks.csv).

    Its settings, seed, summary.json's numbers, `at_chance` (test accuracy < CHANCE, or
    diverged), `sgd_*`/`polished_*` (the stationary points and their `kind`), and the minima keys.
    """
    rec = {"job": job["name"], **settings, "learning_rate": float(m["learning_rate"]), "seed": m.get("seed")}
    rec |= {k: m.get(k) for k in NETWORK_NUMBERS}
    rec["diverged"] = bool(m.get("diverged"))
    rec["at_chance"] = rec["diverged"] or not _finite(rec["test_accuracy"]) or rec["test_accuracy"] < CHANCE
    stationary = m.get("stationary") if isinstance(m.get("stationary"), dict) else {}
    for when in WHEN:
        point = stationary.get(when)
        if isinstance(point, dict):
            rec |= {f"{when}_{k}": v for k, v in point.items()}
            rec[f"{when}_kind"] = _point_kind(point, job["post"].get("polish_tol"))
    rec |= m.get("minima") if isinstance(m.get("minima"), dict) else {}
    return rec


def _values(nets: list[dict], key: str) -> list[float]:
    """The finite values of `key` over `nets`."""
    return [float(n[key]) for n in nets if _finite(n.get(key))]


def _alive(nets: list[dict]) -> list[dict]:
    """The networks that did not diverge: their numbers are results."""
    return [n for n in nets if not n["diverged"]]


def selection_split(nets: list[dict]) -> str:
    """`validation` when every network with a result has a validation accuracy, else `test`."""
    scored = [n for n in _alive(nets) if _finite(n.get("test_accuracy"))]
    return "validation" if scored and all(_finite(n.get("validation_accuracy")) for n in scored) else "test"


# --------------------------------------------------------------------------- aggregating


@dataclasses.dataclass
class Sweep:
    """Everything the report writes from: the jobs, one row per configuration (with its networks
    in `row["_nets"]`), the columns the sweep needs, and the split every choice is made on."""

    jobs: list[dict]
    rows: list[dict]
    extras: list[str]  # other settings that differ between jobs
    minima_cols: list[str]  # numeric minima keys (report.csv)
    minima_keys: list[str]  # every minima key (networks.csv)
    split: str  # "validation" or "test"
    has_validation: bool
    stationary: bool  # some network has a checked stationary point

    @property
    def nets(self) -> list[dict]:
        return [n for r in self.rows for n in r["_nets"]]


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


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else math.nan


def _param_count(hidden, sizes) -> int:
    """Weights and biases of a network with these hidden layers, and `sizes`' first and last size."""
    return model.count_for_sizes([sizes[0], *(hidden or ()), sizes[-1]])


def aggregate(jobs: list[dict]) -> Sweep:
    """One row per configuration, sorted, and what the report needs to know about the sweep."""
    extras = _extras(jobs)
    configurations = _configurations(jobs, extras)
    nets = [n for g in configurations for n in g["nets"]]
    minima_keys = _minima_keys(jobs)
    # report.csv's means: of the numeric keys, but not of seed_barrier_to (a seed).
    minima_cols = [k for k in minima_keys if k != "seed_barrier_to" and any(_finite(n.get(k)) for n in nets)]
    split = selection_split(nets)
    # A failed job left no sizes: its configuration's networks have those of the sweep's others.
    sweep_sizes = next((j["sizes"] for j in jobs if j.get("sizes")), MNIST_SIZES)
    rows = [_row(c, minima_cols, sweep_sizes, split) for c in configurations]
    rows.sort(key=lambda r: _row_order(r, extras))
    return Sweep(
        jobs,
        rows,
        extras,
        minima_cols,
        minima_keys,
        split,
        has_validation=any(_finite(n.get("validation_accuracy")) for n in nets),
        stationary=any(f"{w}_kind" in n for n in nets for w in WHEN),
    )


def _settings(job: dict, extras: list[str]) -> dict:
    """A job's settings: activation, hidden, batch size and the `extras` (as strings)."""
    return {"activation": job["activation"], "hidden": job["hidden"], "batch_size": job["batch_size"]} | {
        k: _fmt_value(job["config"].get(k)) for k in extras
    }


def _configurations(jobs: list[dict], extras: list[str]) -> list[dict]:
    """The networks of the jobs, and the failed jobs, per configuration, in the order first met.

    A configuration is its settings (the own columns and `extras`) and a learning rate; it
    holds `nets` (`network_record`s), `jobs` (names of the jobs they came from),
    `failed` (failed jobs, once per learning rate they were to train) and `sizes` (or None).
    """
    groups: dict[tuple, dict] = {}

    def group(settings: dict, lr: float | None, job: dict) -> dict:
        empty = {"learning_rate": lr, "nets": [], "jobs": [], "failed": [], "sizes": None}
        g = groups.setdefault((*settings.values(), lr), settings | empty)
        g["sizes"] = g["sizes"] or job.get("sizes")
        return g

    for j in jobs:
        settings = _settings(j, extras)
        if j["status"] != "ok":
            for lr in j["learning_rates"] or [None]:
                group(settings, lr, j)["failed"].append(j)
            continue
        for m in j["models"]:
            g = group(settings, float(m["learning_rate"]), j)
            g["nets"].append(network_record(j, m, settings))
            if j["name"] not in g["jobs"]:
                g["jobs"].append(j["name"])
    return list(groups.values())


def _minima_keys(jobs: list[dict]) -> list[str]:
    """Every `minima` key of any network: those of MINIMA_ORDER in its order, then the rest sorted."""
    keys = {k for j in jobs if j["status"] == "ok" for m in j["models"] if isinstance(m.get("minima"), dict) for k in m["minima"]}
    return [k for k in MINIMA_ORDER if k in keys] + sorted(keys - set(MINIMA_ORDER))


def _row(g: dict, minima_cols: list[str], sweep_sizes, split: str) -> dict:
    """One configuration's line of the table: its settings, statistics over its networks, its status."""
    nets = g["nets"]
    alive = _alive(nets)
    n_diverged = len(nets) - len(alive)
    row = {k: v for k, v in g.items() if k not in ("nets", "jobs", "failed", "sizes")}
    row["seeds"] = len(nets)
    for name, key in (("val_acc", "validation_accuracy"), ("test_acc", "test_accuracy"), ("train_cost", "train_cost")):
        row[f"{name}_mean"], row[f"{name}_std"] = _mean_std(_values(alive, key))
    tests = _values(alive, "test_accuracy")
    row["test_acc_min"], row["test_acc_max"] = (min(tests), max(tests)) if tests else (math.nan, math.nan)
    row |= _best_and_worst(alive, split)
    row |= {
        "diverged": n_diverged,
        "diverged_frac": n_diverged / len(nets) if nets else math.nan,
        "chance_frac": sum(n["at_chance"] for n in nets) / len(nets) if nets else math.nan,
        "status": _status(nets, alive, g["failed"]),
        "failed_networks": sum(len(f["models"]) if "models" in f else (f.get("seeds") or 0) for f in g["failed"]),
        "jobs": " ".join(g["jobs"] + [f["name"] for f in g["failed"]]),
        "error": " | ".join(f"{f['name']}: {f['reason']}" for f in g["failed"]),
    }
    row |= _kind_counts(nets) | _stationary_medians(alive)
    for k in minima_cols:
        vals = _values(alive, k)
        row[k] = statistics.fmean(vals) if vals else math.nan
    row["_nets"] = nets
    row["_params"] = math.inf if g["hidden"] is None else _param_count(g["hidden"], g["sizes"] or sweep_sizes)
    return row


def _best_and_worst(alive: list[dict], split: str) -> dict:
    """The seeds of the best and the worst network by `split` accuracy, with their validation and test accuracy."""
    key = f"{split}_accuracy"
    ranked = sorted((n for n in alive if _finite(n.get(key))), key=lambda n: -float(n[key]))
    out = {}
    for end, n in (("best", ranked[0] if ranked else {}), ("worst", ranked[-1] if ranked else {})):
        out[f"{end}_seed"] = n.get("seed")
        out[f"{end}_val_acc"] = float(n["validation_accuracy"]) if _finite(n.get("validation_accuracy")) else math.nan
        out[f"{end}_acc"] = float(n["test_accuracy"]) if _finite(n.get("test_accuracy")) else math.nan
    return out


def _kind_counts(nets: list[dict]) -> dict:
    """`checked_sgd`, `candidates_sgd`, `negative_curvature_sgd`, `descending_sgd` and the same `_polished`."""
    out = {}
    for when in WHEN:
        kinds = [n.get(f"{when}_kind") for n in nets]
        out[f"checked_{when}"] = sum(k is not None for k in kinds)
        out |= {f"{col}_{when}": kinds.count(k) for k, col in KIND_COLUMNS.items()}
    return out


def _stationary_medians(alive: list[dict]) -> dict:
    """Medians over the networks of ‖∇C‖, λ_max, λ_min and λ_min/λ_max after SGD and after the polish."""
    out = {}
    for when in WHEN:
        out |= {f"{k}_{when}_median": _median(_values(alive, f"{when}_{k}")) for k in POINT_KEYS}
        ratios = [
            float(n[f"{when}_lambda_min"]) / float(n[f"{when}_lambda_max"])
            for n in alive
            if _finite(n.get(f"{when}_lambda_min")) and _finite(n.get(f"{when}_lambda_max")) and n[f"{when}_lambda_max"] > 0
        ]
        out[f"lambda_ratio_{when}_median"] = _median(ratios)
    return out


def _status(nets: list[dict], alive: list[dict], failed: list[dict]) -> str:
    if not nets:
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
        _batch_order(r["batch_size"]),
        tuple(str(r.get(k)) for k in extras),
        math.inf if r["learning_rate"] is None else r["learning_rate"],
    )


def _batch_order(b: Any) -> float:
    return math.inf if b in ("full", None) else b


def select_best(rows: list[dict], split: str) -> dict | None:
    """The row with the best mean `split` accuracy over its seeds.

    A configuration in which a network diverged is chosen only when every one has such a
    network: its mean leaves the diverged networks out, which would flatter it.
    """
    col = "val_acc_mean" if split == "validation" else "test_acc_mean"
    scored = [r for r in rows if _finite(r.get(col))]
    clean = [r for r in scored if not r["diverged"]] or scored
    return max(clean, key=lambda r: r[col], default=None)


def _grouped(rows: list[dict], keys: list[str]) -> dict[tuple, list[dict]]:
    """The rows by their values of `keys`, in the order first met."""
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return out


def selected(sweep: Sweep) -> list[dict]:
    """Per (activation, hidden layers, extra settings): the configuration chosen on `sweep.split`."""
    groups = _grouped([r for r in sweep.rows if r["_nets"]], ["activation", "hidden", *sweep.extras])
    return [best for rs in groups.values() if (best := select_best(rs, sweep.split)) is not None]


# --------------------------------------------------------------------------- paired differences


def paired_difference(a_by_seed: dict, b_by_seed: dict, n_boot: int = 10000, seed: int = 0) -> dict:
    """a − b over the seeds both have (finite values only): the same seed is the same data order
    and the same draw of the initialization scheme, so each pair differs only in what is compared.

    Returns `n` (pairs), `mean` and `std` (sample) of the differences, `ci_low`/`ci_high`: the 95%
    percentile bootstrap interval of the mean (`n_boot` resamples of the seeds with replacement,
    NumPy generator `seed`; NaN with fewer than 2 pairs), and `pairs`: [(seed, a, b), …].
    """
    seeds = sorted(s for s in a_by_seed.keys() & b_by_seed.keys() if _finite(a_by_seed[s]) and _finite(b_by_seed[s]))
    pairs = [(s, float(a_by_seed[s]), float(b_by_seed[s])) for s in seeds]
    d = np.array([a - b for _, a, b in pairs], dtype=float)
    out = {"n": len(d), "mean": math.nan, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan, "pairs": pairs}
    if len(d) == 0:
        return out
    out["mean"], out["std"] = float(d.mean()), float(d.std(ddof=1)) if len(d) > 1 else 0.0
    if len(d) > 1:
        means = d[np.random.default_rng(seed).integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
        out["ci_low"], out["ci_high"] = (float(v) for v in np.percentile(means, [2.5, 97.5]))
    return out


def _by_seed(nets: list[dict], key: str, drop_chance: bool) -> dict:
    """seed → value of `key` of the networks whose value is a result (not diverged; not at chance if asked)."""
    return {
        n["seed"]: float(n[key])
        for n in nets
        if n["seed"] is not None and not n["diverged"] and not (drop_chance and n["at_chance"]) and _finite(n.get(key))
    }


def differences(sweep: Sweep) -> list[dict]:
    """sigmoid − ReLU at every (hidden, batch, extras, η) both trained: per quantity of DIFFERENCES
    present in the sweep, `paired_difference` and `dropped` (seeds both have, minus pairs used)."""
    a, b = PAIRED
    keys = ["hidden", "batch_size", *sweep.extras, "learning_rate"]
    present = [d for d in DIFFERENCES if any(_finite(n.get(d[0])) for n in sweep.nets)]
    out = []
    for setting, rs in _grouped([r for r in sweep.rows if r["_nets"]], keys).items():
        by_act = {r["activation"]: r["_nets"] for r in rs}
        if a not in by_act or b not in by_act:
            continue
        both = {n["seed"] for n in by_act[a]} & {n["seed"] for n in by_act[b]} - {None}
        entry = dict(zip(keys, setting))
        for key, _, _, _, drop_chance in present:
            d = paired_difference(_by_seed(by_act[a], key, drop_chance), _by_seed(by_act[b], key, drop_chance))
            entry[key] = d | {"dropped": len(both) - d["n"]}
        out.append(entry)
    return out


# --------------------------------------------------------------------------- writing: CSV


def _hidden_str(h) -> str:
    return "?" if h is None else ("[" + ",".join(map(str, h)) + "]")


def _num(v: Any, fmt: str) -> str:
    return format(v, fmt) if _finite(v) else ""


def _csv_cell(col: str, v: Any) -> Any:
    if col == "hidden":
        return _hidden_str(v)
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else ""
    if v is None:
        return ""
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v)
    return v


def _write_csv(path: str, cols: list[str], records: list[dict]) -> None:
    """One header, one line per record; floats to 6 significant digits, NaN and None empty."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in records:
            w.writerow([_csv_cell(c, r.get(c)) for c in cols])


def _settings_columns(sweep: Sweep) -> list[str]:
    return ["activation", "hidden", "batch_size", *sweep.extras, "learning_rate"]


def report_columns(sweep: Sweep) -> list[str]:
    """report.csv's columns: validation, stationary and minima ones only where the sweep has them."""
    val = ["val_acc_mean", "val_acc_std"] if sweep.has_validation else []
    best = (
        ["best_seed", "best_val_acc", "best_acc", "worst_seed", "worst_val_acc", "worst_acc"]
        if sweep.has_validation
        else ["best_seed", "best_acc", "worst_seed", "worst_acc"]
    )
    stationary = []
    if sweep.stationary:
        for when in WHEN:
            stationary += [
                f"checked_{when}",
                *[f"{c}_{when}" for c in KIND_COLUMNS.values()],
                *[f"{k}_{when}_median" for k in (*POINT_KEYS, "lambda_ratio")],
            ]
    return [
        *_settings_columns(sweep),
        "seeds",
        "selected_on",
        *val,
        "test_acc_mean",
        "test_acc_std",
        "test_acc_min",
        "test_acc_max",
        "train_cost_mean",
        "train_cost_std",
        *best,
        "diverged",
        "diverged_frac",
        "chance_frac",
        *stationary,
        *sweep.minima_cols,
        "status",
        "failed_networks",
        "jobs",
        "error",
    ]


def write_report_csv(path: str, sweep: Sweep) -> None:
    _write_csv(path, report_columns(sweep), [r | {"selected_on": sweep.split} for r in sweep.rows])


def network_columns(sweep: Sweep) -> list[str]:
    """networks.csv's columns: settings, seed, summary numbers, at_chance, the stationary points, the minima keys."""
    numbers = [k for k in NETWORK_NUMBERS if sweep.has_validation or not k.startswith("validation")]
    # The stationary keys in the order summary.json has them, `kind` last.
    prefixes = tuple(f"{w}_" for w in WHEN)
    point_cols = list(dict.fromkeys(k for n in sweep.nets for k in n if k.startswith(prefixes) and not k.endswith("_kind")))
    ordered = [c for when in WHEN for c in [*(c for c in point_cols if c.startswith(f"{when}_")), f"{when}_kind"]] if point_cols else []
    return ["job", *_settings_columns(sweep), "seed", *numbers, "at_chance", *ordered, *sweep.minima_keys]


def difference_columns(sweep: Sweep, diffs: list[dict]) -> list[str]:
    present = [d[0] for d in DIFFERENCES if diffs and d[0] in diffs[0]]
    stats = ("mean", "std", "ci_low", "ci_high", "n", "dropped", "seeds")
    return ["difference", "hidden", "batch_size", *sweep.extras, "learning_rate", *[f"{k}_{s}" for k in present for s in stats]]


def write_differences_csv(path: str, sweep: Sweep, diffs: list[dict]) -> None:
    """differences.csv: one line per setting, for each quantity the statistics of `paired_difference`."""
    records = []
    for d in diffs:
        rec = {"difference": " - ".join(PAIRED)} | {k: v for k, v in d.items() if not isinstance(v, dict)}
        for key, stats in ((k, v) for k, v in d.items() if isinstance(v, dict)):
            rec |= {f"{key}_{s}": stats[s] for s in ("mean", "std", "ci_low", "ci_high", "n", "dropped")}
            rec[f"{key}_seeds"] = " ".join(str(s) for s, _, _ in stats["pairs"])
        records.append(rec)
    _write_csv(path, difference_columns(sweep, diffs), records)


# --------------------------------------------------------------------------- writing: markdown


def _lr_str(lr) -> str:
    return "?" if lr is None else f"{lr:g}"


def _md_table(head: list[str], lines: list[list[str]]) -> str:
    return "\n".join(
        ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|", *("| " + " | ".join(cells) + " |" for cells in lines)]
    )


def _pm(mean: float, std: float, scale: float, fmt: str) -> str:
    return f"{scale * mean:{fmt}} ± {scale * std:{fmt}}" if _finite(mean) else "—"


def _settings_cells(r: dict, extras: list[str], batch: bool = True, lr: bool = True) -> list[str]:
    cells = [str(r["activation"] or "?"), _hidden_str(r["hidden"])]
    cells += [str(r["batch_size"] if r["batch_size"] is not None else "?")] if batch else []
    return cells + [str(r.get(k)) for k in extras] + ([_lr_str(r["learning_rate"])] if lr else [])


def _seed_cell(r: dict, end: str, split: str) -> str:
    acc = r[f"{end}_val_acc" if split == "validation" else f"{end}_acc"]
    return f"{r[f'{end}_seed']} ({100 * acc:.2f}%)" if r[f"{end}_seed"] is not None and _finite(acc) else "—"


def markdown_table(sweep: Sweep) -> str:
    """Every configuration: report.md's main table (also printed)."""
    md_minima = [k for k in sweep.minima_cols if k in MD_MINIMA]
    split_name = "val" if sweep.split == "validation" else "test"
    head = [
        "activation",
        "hidden",
        "batch",
        *sweep.extras,
        "lr",
        "seeds",
        *(["val acc % (mean ± std)"] if sweep.has_validation else []),
        "test acc % (mean ± std)",
        "train cost (mean ± std)",
        f"best seed ({split_name})",
        f"worst seed ({split_name})",
        "diverged",
        "at chance",
        *(["candidates (polished)"] if sweep.stationary else []),
        *[MD_MINIMA[k] for k in md_minima],
        "status",
    ]
    return _md_table(head, [_table_cells(r, sweep, md_minima) for r in sweep.rows])


def _table_cells(r: dict, sweep: Sweep, md_minima: list[str]) -> list[str]:
    status = r["status"].upper() if r["status"] != "ok" else "ok"
    if r["failed_networks"] and r["status"] != "failed":  # the same configuration also ran in a job that failed
        status += f" (+{r['failed_networks']} in failed jobs)"
    if r["status"] == "failed":  # a dash in every column between seeds and status
        seeds = f"— ({r['failed_networks']} in failed jobs)" if r["failed_networks"] else "—"
        return [*_settings_cells(r, sweep.extras), seeds, *["—"] * (6 + sweep.has_validation + sweep.stationary + len(md_minima)), status]
    val = [_pm(r["val_acc_mean"], r["val_acc_std"], 100, ".2f")] if sweep.has_validation else []
    at_min = [f"{r['candidates_polished']}/{r['checked_polished']}"] if sweep.stationary else []
    return [
        *_settings_cells(r, sweep.extras),
        str(r["seeds"]),
        *val,
        _pm(r["test_acc_mean"], r["test_acc_std"], 100, ".2f").replace("—", "diverged"),
        _pm(r["train_cost_mean"], r["train_cost_std"], 1, ".4f").replace("—", "diverged"),
        _seed_cell(r, "best", sweep.split),
        _seed_cell(r, "worst", sweep.split),
        f"{r['diverged']}/{r['seeds']}",
        f"{round(r['chance_frac'] * r['seeds'])}/{r['seeds']}",
        *at_min,
        *[_num(r.get(k), ".3g") for k in md_minima],
        status,
    ]


def selection_section(sweep: Sweep) -> list[str]:
    """'Selected on validation': per (activation, hidden), the best (batch, η) on validation, then its test accuracy."""
    chosen = selected(sweep)
    if not chosen:
        return []
    on_val = sweep.split == "validation"
    title = "## Selected on validation" if on_val else "## Selected on test (no validation split: chosen on test)"
    text = (
        "For each activation and hidden layers, the configuration (batch, η) with the best mean validation accuracy over its "
        "seeds; the test set played no part in the choice, and is read only here, for the chosen one."
        if on_val
        else "The jobs held out no validation images (`data.validation=0`): "
        "each configuration below is the best on the test set itself, so its test accuracy is optimistic."
    )
    text += (
        " Mean ± sample std over the networks that did not diverge; a configuration where a network diverged is chosen "
        "only when every one has one."
    )
    head = [
        "activation",
        "hidden",
        *sweep.extras,
        "batch, η",
        "seeds (not diverged)",
        *(["validation acc %"] if on_val else []),
        "test acc % (min–max)",
        "train cost",
        *(["candidates (polished)"] if sweep.stationary else []),
    ]
    lines = []
    for r in chosen:
        test = f"{_pm(r['test_acc_mean'], r['test_acc_std'], 100, '.2f')} ({100 * r['test_acc_min']:.2f}–{100 * r['test_acc_max']:.2f})"
        lines.append(
            [
                *_settings_cells(r, sweep.extras, batch=False, lr=False),
                f"{r['batch_size']}, {_lr_str(r['learning_rate'])}",
                f"{r['seeds'] - r['diverged']}/{r['seeds']}",
                *([_pm(r["val_acc_mean"], r["val_acc_std"], 100, ".2f")] if on_val else []),
                test,
                _pm(r["train_cost_mean"], r["train_cost_std"], 1, ".4f"),
                *([f"{r['candidates_polished']}/{r['checked_polished']}"] if sweep.stationary else []),
            ]
        )
    return [title, "", text, "", _md_table(head, lines), ""]


def _interval(d: dict, scale: float, fmt: str) -> str:
    """`mean [low, high] (n pairs, k dropped)` of a paired difference."""
    dropped = f", {d['dropped']} dropped" if d["dropped"] else ""
    pairs = f"{d['n']} pair{'' if d['n'] == 1 else 's'}{dropped}"
    if d["n"] == 0:
        return f"— ({pairs})"
    ci = f" [{scale * d['ci_low']:{fmt}}, {scale * d['ci_high']:{fmt}}]" if _finite(d["ci_low"]) else ""
    return f"{scale * d['mean']:{fmt}}{ci} ({pairs})"


def differences_section(sweep: Sweep, diffs: list[dict]) -> list[str]:
    """'Sigmoid − ReLU at equal settings': the paired differences, one line per setting."""
    if not diffs:
        return []
    present = [d for d in DIFFERENCES if d[0] in diffs[0]]
    head = ["hidden", "batch", *sweep.extras, "η", *[h for _, h, _, _, _ in present]]
    lines = [
        [
            _hidden_str(d["hidden"]),
            str(d["batch_size"]),
            *[str(d.get(k)) for k in sweep.extras],
            _lr_str(d["learning_rate"]),
            *[_interval(d[key], scale, fmt) for key, _, scale, fmt, _ in present],
        ]
        for d in diffs
    ]
    text = (
        "Sigmoid minus ReLU, each pair of networks trained with the same seed (the same data order and the same draw of "
        "the initialization) at the same hidden layers, batch size and η: mean difference [95% percentile bootstrap "
        "interval of the mean, 10,000 resamples of the seeds] (pairs used). A pair is dropped when either network diverged "
        "or has no value, and for accuracy, sharpness and seed barrier also when either is at chance "
        f"(test accuracy < {100 * CHANCE:.0f}%): the count is given. Accuracies in percentage points; sharpness at the "
        "polished point where the jobs polished. Also in differences.csv."
    )
    return ["## Sigmoid − ReLU at equal settings", "", text, "", _md_table(head, lines), ""]


def minima_section(sweep: Sweep) -> list[str]:
    """'End points checked in float32': per configuration, the kinds of points after SGD and after the polish."""
    if not sweep.stationary:
        return []
    tols = sorted({j["post"].get("polish_tol") for j in sweep.jobs if j["status"] == "ok" and _finite(j["post"].get("polish_tol"))})
    head = ["activation", "hidden", "batch", *sweep.extras, "η", "checked"]
    for when in ("SGD", "polished"):
        head += [f"{when}: cand. / neg. / desc.", f"{when}: median ‖∇C‖", f"{when}: median λ_min/λ_max"]
    lines = []
    for r in (r for r in sweep.rows if r["checked_sgd"] or r["checked_polished"]):
        cells = [*_settings_cells(r, sweep.extras), str(max(r["checked_sgd"], r["checked_polished"]))]
        for when in WHEN:
            cells += [
                " / ".join(str(r[f"{c}_{when}"]) for c in KIND_COLUMNS.values()),
                _num(r[f"grad_norm_{when}_median"], ".2g"),
                _num(r[f"lambda_ratio_{when}_median"], ".2g"),
            ]
        lines.append(cells)
    text = (
        "Every network that did not diverge, checked at the end of SGD and again after the full-batch L-BFGS polish "
        f"(`minima.kind`, float32, tol = `train.polish_tol` = {', '.join(f'{t:g}' for t in tols) or '?'}): a *candidate* has "
        "‖∇C‖ ≤ tol and a smallest Ritz value (30 Lanczos steps) ≥ −tol·λ_max, *negative curvature* ‖∇C‖ ≤ tol with more "
        "negative curvature, *descending* ‖∇C‖ > tol. None of these is a verified minimum or saddle: that takes "
        "`python -m mlpjax.landscape critical` (float64, ‖∇C‖ ≤ 1e-10, the whole spectrum). ‖∇C‖ and the "
        "Hessian's extreme eigenvalues are of the cost over the whole training split; medians over the checked networks. "
        "report.csv has the medians of λ_min and λ_max too; networks.csv every network's numbers."
    )
    return ["## End points checked in float32 (not verified minima)", "", text, "", _md_table(head, lines), ""]


def _intro(root: str, sweep: Sweep) -> list[str]:
    jobs = sweep.jobs
    ok = [j for j in jobs if j["status"] == "ok"]
    nets = sweep.nets
    n_div = sum(n["diverged"] for n in nets)
    n_chance = sum(n["at_chance"] and not n["diverged"] for n in nets)
    epochs = sorted({j["epochs"] for j in ok if j.get("epochs") is not None})
    walls = [j["wall_seconds"] for j in ok if _finite(j.get("wall_seconds"))]
    on = "validation accuracy" if sweep.split == "validation" else "test accuracy (no validation split: chosen on test)"
    return [
        f"# Sweep report: {os.path.abspath(root)}",
        "",
        f"{len(jobs)} jobs: {len(ok)} finished, {len(jobs) - len(ok)} FAILED. {len(nets)} networks trained "
        f"({', '.join(map(str, epochs)) or '?'} epochs): {n_div} diverged, {n_chance} more ended at chance "
        f"(test accuracy < {100 * CHANCE:.0f}%)."
        + (f" Job wall time {sum(walls):.0f} s in all, {statistics.median(walls):.1f} s median." if walls else ""),
        "",
        f"Every choice below (best seed, best configuration, the η of the learning curves) is made on {on}.",
        "",
    ]


def _table_section(sweep: Sweep, table: str) -> list[str]:
    split = "validation" if sweep.split == "validation" else "test"
    out = [
        "## All configurations",
        "",
        "Per configuration: accuracies and final train cost are mean ± sample std over the networks that did not "
        "diverge (a diverged network keeps its last finite parameters, so its numbers are not a result); best/worst "
        f"seed by {split} accuracy; *diverged*: networks whose cost or parameter norm blew up; *at chance*: networks "
        f"(diverged included) below {100 * CHANCE:.0f}% test accuracy, i.e. that did not learn (at a large learning "
        "rate usually a collapse to all-zero outputs, cost 1.0).",
    ]
    if sweep.minima_cols:
        out += [
            "",
            "End-point columns (`landscape.analyze_group`, at SGD's end points, or the polished ones; mean over the "
            "surviving seeds; not verified minima): sharpness = top Hessian "
            "eigenvalue on a training subset (Lanczos); sharpness·η (GD is unstable above 2); λ_min = the smallest "
            "Ritz value (< 0: not a minimum); saturated/dead "
            "= fraction of hidden units stuck; init_barrier = cost rise along the straight path from the "
            "initialization; seed_barrier = rise above the line between this end point and the next seed's.",
        ]
    return out + ["", table, ""]


def _failed_section(jobs: list[dict]) -> list[str]:
    failed = [j for j in jobs if j["status"] == "failed"]
    if not failed:
        return []
    out = ["## Failed jobs", ""]
    for j in failed:
        out.append(f"- **{j['name']}** ({' '.join(j['overrides']) or 'no overrides recorded'}): {j['reason']}")
        out += [f"    - log: `{line}`" for line in j["log_tail"]]
    return out + [""]


def write_markdown(path: str, root: str, sweep: Sweep, table: str, diffs: list[dict], plots: list[tuple[str, str]]) -> None:
    out = _intro(root, sweep) + selection_section(sweep) + differences_section(sweep, diffs) + minima_section(sweep)
    out += _table_section(sweep, table) + _failed_section(sweep.jobs)
    if plots:
        out += ["## Plots", ""]
        for name, caption in plots:
            out += [f"- **[{name}]({name})**: {caption}", "", f"  ![{name}]({name})", ""]
    with open(path, "w") as f:
        f.write("\n".join(out))


# --------------------------------------------------------------------------- plots


def _panels(rows: list[dict]):
    """(batch sizes, hidden configs) of the grid of panels, in table order."""
    batches = sorted({r["batch_size"] for r in rows if r["batch_size"] is not None}, key=_batch_order)
    hiddens = sorted(
        {r["hidden"] for r in rows if r["hidden"] is not None}, key=lambda h: (min(r["_params"] for r in rows if r["hidden"] == h), str(h))
    )
    return batches, hiddens


def _line_key(r: dict, extras: list[str]) -> str:
    return " ".join([str(r["activation"])] + [f"{k.split('.')[-1]}={r.get(k)}" for k in extras])


# Neutral styles of the legend's marker kinds (the colour is the activation's).
ONE = {"marker": "o", "ls": "", "color": "gray", "ms": 4}
HOLLOW = {"marker": "o", "ls": "", "color": "gray", "mfc": "none", "ms": 5}
MEDIAN = {"color": "gray", "lw": 1.5, "marker": "_", "ms": 10}  # the tick shows a median of one x too
BATCH_MARKERS = "os^Dv<>p*h"


class _Grid:
    """What every plot shares: panels, a colour per line, a legend of only what was drawn."""

    def __init__(self, root: str, rows: list[dict], extras: list[str]):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        self.plt, self.root, self.extras = plt, root, extras
        self.batches, self.hiddens = _panels(rows)
        self.line_keys = sorted({_line_key(r, extras) for r in rows if r["activation"] is not None})
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        self.color_of = {k: colors[i % len(colors)] for i, k in enumerate(self.line_keys)}
        # Lines side by side around each x (in decades), so that their points do not hide each other.
        self.offset = {k: (i - (len(self.line_keys) - 1) / 2) * 0.05 for i, k in enumerate(self.line_keys)}
        self.entries: dict[str, dict] = {}  # the current figure's legend: label → style
        self.legends: dict[str, list[str]] = {}  # file name → its legend's labels
        self.rng = np.random.default_rng(0)

    def figure(self, title: str, rows=None, cols=None, panel_title=None):
        """A new figure and its panels `axes[i][j]`: by default batch size × hidden layers."""
        rows = self.batches if rows is None else rows
        cols = self.hiddens if cols is None else cols
        panel_title = panel_title or (lambda b, h: f"hidden {_hidden_str(h)}, batch {b}")
        nr, nc = len(rows), len(cols)
        width = 3.2 * nc + 1.6
        fig, axes = self.plt.subplots(nr, nc, figsize=(width, 2.6 * nr + 1), sharex=True, sharey=True, squeeze=False)
        fig.suptitle(title, fontsize=9)
        for i, a in enumerate(rows):
            for j, b in enumerate(cols):
                axes[i][j].set_title(panel_title(a, b), fontsize=8)
                axes[i][j].grid(alpha=0.3)
        self.entries = {}
        return fig, axes

    def panel(self, axes, r: dict):
        """The panel of row `r` in a batch × hidden figure."""
        return axes[self.batches.index(r["batch_size"])][self.hiddens.index(r["hidden"])]

    def lines(self, axes, rows: list[dict]):
        """(panel, line key, the line's rows in that panel) for every panel and line, empty ones too."""
        for i, b in enumerate(self.batches):
            for jj, h in enumerate(self.hiddens):
                for k in self.line_keys:
                    rs = [r for r in rows if _line_key(r, self.extras) == k and r["batch_size"] == b and r["hidden"] == h]
                    yield axes[i][jj], k, rs

    def mark(self, label: str, style: dict) -> None:
        """Put `label` in the figure's legend (once), drawn with `style`."""
        self.entries.setdefault(label, style)

    def use(self, key: str) -> str:
        """The colour of line `key`, which is now in the legend."""
        self.mark(key, {"color": self.color_of[key], "marker": "o", "lw": 1.5})
        return self.color_of[key]

    def points(self, ax, x0: float, ys: list[float], key: str, hollow: bool = False, label: str = "one network (jittered in x)") -> None:
        """One marker per value at `x0`, shifted by the line's offset and jittered (log x)."""
        if not ys:
            return
        color = self.use(key)
        xs = x0 * 10 ** (self.offset[key] + self.rng.uniform(-0.015, 0.015, len(ys)))
        ax.plot(xs, ys, "o", ls="", color=color, mfc="none" if hollow else color, ms=4 if hollow else 3, alpha=0.8)
        self.mark(label, HOLLOW if hollow else ONE)

    def edge(self, ax, x0: float, count: int, y: float, marker: str, label: str, key: str | None = None) -> None:
        """`count` markers at `x0` on the panel's bottom (y=0) or top (y=1) edge: no value to draw them at."""
        if not count:
            return
        color = self.use(key) if key else "r"
        xs = x0 * 10 ** ((self.offset[key] if key else 0.0) + self.rng.uniform(-0.015, 0.015, count))
        ax.plot(
            xs,
            [y] * count,
            marker,
            ls="",
            color=color,
            mfc="none" if marker == "v" else color,
            ms=6,
            transform=ax.get_xaxis_transform(),
            clip_on=False,
        )
        self.mark(label, {"marker": marker, "ls": "", "color": "gray" if key else "r", "mfc": "none" if marker == "v" else None})

    def median(self, ax, xs: list[float], ys: list[float], key: str) -> None:
        if xs:
            ax.plot([x * 10 ** self.offset[key] for x in xs], ys, "-", marker="_", ms=10, color=self.use(key), lw=1.5)
            self.mark("median over seeds", MEDIAN)

    def save(self, fig, axes, name: str, xlabel: str, ylabel: str) -> str:
        """Label the outer axes, add the legend of what was drawn, write `root/name` (150 dpi); returns `name`."""
        for ax in axes[-1]:
            ax.set_xlabel(xlabel)
        for row in axes:
            row[0].set_ylabel(ylabel)
        # A one-column figure is narrow: its title wraps rather than running off both edges.
        fig.suptitle(textwrap.fill(fig.get_suptitle(), width=int(fig.get_figwidth() * 13)), fontsize=9)
        for ax in np.ravel(axes):
            if ax.get_xscale() == "log":  # labelled minor ticks of a short log axis run into each other
                ax.xaxis.set_minor_formatter(self.plt.NullFormatter())
        # The lines (activations) first, then the kinds of marks, each as first drawn.
        labels = [k for k in self.line_keys if k in self.entries] + [k for k in self.entries if k not in self.line_keys]
        styles = [{k: v for k, v in self.entries[label].items() if v is not None} for label in labels]
        handles = [self.plt.Line2D([], [], label=label, **style) for label, style in zip(labels, styles)]
        self.legends[name] = labels
        width = 0.0  # of the legend, in inches: the panels keep clear of it
        if handles:
            legend = fig.legend(handles=handles, loc="center right", fontsize=7)
            width = legend.get_window_extent(fig.canvas.get_renderer()).width / fig.dpi + 0.1  # no need to draw the figure
        fig.tight_layout(rect=(0, 0, 1 - width / fig.get_figwidth(), 0.95))
        fig.savefig(os.path.join(self.root, name), dpi=150)
        self.plt.close(fig)
        return name


def plot_all(root: str, sweep: Sweep) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """Draw the report's plots into `root` (see the module docstring).

    Returns (file name, caption) of each plot written, and each one's legend labels by file name.
    """
    grid = _Grid(root, sweep.rows, sweep.extras)
    if not grid.batches or not grid.hiddens:
        return [], {}
    # A failed job whose config was unreadable has no place on the axes.
    plotted = [r for r in sweep.rows if r["batch_size"] is not None and r["hidden"] is not None and r["learning_rate"] is not None]
    written = [_plot_accuracy(grid, plotted, sweep.split), _plot_learning_curves(grid, plotted, sweep), _plot_cost_spread(grid, plotted)]
    if "sharpness" in sweep.minima_cols:
        written += [_plot_sharpness_vs_lr(grid, plotted), _plot_sharpness_vs_cost(grid, plotted), _plot_sharpness_vs_batch(grid, plotted)]
    return written, grid.legends


def _plot_accuracy(grid: _Grid, plotted: list[dict], split: str) -> tuple[str, str]:
    """accuracy_vs_lr.png: every network's validation (or test) accuracy against η, and the median."""
    key = f"{split}_accuracy"
    fig, axes = grid.figure(f"final {split} accuracy of every network; line: median over seeds; dotted: 10%")
    for ax, k, rs in grid.lines(axes, plotted):
        med_x, med_y = [], []
        for r in rs:
            grid.edge(ax, r["learning_rate"], int(r["status"] == "failed"), 1.0, "s", "failed job (top edge)")
            alive = [n for n in _alive(r["_nets"]) if _finite(n.get(key))]
            grid.points(ax, r["learning_rate"], [100 * n[key] for n in alive if not n["at_chance"]], k)
            grid.points(
                ax,
                r["learning_rate"],
                [100 * n[key] for n in alive if n["at_chance"]],
                k,
                hollow=True,
                label=f"at chance (test < {100 * CHANCE:.0f}%), at its value",
            )
            grid.edge(ax, r["learning_rate"], r["diverged"], 0.0, "x", "diverged (bottom edge)", k)
            if alive:
                med_x.append(r["learning_rate"])
                med_y.append(statistics.median(100 * n[key] for n in alive))
        grid.median(ax, med_x, med_y, k)
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_ylim(0, 100)
        ax.axhline(10, color="gray", lw=0.8, ls=":")
    name = grid.save(fig, axes, "accuracy_vs_lr.png", "learning rate η", f"{split} accuracy %")
    return name, (
        f"final {split} accuracy of every network (one dot per seed, jittered in η) and the median over the "
        "seeds that did not diverge, per batch size and hidden layers; hollow: at chance, drawn at its value; "
        "x on the bottom edge: diverged (no value)."
    )


def _plot_learning_curves(grid: _Grid, plotted: list[dict], sweep: Sweep) -> tuple[str, str]:
    """learning_curves.png: validation (or test) error per epoch at each line's η chosen on that split."""
    from matplotlib.ticker import MaxNLocator

    split = sweep.split
    fig, axes = grid.figure(f"{split} error per epoch (log) at the η chosen on {split}; thin: one seed, thick: median")
    curves = _curves(sweep.jobs, sweep.extras, split)
    for ax, k, rs in grid.lines(axes, plotted):
        best = select_best([r for r in rs if r["_nets"]], split)
        acc_ExS = curves.get((k, best["hidden"], best["batch_size"], best["learning_rate"])) if best else None
        if acc_ExS is None or acc_ExS.size == 0:
            continue
        err_ExS = np.where(acc_ExS < 1, 100 * (1 - acc_ExS), np.nan)  # a log axis has no 0
        ep, color = np.arange(1, err_ExS.shape[0] + 1), grid.use(k)
        ax.plot(ep, err_ExS, "-", color=color, lw=0.6, alpha=0.5)
        with warnings.catch_warnings():  # an epoch where every seed diverged: no median
            warnings.simplefilter("ignore", RuntimeWarning)
            ax.plot(ep, np.nanmedian(err_ExS, axis=1), "-", color=color, lw=2, label=f"{k} η={best['learning_rate']:g}")
        grid.mark("one seed", {"color": "gray", "lw": 0.6})
        grid.mark("median over seeds", {"color": "gray", "lw": 2})
    for ax in axes.flat:
        if ax.lines:
            ax.legend(fontsize=6, loc="upper right")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter("{x:g}")
        ax.yaxis.set_minor_formatter("{x:g}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    name = grid.save(fig, axes, "learning_curves.png", "epoch", f"{split} error % (log)")
    return name, (
        f"{split} error (100 − accuracy, %, log scale) per epoch at the η chosen on {split} for each activation, "
        "batch size and hidden layers: one thin line per seed, thick: the median; a diverged network's line stops."
    )


def _plot_cost_spread(grid: _Grid, plotted: list[dict]) -> tuple[str, str]:
    """cost_spread.png: every network's final train cost against η."""
    fig, axes = grid.figure("final train cost of every network (hollow: at chance; x on the top edge: diverged)")
    for r in plotted:
        ax, k, lr = grid.panel(axes, r), _line_key(r, grid.extras), r["learning_rate"]
        grid.edge(ax, lr, int(r["status"] == "failed"), 1.0, "s", "failed job (top edge)")
        alive = [n for n in _alive(r["_nets"]) if _finite(n.get("train_cost"))]
        grid.points(ax, lr, [float(n["train_cost"]) for n in alive if not n["at_chance"]], k)
        grid.points(
            ax,
            lr,
            [float(n["train_cost"]) for n in alive if n["at_chance"]],
            k,
            hollow=True,
            label=f"at chance (test < {100 * CHANCE:.0f}%)",
        )
        grid.edge(ax, lr, r["diverged"], 1.0, "x", "diverged (top edge)", k)
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_yscale("log")
    name = grid.save(fig, axes, "cost_spread.png", "learning rate η", "final train cost")
    return name, (
        "final train cost of every network against η (one dot per seed); hollow: at chance (test accuracy "
        f"< {100 * CHANCE:.0f}%); x on the top edge: diverged; red square: a failed job."
    )


def _sharpness_nets(nets: list[dict], excluded: collections.Counter) -> list[dict]:
    """The networks whose sharpness is a result (analyzed, not diverged, not at chance); counts the others in `excluded`."""
    out = []
    for n in nets:
        if n["diverged"]:
            excluded["diverged"] += 1
        elif _finite(n.get("sharpness")) and n["at_chance"]:
            excluded["at chance"] += 1
        elif _finite(n.get("sharpness")):
            out.append(n)
    return out


def _excluded(excluded: collections.Counter) -> str:
    said = ", ".join(f"{c} {what}" for what, c in sorted(excluded.items()) if c and what != "≤ 0")
    floor = f"; {excluded['≤ 0']} with sharpness ≤ 0 as ▽ on the bottom edge" if excluded["≤ 0"] else ""
    return f"left out: {said or 'none'}{floor}"


def _draw_sharpness(grid: _Grid, ax, x0: float, nets: list[dict], key: str, excluded: collections.Counter) -> float | None:
    """Each network's sharpness at `x0` (≤ 0: ▽ on the bottom edge, counted); returns the median, None if none."""
    vals = [float(n["sharpness"]) for n in nets]
    grid.points(ax, x0, [v for v in vals if v > 0], key)
    excluded["≤ 0"] += sum(v <= 0 for v in vals)
    grid.edge(ax, x0, sum(v <= 0 for v in vals), 0.0, "v", "sharpness ≤ 0 (bottom edge)", key)
    return statistics.median(vals) if vals else None


def _draw_sharpness_line(grid: _Grid, ax, xs_nets: list[tuple[float, list[dict]]], key: str, excluded) -> None:
    """The sharpness of each x's networks, and the line through the positive medians."""
    med = [(x, _draw_sharpness(grid, ax, x, nets, key, excluded)) for x, nets in xs_nets]
    med = [(x, m) for x, m in med if m is not None and m > 0]
    grid.median(ax, [x for x, _ in med], [m for _, m in med], key)


def _plot_sharpness_vs_lr(grid: _Grid, plotted: list[dict]) -> tuple[str, str]:
    """sharpness_vs_lr.png: sharpness against η, both activations on the same axes, with the 2/η line."""
    fig, axes = grid.figure("")
    excluded = collections.Counter()
    for ax, k, rs in grid.lines(axes, plotted):
        _draw_sharpness_line(grid, ax, [(r["learning_rate"], _sharpness_nets(r["_nets"], excluded)) for r in rs], k, excluded)
    lrs = sorted({r["learning_rate"] for r in plotted})
    for ax in axes.flat:
        ax.plot(lrs, [2 / lr for lr in lrs], "--", color="gray", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
    grid.mark("2/η (GD's stability edge)", {"color": "gray", "ls": "--", "lw": 0.8})
    fig.suptitle(f"sharpness (top Hessian eigenvalue) of every network; {_excluded(excluded)}", fontsize=9)
    name = grid.save(fig, axes, "sharpness_vs_lr.png", "learning rate η", "sharpness")
    return name, (
        "sharpness (top Hessian eigenvalue of the training cost, at the polished point where polished) of every "
        "network against η, both activations on the same axes, one dot per seed and the median; dashed: 2/η; "
        f"networks at chance or diverged left out ({_excluded(excluded)})."
    )


def _cost_at_sharpness(n: dict) -> Any:
    """The train cost where the sharpness was measured: the polished point's when polished."""
    return n.get("polished_train_cost", n.get("train_cost"))


def _plot_sharpness_vs_cost(grid: _Grid, plotted: list[dict]) -> tuple[str, str]:
    """sharpness_vs_cost.png: sharpness against final train cost, per network; colour activation, marker batch size."""
    fig, axes = grid.figure("", rows=[None], panel_title=lambda _, h: f"hidden {_hidden_str(h)}")
    excluded = collections.Counter()
    for r in plotted:
        nets = _sharpness_nets(r["_nets"], excluded)
        drawn = [n for n in nets if float(n["sharpness"]) > 0 and _finite(_cost_at_sharpness(n)) and _cost_at_sharpness(n) > 0]
        excluded["without a positive sharpness and cost"] += len(nets) - len(drawn)
        if not drawn:
            continue
        k, b = _line_key(r, grid.extras), grid.batches.index(r["batch_size"])
        marker = BATCH_MARKERS[b % len(BATCH_MARKERS)]
        axes[0][grid.hiddens.index(r["hidden"])].plot(
            [_cost_at_sharpness(n) for n in drawn], [n["sharpness"] for n in drawn], marker, ls="", color=grid.use(k), ms=4, alpha=0.7
        )
        grid.mark(f"batch {r['batch_size']}", {"marker": marker, "ls": "", "color": "gray"})
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_yscale("log")
    fig.suptitle(f"sharpness against final train cost, every network; {_excluded(excluded)}", fontsize=9)
    name = grid.save(fig, axes, "sharpness_vs_cost.png", "final train cost (polished where polished)", "sharpness")
    return name, (
        "sharpness against the final train cost at the same point (log–log), one marker per network, colour: "
        "activation, marker: batch size, one panel per hidden layers: networks of equal cost compared; networks "
        f"at chance or diverged, and those without a positive value, left out ({_excluded(excluded)})."
    )


def _plot_sharpness_vs_batch(grid: _Grid, plotted: list[dict]) -> tuple[str, str]:
    """sharpness_vs_batch.png: sharpness against batch size, a panel per (hidden layers, η), both activations."""
    lrs = sorted({r["learning_rate"] for r in plotted})
    numeric = [b for b in grid.batches if b != "full"]
    x_of = {b: (b if b != "full" else 4 * max(numeric, default=1)) for b in grid.batches}
    fig, axes = grid.figure("", rows=grid.hiddens, cols=lrs, panel_title=lambda h, lr: f"hidden {_hidden_str(h)}, η {lr:g}")
    excluded = collections.Counter()
    for (h, lr, *_), rs in _grouped(plotted, ["hidden", "learning_rate", "activation", *grid.extras]).items():
        rs = sorted(rs, key=lambda r: _batch_order(r["batch_size"]))
        xs_nets = [(x_of[r["batch_size"]], _sharpness_nets(r["_nets"], excluded)) for r in rs]
        _draw_sharpness_line(grid, axes[grid.hiddens.index(h)][lrs.index(lr)], xs_nets, _line_key(rs[0], grid.extras), excluded)
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([x_of[b] for b in grid.batches], [str(b) for b in grid.batches])
        ax.minorticks_off()
    fig.suptitle(f"sharpness against batch size at each η; {_excluded(excluded)}", fontsize=9)
    name = grid.save(fig, axes, "sharpness_vs_batch.png", "batch size", "sharpness")
    return name, (
        "sharpness against batch size (full: the whole training split) at each η and hidden layers, both "
        "activations, one dot per seed and the median; networks at chance or diverged left out "
        f"({_excluded(excluded)})."
    )


def _curves(jobs: list[dict], extras: list[str], split: str) -> dict:
    """(line key, hidden, batch, lr) → `split` accuracy array (epochs × networks), diverged networks as NaN."""
    out: dict[tuple, list] = {}
    for j in jobs:
        if j["status"] != "ok" or not j["metrics"]:
            continue
        k = _line_key(_settings(j, extras), extras)
        acc = np.array([rec.get(f"{split}_accuracy", []) for rec in j["metrics"]], dtype=float)
        if acc.ndim != 2 or acc.shape[1] != len(j["models"]):
            continue
        div = np.array([rec.get("diverged", [False] * acc.shape[1]) for rec in j["metrics"]], dtype=bool)
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
    sweep = aggregate(jobs)
    diffs = differences(sweep)
    try:
        for name in OUTPUTS:  # files of an earlier report that this one would not write again
            if (name.endswith(".png") or name == "differences.csv") and os.path.exists(os.path.join(root, name)):
                os.remove(os.path.join(root, name))
        write_report_csv(os.path.join(root, "report.csv"), sweep)
        _write_csv(os.path.join(root, "networks.csv"), network_columns(sweep), sweep.nets)
        if diffs:
            write_differences_csv(os.path.join(root, "differences.csv"), sweep, diffs)
        plots, legends = plot_all(root, sweep)
        table = markdown_table(sweep)
        write_markdown(os.path.join(root, "report.md"), root, sweep, table, diffs, plots)
    except OSError as e:
        raise ReportError(f"{root}: cannot write the report: {e.strerror or e}") from None
    pngs = [name for name, _ in plots]
    if not quiet:
        print(table)
        failed = [j for j in jobs if j["status"] == "failed"]
        for j in failed:
            print(f"FAILED job {j['name']}: {j['reason']}")
        print(
            f"report: {len(jobs)} jobs ({len(failed)} failed), {len(sweep.rows)} configurations, {len(sweep.nets)} networks, "
            f"choices on {sweep.split} -> {os.path.join(root, 'report.md')}, report.csv, networks.csv"
            + (", differences.csv" if diffs else "")
            + (", " + ", ".join(pngs) if pngs else "")
        )
    return {
        "jobs": jobs,
        "rows": sweep.rows,
        "pngs": pngs,
        "extras": sweep.extras,
        "minima_cols": sweep.minima_cols,
        "sweep": sweep,
        "differences": diffs,
        "legends": legends,
    }


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
            print(
                f"report: could not write the report for {sweep_dir}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                file=sys.stderr,
            )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(
            "usage: python -m mlpjax.report DIR   (a sweep dir of mlpjax.train, e.g. multirun/2025-01-01/12-00-00)",
            file=sys.stderr if len(argv) != 1 else sys.stdout,
        )
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    try:
        report(argv[0])
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
