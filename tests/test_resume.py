"""Runs that survive: SIGKILL and resume bit for bit, completed runs, diverged networks (a sweep run again: test_grouped_launcher)."""

import json

import numpy as np
import pytest

from mlpjax import checkpoint

RUN = ["train.epochs=4", "train.checkpoint_every=1", "optim.lr=0.5", "data.batch_size=10", "model.hidden=[32]"]


def test_kill_9_then_resume_ends_bitwise_equal(train_killed, train_here, tmp_path, capsys):
    whole = tmp_path / "whole"
    train_here(whole, *RUN)  # in this process: the same config and compiled programs as the command line

    killed = tmp_path / "killed"

    def checkpoint_1_is_on_disk():
        metrics = killed / "metrics.jsonl"
        return metrics.exists() and len(metrics.read_text().splitlines()) >= 2

    train_killed(checkpoint_1_is_on_disk, *RUN, f"hydra.run.dir={killed}")
    assert not (killed / "summary.json").exists(), "the run finished before the kill; nothing was tested"

    # Resumed in this process: `train.train` with the command line's config (test_grouped_resume
    # resumes a killed sweep through the command line's `main`).
    capsys.readouterr()
    train_here(killed, *RUN)
    out = capsys.readouterr().out
    resumed = [l for l in out.splitlines() if l.startswith("resuming from epoch")]
    assert len(resumed) == 1 and 1 <= int(resumed[0].split()[-1]) <= 3, out

    # Bit for bit: the code promises it (the data order is a function of seed and epoch alone).
    a = json.loads((whole / "summary.json").read_text())["models"][0]
    b = json.loads((killed / "summary.json").read_text())["models"][0]
    assert a["train_cost"] == b["train_cost"] and a["test_accuracy"] == b["test_accuracy"]
    for x, y in zip(checkpoint.load_params(str(whole / "params")), checkpoint.load_params(str(killed / "params"))):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1], y[1])
    lines = [json.loads(l) for l in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == [1, 2, 3, 4]

    # Once complete, the same run does nothing; another configuration is refused. In this
    # process: `mlpjax.train.train` with the command line's config (its errors becoming one line
    # and exit code 2 is test_cli's `data.batch_size` case).
    capsys.readouterr()
    assert train_here(killed, *RUN)["models"][0] == b
    assert "complete already" in capsys.readouterr().out
    (killed / "summary.json").unlink()
    with pytest.raises(checkpoint.CheckpointMismatch) as mismatch:
        train_here(killed, *RUN[:-1], "model.hidden=[16]")
    message = str(mismatch.value)
    assert "\n" not in message and "another configuration" in message and "model" in message


def test_diverged_network_is_marked_and_the_run_goes_on(train_here, tmp_path):
    slow, fast = train_here(tmp_path, "model.activation=relu", "optim.lr=[0.1,1000000.0]", "train.epochs=2")["models"]
    assert fast["diverged"] is True and fast["diverged_epoch"] == 1
    assert slow["diverged"] is False and slow["test_accuracy"] > 0.5
    assert json.loads((tmp_path / "summary.json").read_text())["models"] == [slow, fast]


def test_every_network_diverged_exits_nonzero(run_train, tmp_path):
    # The real process: its stderr holds that one line and nothing else (no warning of NumPy or XLA on NaN).
    r = run_train("model.activation=relu", "optim.lr=1000000.0", "train.epochs=1", f"hydra.run.dir={tmp_path}")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "error: every network diverged (cost or parameters not finite, or norm past train.diverge_norm); try a smaller optim.lr"
    ]
