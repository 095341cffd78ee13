"""Time to a verdict of `python -m mlpjax.landscape critical` on the series' network, by number of examples.

    python benchmarks/critical_speed.py [--examples 2000,10000,50000] [--dense-max 16000] [--budget 600]

Trains 784-16-16-10 twice with model.l2=1e-4 (40 epochs, batch 32): sigmoid (LeCun init, η 1, the
default run) and ReLU (He init, η 0.1), then from each end point runs the critical-point search and
its verification (`verdict.analyze`) on the first N training images for each N. Prints one row per
(activation, N): the verdict, ‖∇f‖, λ_min, L-BFGS and Newton steps, and the seconds of the search, of the
Hessian (P HVPs, float64) and of its eigenvalues (or of Lanczos, where --dense-max excludes the dense
Hessian for that N: `--dense-max` applies when N exceeds `--dense-examples`). MNIST_IDX_DIR as for training.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time

import jax
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from mlpjax import config, outputs, rundir, train  # noqa: E402
from mlpjax.landscape import critical, verdict  # noqa: E402

ARMS = {"sigmoid": ["model.init=lecun", "optim.lr=1.0"], "relu": ["model.activation=relu", "model.init=he", "optim.lr=0.1"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", default="2000,10000,50000")
    p.add_argument("--budget", type=float, default=600.0, help="seconds of search per network")
    p.add_argument("--dense-examples", type=int, default=10_000, help="above this N, the spectrum is by Lanczos (default 10,000)")
    args = p.parse_args()
    sizes = [int(n) for n in args.examples.split(",")]
    print(
        f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} CPUs, jax {jax.__version__} on {jax.devices()[0].platform}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for act, overrides in ARMS.items():
            out = os.path.join(tmp, act)
            cfg = config.compose(["model.l2=1e-4", "data.idx_dir=" + os.environ["MNIST_IDX_DIR"], *overrides])
            t0 = time.perf_counter()
            train.train(cfg, out)
            print(f"trained {act} in {time.perf_counter() - t0:.1f} s", flush=True)
            from omegaconf import OmegaConf

            os.makedirs(os.path.join(out, ".hydra"), exist_ok=True)
            OmegaConf.save(cfg, os.path.join(out, ".hydra", "config.yaml"))
            r = rundir.load_run(out, 0)
            x_all, labels = rundir.load_data(r).x_train_NxD, rundir.load_data(r).labels_train_N
            problem = critical.Problem(tuple(r.summary["sizes"]), r.activation, r.cost, r.l2)
            for n in sizes:
                x, y = x_all[:n].astype(np.float64), np.eye(10)[labels[:n]]
                dense_max = 16_000 if n <= args.dense_examples else 0
                t0 = time.perf_counter()
                e = verdict.analyze(problem, critical.flatten(r.params), x, y, budget=args.budget, dense_max=dense_max)
                wall = time.perf_counter() - t0
                sec = e["spectrum_seconds"] or {}
                rows.append(
                    [
                        act,
                        f"{n:,}",
                        e["verdict"],
                        e["grad_norm"],
                        e["lambda_min"] if e["lambda_min"] is not None else float("nan"),
                        f"{e['lbfgs_steps']}+{e['newton_steps']}",
                        e["search_seconds"],
                        sec.get("hessian_seconds", float("nan")),
                        sec.get("eigen_seconds", sec.get("lanczos_seconds", float("nan"))),
                        "dense" if dense_max else "Lanczos 300",
                        wall,
                    ]
                )
                print(outputs.table(rows[-1:], HEAD).splitlines()[-1], flush=True)
    print()
    print(outputs.table(rows, HEAD))


HEAD = ["activation", "N", "verdict", "‖∇f‖", "λ_min", "steps", "search s", "Hessian s", "eig/Lanczos s", "spectrum", "total s"]

if __name__ == "__main__":
    main()
