"""Reading a sweep: its job folders, what each job left (`read_job`), one record per network."""

from __future__ import annotations

import glob
import json
import math
import os
import re
from typing import Any

import numpy as np
import yaml

from mlpjax import config, rundir
from mlpjax.landscape import polish

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
KIND_COLUMNS = {polish.CANDIDATE: "candidates", polish.NEGATIVE: "negative_curvature", polish.DESCENDING: "descending"}
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
    return polish.kind({k: float(point[k]) if point[k] is not None else math.nan for k in POINT_KEYS}, float(tol))


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
