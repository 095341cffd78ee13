"""Copy what the experiment's sweeps left into this folder, small enough to commit, and redraw everything.

    python experiments/sigmoid_vs_relu/collect.py WORK_DIR [STEP ...]

WORK_DIR holds the sweeps `sweep/` (+experiment=sigmoid_vs_relu) and `series_net_best/`. For each job
this copies `.hydra/*.yaml`, `summary.json`, `metrics.jsonl` (and `error.txt`) — enough for
`python -m mlpjax.report` to rebuild every table and sweep figure with no training. For the series'
and the geometry's figures it keeps, of the sigmoid_vs_relu sweep, the configuration each activation
does best on validation (`report.select_best`: mean validation accuracy over seeds) with its five
seeds, as a run dir of its own `networks/ACTIVATION/` (summary.json, params/, params_polished/, its
config) that `python -m mlpjax.series` and `python -m mlpjax.landscape` read. Then it runs the
report on both sweeps, the series on the two best networks, the geometry commands, and the alignment of
the wider networks' seeds (`width/`; their parameters stay in WORK_DIR).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SWEEPS = ("sweep", "series_net_best")
JOB_FILES = ("summary.json", "metrics.jsonl", "error.txt", ".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/hydra.yaml")


def copy_job(src: str, dst: str) -> None:
    """A run dir's small files (`JOB_FILES` that exist) from `src` into `dst`."""
    for name in JOB_FILES:
        if os.path.exists(os.path.join(src, name)):
            os.makedirs(os.path.dirname(os.path.join(dst, name)), exist_ok=True)
            shutil.copy(os.path.join(src, name), os.path.join(dst, name))


def copy_sweep(src: str, dst: str) -> None:
    """Every job's small files from the sweep dir `src` into `dst` (same job folder names)."""
    shutil.rmtree(dst, ignore_errors=True)
    for job in sorted(os.listdir(src)):
        if os.path.isdir(os.path.join(src, job)) and job.isdigit():
            copy_job(os.path.join(src, job), os.path.join(dst, job))
    shutil.copy(os.path.join(src, "multirun.yaml"), os.path.join(dst, "multirun.yaml"))


def best_configuration(sweep_dir: str, activation: str) -> tuple[str, list[int]]:
    """(job dir, network indices): the seeds of the `activation` configuration chosen on validation."""
    from mlpjax import report

    rows = [r for r in report.report(sweep_dir, quiet=True)["rows"] if r["activation"] == activation]
    best = report.select_best(rows, "validation")
    job_dir = os.path.join(sweep_dir, str(best["jobs"]))
    with open(os.path.join(job_dir, "summary.json")) as f:
        models = json.load(f)["models"]
    return job_dir, [g for g, m in enumerate(models) if m["learning_rate"] == best["learning_rate"]]


def configuration_run(job_dir: str, gs: list[int], dst: str) -> None:
    """Networks `gs` of the run in `job_dir` as a run dir of their own: summary.json, params/,
    params_polished/ (if the run polished), .hydra/config.yaml."""
    from mlpjax import checkpoint

    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(os.path.join(dst, ".hydra"))
    shutil.copy(os.path.join(job_dir, ".hydra", "config.yaml"), os.path.join(dst, ".hydra", "config.yaml"))
    with open(os.path.join(job_dir, "summary.json")) as f:
        summary = json.load(f)
    summary |= {"models": [summary["models"][g] for g in gs], "networks": len(gs), "selected_from": f"{job_dir} networks {gs}"}
    with open(os.path.join(dst, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    for name in ("params", "params_polished"):
        if os.path.isdir(os.path.join(job_dir, name)):
            params = checkpoint.load_params(os.path.join(job_dir, name))
            idx = np.asarray(gs)
            checkpoint.save_params(os.path.join(dst, name), [(W[idx], b[idx]) for W, b in params])


def run(*argv: str) -> None:
    # Paths relative to where it runs (the repository root, in reproduce.sh): they are printed in reports.
    argv = tuple(os.path.relpath(a) if os.path.isabs(a) and a.startswith(HERE) else a for a in argv)
    print("$", " ".join(argv), flush=True)
    subprocess.run([sys.executable, *argv], check=True)


STEPS = ("sweep", "series_net_best", "networks", "geometry", "width")


def main(work_dir: str, steps: tuple[str, ...] = STEPS) -> None:
    """The `steps` (default all, in this order): copy and report each sweep; the best configurations'
    run dirs and the series' figures; the geometry commands."""
    for name in SWEEPS:
        if name in steps:
            copy_sweep(os.path.join(work_dir, name), os.path.join(HERE, name))
            run("-m", "mlpjax.report", os.path.join(HERE, name))
    nets = {a: os.path.join(HERE, "networks", a) for a in ("sigmoid", "relu")}
    if "networks" in steps:
        for activation, dst in nets.items():
            configuration_run(*best_configuration(os.path.join(work_dir, "sweep"), activation), dst)
        figures = os.path.join(HERE, "figures")
        run("-m", "mlpjax.series", "weights", nets["sigmoid"], nets["relu"], "--out", figures)
        for activation, dst in nets.items():
            run("-m", "mlpjax.series", "all", dst, "--out", os.path.join(figures, activation))
    if "geometry" in steps:
        geometry(nets, os.path.join(HERE, "geometry"))
    if "width" in steps:
        width(os.path.join(work_dir, "width"), os.path.join(HERE, "width"))


def geometry(nets: dict[str, str], out: str) -> None:
    """The geometry commands on the polished networks: per activation every pair of seeds aligned,
    a curve and the lines for the default pair; sigmoid beside ReLU for the surface and the spectrum."""
    for activation, dst in nets.items():
        where = ["--polished", "--out", os.path.join(out, activation)]
        run("-m", "mlpjax.landscape", "align", dst, "--networks", "all", *where)
        run("-m", "mlpjax.landscape", "curve", dst, *where)
        run("-m", "mlpjax.landscape", "lines", dst, *where)
    run("-m", "mlpjax.landscape", "surface", nets["sigmoid"], nets["relu"], "--polished", "--out", out)
    run("-m", "mlpjax.landscape", "spectrum", nets["sigmoid"], nets["relu"], "--polished", "--out", out)


def width(src: str, dst: str) -> None:
    """The wider networks (784-64-64-10, five seeds each): their small files, and every pair of seeds aligned."""
    for activation in ("sigmoid", "relu"):
        run_dir = os.path.join(src, activation)
        copy_job(run_dir, os.path.join(dst, activation))
        run("-m", "mlpjax.landscape", "align", run_dir, "--networks", "all", "--polished", "--out", os.path.join(dst, activation))


if __name__ == "__main__":
    if len(sys.argv) < 2 or not set(sys.argv[2:]) <= set(STEPS):
        sys.exit(f"usage: python experiments/sigmoid_vs_relu/collect.py WORK_DIR [{'|'.join(STEPS)} ...]")
    main(sys.argv[1], tuple(sys.argv[2:]) or STEPS)
