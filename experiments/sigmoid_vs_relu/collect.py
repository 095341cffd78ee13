"""Copy what the experiment's sweeps left into this folder, small enough to commit, and redraw everything.

    python experiments/sigmoid_vs_relu/collect.py WORK_DIR

WORK_DIR holds the sweeps `sweep/` (+experiment=sigmoid_vs_relu) and `series_net_best/`. For each job
this copies `.hydra/*.yaml`, `summary.json`, `metrics.jsonl` (and `error.txt`) — enough for
`python -m mlpjax.report` to rebuild every table and sweep figure with no training. For the series'
figures it keeps two networks of the sigmoid_vs_relu sweep, the best sigmoid and the best ReLU one
(by validation accuracy), each as a one-network run dir `networks/ACTIVATION/` (summary.json, its
parameters, its config) that `python -m mlpjax.series` reads. Then it runs the report on both sweeps
and the series on the two networks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SWEEPS = ("sweep", "series_net_best")
JOB_FILES = ("summary.json", "metrics.jsonl", "error.txt", ".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/hydra.yaml")


def copy_sweep(src: str, dst: str) -> None:
    """Every job's small files from the sweep dir `src` into `dst` (same job folder names)."""
    shutil.rmtree(dst, ignore_errors=True)
    for job in sorted(os.listdir(src)):
        if not os.path.isdir(os.path.join(src, job)) or not job.isdigit():
            continue
        for name in JOB_FILES:
            if os.path.exists(os.path.join(src, job, name)):
                os.makedirs(os.path.dirname(os.path.join(dst, job, name)), exist_ok=True)
                shutil.copy(os.path.join(src, job, name), os.path.join(dst, job, name))
    shutil.copy(os.path.join(src, "multirun.yaml"), os.path.join(dst, "multirun.yaml"))


def best_network(sweep_dir: str, activation: str) -> tuple[str, int]:
    """(job dir, network index) of the best validation accuracy among the sweep's `activation` networks."""
    best = None
    for job in os.listdir(sweep_dir):
        path = os.path.join(sweep_dir, job, "summary.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            summary = json.load(f)
        if summary["activation"] != activation:
            continue
        for g, m in enumerate(summary["models"]):
            if not m["diverged"] and (best is None or m["validation_accuracy"] > best[0]):
                best = (m["validation_accuracy"], os.path.join(sweep_dir, job), g)
    return best[1], best[2]


def one_network_run(job_dir: str, g: int, dst: str) -> None:
    """Network `g` of the run in `job_dir` as a run dir of its own: summary.json, params/, .hydra/."""
    from mlpjax import checkpoint

    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(os.path.join(dst, ".hydra"))
    shutil.copy(os.path.join(job_dir, ".hydra", "config.yaml"), os.path.join(dst, ".hydra", "config.yaml"))
    with open(os.path.join(job_dir, "summary.json")) as f:
        summary = json.load(f)
    summary |= {"models": [summary["models"][g]], "networks": 1, "selected_from": f"{job_dir} network {g}"}
    with open(os.path.join(dst, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    params = checkpoint.load_params(os.path.join(job_dir, "params"))
    checkpoint.save_params(os.path.join(dst, "params"), [(W[g : g + 1], b[g : g + 1]) for W, b in params])


def run(*argv: str) -> None:
    print("$", " ".join(argv), flush=True)
    subprocess.run([sys.executable, *argv], check=True)


def main(work_dir: str) -> None:
    for name in SWEEPS:
        copy_sweep(os.path.join(work_dir, name), os.path.join(HERE, name))
    nets = {a: os.path.join(HERE, "networks", a) for a in ("sigmoid", "relu")}
    for activation, dst in nets.items():
        one_network_run(*best_network(os.path.join(work_dir, "sweep"), activation), dst)
    for name in SWEEPS:
        run("-m", "mlpjax.report", os.path.join(HERE, name))
    figures = os.path.join(HERE, "figures")
    run("-m", "mlpjax.series", "weights", nets["sigmoid"], nets["relu"], "--out", figures)
    for activation, dst in nets.items():
        run("-m", "mlpjax.series", "all", dst, "--out", os.path.join(figures, activation))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python experiments/sigmoid_vs_relu/collect.py WORK_DIR")
    main(sys.argv[1])
