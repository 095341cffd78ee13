"""One Hydra sweep, end to end, under the basic launcher and under the grouped one, in one run.

    python benchmarks/grouped_sweep.py [--seeds 8] [--lrs 0.05,0.1,0.2,0.5,1,2,3,5] [--epochs 3] [--batch 128]

The sweep is `python -m mlpjax.train -m seed=0,…,S-1 optim.lr=… data.batch_size=B train.epochs=E
hydra/callbacks=report`: S x L jobs of one network each. Each launcher's time is the wall time
of that command, from process start to the report on disk (report.md, written by the report
callback when the sweep ends). Both sweeps must write every job's summary.json; the table also
gives the largest relative difference in final train cost between a job and the same job under
the other launcher. MNIST_IDX_DIR and TFDS_DATA_DIR as for training; the dataset is prepared
before the clock starts.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_sweep(launcher: str, overrides: list[str], sweep_dir: str) -> dict:
    """Run the sweep under `launcher`; its wall time, and each job's train costs by job number."""
    cmd = [
        sys.executable,
        "-m",
        "mlpjax.train",
        "-m",
        f"hydra/launcher={launcher}",
        "hydra/callbacks=report",
        *overrides,
        f"hydra.sweep.dir={sweep_dir}",
    ]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if r.returncode != 0 or not os.path.exists(os.path.join(sweep_dir, "report.md")):
        sys.exit(f"error: the {launcher} sweep failed (exit {r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
    costs = {}
    for name in os.listdir(sweep_dir):
        path = os.path.join(sweep_dir, name, "summary.json")
        if name.isdigit() and os.path.exists(path):
            with open(path) as f:
                costs[int(name)] = [m["train_cost"] for m in json.load(f)["models"]]
    return {"seconds": seconds, "costs": costs}


def table(args, jobs: int, runs: dict, load: tuple[float, float]) -> str:
    basic, grouped = runs["basic"], runs["grouped"]
    diff = max(abs(a - b) / abs(b) for n in basic["costs"] for a, b in zip(grouped["costs"][n], basic["costs"][n]))
    lines = [
        f"Measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC with `python benchmarks/grouped_sweep.py "
        f"--seeds {args.seeds} --lrs {args.lrs} --epochs {args.epochs} --batch {args.batch}`, one run, on {platform.node()} "
        f"({os.cpu_count()} cores; load average {load[0]:.1f} before, {load[1]:.1f} after).",
        "",
        "| launcher | jobs | wall time, process start to report | per job | speed-up |",
        "|---|---|---|---|---|",
    ]
    for name in ("basic", "grouped"):
        s = runs[name]["seconds"]
        lines.append(f"| `hydra/launcher={name}` | {jobs} | {s:.1f} s | {s / jobs:.2f} s | {basic['seconds'] / s:.1f}× |")
    lines += [
        "",
        f"- grouped against basic, end to end: **{basic['seconds'] / grouped['seconds']:.1f}×**",
        f"- largest relative difference in a job's final train cost between the launchers: {diff:.1e}",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=8, help="seeds 0..S-1, one job each per learning rate (default 8)")
    p.add_argument("--lrs", default="0.05,0.1,0.2,0.5,1,2,3,5", help="the learning rates swept (default 8 of them)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--out", help="folder for the two sweeps (default: a temporary folder, removed)")
    args = p.parse_args(argv)
    overrides = [
        f"seed={','.join(map(str, range(args.seeds)))}",
        f"optim.lr={args.lrs}",
        f"data.batch_size={args.batch}",
        f"train.epochs={args.epochs}",
    ]
    jobs = args.seeds * len(args.lrs.split(","))

    sys.path.insert(0, REPO)
    from mlpjax import data

    data.load_mnist(os.environ.get("MNIST_IDX_DIR"), os.path.expanduser(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")))
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or tmp
        load_before = os.getloadavg()[0]
        runs = {name: run_sweep(name, overrides, os.path.join(out, name)) for name in ("basic", "grouped")}
        print(table(args, jobs, runs, (load_before, os.getloadavg()[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
