"""One Hydra sweep, end to end, under the basic launcher and under the grouped one, and the same
networks trained as one job, in one run.

    python benchmarks/grouped_sweep.py [--seeds 8] [--lrs 0.05,0.1,0.2,0.5,1,2,3,5] [--epochs 3] [--batch 128]
                                       [--train-images N] [--skip basic]

The sweep is `python -m mlpjax.train -m seed=0,…,S-1 optim.lr=… data.batch_size=B train.epochs=E`:
S x L jobs of one network each. Each launcher's time is the wall time of that command, process start
to exit (every job's summary.json on disk); `python -m mlpjax.report` over the grouped sweep is timed
on its own line. The one job is `python -m mlpjax.train train.seeds=S
'optim.lr=[…]' …`: the same S x L networks, trained as one group, process start to summary.json.
grouped / one job is what the sweep costs beyond its training: per-job host work (composing each
job's config, Hydra's run_job, each job's files). Every job must write its summary.json; the table
also gives the largest relative difference in final train cost between a job and the same network
under the other runs. MNIST_IDX_DIR and TFDS_DATA_DIR as for training; the dataset is prepared
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


def timed(cmd: list[str], what: str) -> float:
    """Wall seconds of `cmd` run in the repository; a failure ends the benchmark with its last line of stderr."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"error: {what} failed (exit {r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
    return seconds


def run_sweep(launcher: str, overrides: list[str], sweep_dir: str) -> dict:
    """Run the sweep under `launcher`; its wall time, and each job's train costs by job number."""
    cmd = [
        sys.executable,
        "-m",
        "mlpjax.train",
        "-m",
        f"hydra/launcher={launcher}",
        *overrides,
        f"hydra.sweep.dir={sweep_dir}",
    ]
    seconds = timed(cmd, f"the {launcher} sweep")
    costs = {}
    for name in os.listdir(sweep_dir):
        path = os.path.join(sweep_dir, name, "summary.json")
        if name.isdigit() and os.path.exists(path):
            with open(path) as f:
                costs[int(name)] = [m["train_cost"] for m in json.load(f)["models"]]
    return {"seconds": seconds, "costs": costs}


def run_one_job(args, run_dir: str) -> dict:
    """The sweep's networks as one job: its wall time, and the train costs in the sweep's job order."""
    lrs = args.lrs.split(",")
    # per_model: network s trains on seed s's data order, as job s of the sweep does (its shared order is its own seed's).
    cmd = [
        sys.executable,
        "-m",
        "mlpjax.train",
        f"train.seeds={args.seeds}",
        f"optim.lr=[{args.lrs}]",
        "train.shuffle=per_model",
        *common(args),
        f"hydra.run.dir={run_dir}",
    ]
    seconds = timed(cmd, "the one job")
    with open(os.path.join(run_dir, "summary.json")) as f:
        models = json.load(f)["models"]  # learning rate major, seed minor; the sweep's jobs: seed major (seed=…,optim.lr=…)
    by = {(m["seed"], float(m["learning_rate"])): m["train_cost"] for m in models}
    return {"seconds": seconds, "costs": {s * len(lrs) + k: [by[(s, float(lr))]] for s in range(args.seeds) for k, lr in enumerate(lrs)}}


def common(args) -> list[str]:
    return [f"data.batch_size={args.batch}", f"train.epochs={args.epochs}", f"data.train_images={args.train_images}"]


def table(args, jobs: int, runs: dict, load: tuple[float, float]) -> str:
    one = runs["one job"]
    diff = max(abs(a - b) / abs(b) for r in runs.values() for n in one["costs"] for a, b in zip(r["costs"][n], one["costs"][n]))
    lines = [
        f"Measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC with `python benchmarks/grouped_sweep.py "
        f"--seeds {args.seeds} --lrs {args.lrs} --epochs {args.epochs} --batch {args.batch} --train-images {args.train_images}`, "
        f"one run, on {platform.node()} ({os.cpu_count()} cores; load average {load[0]:.1f} before, {load[1]:.1f} after).",
        "",
        "| how | jobs | wall time, process start to results | per job | against one job |",
        "|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        label = f"`hydra/launcher={name}`" if name != "one job" else f"one job of the {jobs} networks"
        lines.append(
            f"| {label} | {jobs if name != 'one job' else 1} | {r['seconds']:.1f} s | {r['seconds'] / jobs:.3f} s | {r['seconds'] / one['seconds']:.2f}× |"
        )
    g = runs["grouped"]["seconds"]
    lines += [
        "",
        f"- grouped sweep against one job of the same networks: **{g / one['seconds']:.2f}×**; host work per job beyond one job's: {(g - one['seconds']) / jobs * 1000:.0f} ms",
        f"- largest relative difference in a network's final train cost between the runs: {diff:.1e}",
    ]
    if "basic" in runs:
        lines.append(f"- grouped against basic, end to end: **{runs['basic']['seconds'] / g:.1f}×**")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=8, help="seeds 0..S-1, one job each per learning rate (default 8)")
    p.add_argument("--lrs", default="0.05,0.1,0.2,0.5,1,2,3,5", help="the learning rates swept (default 8 of them)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--train-images", type=int, default=0, help="data.train_images (default 0: all 60,000)")
    p.add_argument("--skip", choices=["basic"], action="append", default=[], help="leave out the basic launcher (its 64 jobs take minutes)")
    p.add_argument("--out", help="folder for the runs (default: a temporary folder, removed)")
    args = p.parse_args(argv)
    overrides = [f"seed={','.join(map(str, range(args.seeds)))}", f"optim.lr={args.lrs}", *common(args)]
    jobs = args.seeds * len(args.lrs.split(","))

    sys.path.insert(0, REPO)
    from mlpjax import data

    data.load_mnist(os.environ.get("MNIST_IDX_DIR"), os.path.expanduser(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")))
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or tmp
        load_before = os.getloadavg()[0]
        runs = {name: run_sweep(name, overrides, os.path.join(out, name)) for name in ("basic", "grouped") if name not in args.skip}
        runs["one job"] = run_one_job(args, os.path.join(out, "one_job"))
        report_seconds = timed([sys.executable, "-m", "mlpjax.report", os.path.join(out, "grouped")], "the report")
        print(table(args, jobs, runs, (load_before, os.getloadavg()[0])))
        print(f"- `python -m mlpjax.report` over the grouped sweep's {jobs} jobs, process start to report.md: {report_seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
