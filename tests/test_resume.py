"""Runs that survive: SIGKILL and resume bit for bit, completed runs, sweeps resumed and failed jobs."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mlpjax import checkpoint
from test_cli import REPO, env, run_train  # noqa: F401  (env is a fixture)

RUN = ["train.epochs=6", "train.checkpoint_every=1", "optim.lr=0.5", "data.batch_size=10", "model.hidden=[32]"]


def test_kill_9_then_resume_ends_bitwise_equal(env, tmp_path):
    whole = tmp_path / "whole"
    r = run_train(*RUN, f"hydra.run.dir={whole}", env_extra=env)
    assert r.returncode == 0, r.stderr

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "mlpjax.train", *RUN, f"hydra.run.dir={killed}"], cwd=REPO, env=dict(os.environ) | env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        metrics = killed / "metrics.jsonl"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists(), "the run finished before the kill; nothing was tested"

    r = run_train(*RUN, f"hydra.run.dir={killed}", env_extra=env)
    assert r.returncode == 0, r.stderr
    resumed = [l for l in r.stdout.splitlines() if l.startswith("resuming from epoch")]
    assert len(resumed) == 1 and 2 <= int(resumed[0].split()[-1]) <= 5, r.stdout

    a = json.loads((whole / "summary.json").read_text())["models"][0]
    b = json.loads((killed / "summary.json").read_text())["models"][0]
    assert a["train_cost"] == b["train_cost"] and a["test_accuracy"] == b["test_accuracy"]
    for x, y in zip(checkpoint.load_params(str(whole / "params")), checkpoint.load_params(str(killed / "params"))):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1], y[1])
    lines = [json.loads(l) for l in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == [1, 2, 3, 4, 5, 6]

    # Once complete, the same command does nothing; another configuration is refused.
    r = run_train(*RUN, f"hydra.run.dir={killed}", env_extra=env)
    assert r.returncode == 0 and "complete already" in r.stdout
    (killed / "summary.json").unlink()
    r = run_train(*RUN[:-1], "model.hidden=[16]", f"hydra.run.dir={killed}", env_extra=env)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "another configuration" in r.stderr and "model" in r.stderr


def test_diverged_network_is_marked_and_the_run_goes_on(env, tmp_path):
    r = run_train("model.activation=relu", "optim.lr=[0.1,1000000.0]", "train.epochs=2", f"hydra.run.dir={tmp_path}", env_extra=env)
    assert r.returncode == 0, r.stderr
    slow, fast = json.loads((tmp_path / "summary.json").read_text())["models"]
    assert fast["diverged"] is True and fast["diverged_epoch"] == 1
    assert slow["diverged"] is False and slow["test_accuracy"] > 0.5


def test_every_network_diverged_exits_nonzero(env, tmp_path):
    r = run_train("model.activation=relu", "optim.lr=1000000.0", "train.epochs=1", f"hydra.run.dir={tmp_path}", env_extra=env)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ["error: every network diverged (cost or parameters not finite, or norm past train.diverge_norm); try a smaller optim.lr"]


def test_sweep_resume_skips_complete_jobs_and_a_failed_job_loses_nothing(env, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "data.batch_size=128,70000", "seed=0,1", "train.epochs=1", f"hydra.sweep.dir={sweep}"]
    r = run_train(*args, env_extra=env)
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert len(jobs) == 4
    failed = [j for j in jobs if (j / "error.txt").exists()]
    assert len(failed) == 2 and all("data.batch_size=70000" in (j / "error.txt").read_text() for j in failed)
    assert r.stderr.count("error (job") == 2  # printed as each failure happened
    done = [j for j in jobs if (j / "summary.json").exists()]
    assert len(done) == 2
    stamp = {j: (j / "summary.json").stat().st_mtime_ns for j in done}
    (done[1] / "summary.json").unlink()
    r = run_train(*args, env_extra=env)
    assert r.stdout.count("complete already") == 1
    assert (done[0] / "summary.json").stat().st_mtime_ns == stamp[done[0]]
    assert (done[1] / "summary.json").exists()
