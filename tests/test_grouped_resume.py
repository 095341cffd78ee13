"""The grouped launcher's sets that survive: one submitit job per set, SIGKILL in the middle of a set and the
same sweep resumed bit for bit, a set whose jobs are complete (test_grouped_launcher: what each job writes)."""

import dataclasses
import json

import pytest
import sweep_dirs

from mlpjax import config, sweep

# 4 jobs, one set of 2 orders x 2 learning rates, 1,000 steps an epoch: long enough to be killed in the middle.
LONG = ["seed=0,1", "optim.lr=0.3,1", "data.batch_size=10", "train.epochs=4", "train.checkpoint_every=1"]


@pytest.fixture(scope="module")
def through_submitit(train_cli_here, tmp_path_factory):
    """LONG through submitit's local executor: one submitit job for its one set."""
    d = tmp_path_factory.mktemp("submitit")
    return d, sweep_dirs.sweep(train_cli_here, d, "hydra.launcher.backend=submitit_local", *LONG)


def test_submitit_local_runs_one_job_per_set(through_submitit):
    d, r = through_submitit
    assert r.returncode == 0, r.stderr
    assert len([p for p in (d / ".submitit").iterdir() if p.name != "%j"]) == 1  # one set, one submitit job (%j: submitit's staging)
    summaries = [sweep_dirs.summary(j) for j in sweep_dirs.jobs(d)]
    assert [[(m["seed"], m["learning_rate"]) for m in s["models"]] for s in summaries] == [[(0, 0.3)], [(0, 1.0)], [(1, 0.3)], [(1, 1.0)]]
    log = "".join(p.read_text() for p in (d / ".submitit").rglob("*_log.out"))
    assert "set 1/1: 4 networks of 4 jobs" in log and "4/4 epochs" in log


def test_sigkill_mid_set_then_the_same_sweep_resumes_and_ends_the_same(train_killed, train_cli_here, through_submitit, tmp_path):
    whole, _ = through_submitit
    first_checkpoint = lambda: any(p.name.isdigit() for p in tmp_path.glob(".sets/*/*"))  # of the set
    train_killed(first_checkpoint, "-m", *LONG, f"hydra.sweep.dir={tmp_path}")
    assert not any(sweep_dirs.summary(j) for j in sweep_dirs.jobs(tmp_path)), "the sweep finished before the kill; nothing was tested"

    r = sweep_dirs.sweep(train_cli_here, tmp_path, *LONG)
    assert r.returncode == 0, r.stderr
    resumed = [l for l in r.stdout.splitlines() if l.startswith("resuming from epoch")]
    assert len(resumed) == 1 and 1 <= int(resumed[0].split()[-1]) <= 3, r.stdout
    for a, b in zip(sweep_dirs.jobs(whole), sweep_dirs.jobs(tmp_path)):
        assert sweep_dirs.summary(a)["models"] == sweep_dirs.summary(b)["models"]  # the same program: bit for bit
        assert [json.loads(l)["epoch"] for l in (b / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]


def test_a_set_whose_jobs_are_complete_has_nothing_to_train(train_env, through_submitit):
    d, _ = through_submitit
    same = ["train.epochs=4", "train.checkpoint_every=1", "data.batch_size=10", f"data.idx_dir={train_env['MNIST_IDX_DIR']}"]
    jobs = [
        sweep.Job(n, [], None, str(d / str(n)), config.compose([*o, *same]))
        for n, o in enumerate([("seed=0", "optim.lr=0.3"), ("seed=0", "optim.lr=1"), ("seed=1", "optim.lr=0.3"), ("seed=1", "optim.lr=1")])
    ]
    assert sweep.pending(jobs) == [] and sweep.SetRun(jobs, str(d)).todo == []
    assert sweep.pending([dataclasses.replace(jobs[0], task=config.compose(["train.epochs=5"]))]) != []  # another run
