"""Faults injected: a second process on a run dir, a holder that is gone, damaged checkpoints, a damaged
identity.json or summary.json, a full disk. Each ends in one line, or in a fallback that says so."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mlpjax import checkpoint, lock, train

# Small and quick: the programs of test_resume's shapes are not needed, only a run that checkpoints every epoch.
RUN = ["train.checkpoint_every=1", "model.hidden=[8]", "data.batch_size=50", "optim.lr=0.5"]


def _params_equal(a_dir, b_dir):
    for x, y in zip(checkpoint.load_params(str(a_dir / "params")), checkpoint.load_params(str(b_dir / "params"))):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1], y[1])


@pytest.fixture(scope="module")
def whole(train_here, tmp_path_factory):
    """The uninterrupted run of 3 epochs that every fallback must end equal to."""
    d = tmp_path_factory.mktemp("whole")
    train_here(d, *RUN, "train.epochs=3")
    return d


def test_a_second_process_on_a_held_dir_gets_one_line_and_writes_nothing(train_cli_here, tmp_path):
    d = tmp_path / "run"
    with lock.hold(str(d)):  # this test's process holds it, as a first run would
        holder = json.loads((d / lock.HOLDER).read_text())
        before = sorted(os.listdir(d))
        # A real second process: the lock is the OS's, per process.
        r = subprocess.run(
            [sys.executable, "-m", "mlpjax.train", *RUN, "train.epochs=1", f"hydra.run.dir={d}"],
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ) | {"MNIST_IDX_DIR": "/nonexistent"},  # never reached: the lock refuses first
        )
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert f"is in use by pid {holder['pid']} on {holder['host']}" in r.stderr and r.stdout == ""
        assert sorted(os.listdir(d)) == before  # not even .hydra/
    assert not (d / lock.HOLDER).exists()  # released: the holder file goes with the lock


def test_a_holder_that_is_gone_is_taken_over_with_a_line(train_here, tmp_path, capfd):
    d = tmp_path / "run"
    d.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    (d / lock.HOLDER).write_text(json.dumps({"pid": int(gone), "host": "h", "since": "then", "command": "train.py"}))
    with lock.hold(str(d)):
        assert json.loads((d / lock.HOLDER).read_text())["pid"] == os.getpid()
        with lock.hold(str(d)):  # re-entrant within one process (train.main, then its job)
            pass
        assert (d / lock.HOLDER).exists()
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and f"taking over {d}: its last holder, pid {gone} on h since then" in err


def _damage_latest_checkpoint(run_dir, how):
    """Damage the latest checkpoint: `cut` halves its largest file, `flip` changes bytes of it in place,
    `metadata` cuts its arrays' metadata (default/_METADATA) short."""
    latest = max(int(p) for p in os.listdir(run_dir / "checkpoint") if p.isdigit())
    files = [os.path.join(r, f) for r, _, fs in os.walk(run_dir / "checkpoint" / str(latest)) for f in fs]
    target = max(files, key=os.path.getsize)
    if how == "metadata":
        target, how = str(run_dir / "checkpoint" / str(latest) / "default" / "_METADATA"), "cut"
    data = bytearray(open(target, "rb").read())
    if how == "cut":
        data = data[: len(data) // 2]
    else:
        middle = len(data) // 2
        data[middle : middle + 8] = bytes(255 - b for b in data[middle : middle + 8])
    open(target, "wb").write(bytes(data))
    return latest


@pytest.mark.parametrize("how", ["cut", "flip", "metadata"])
def test_a_damaged_checkpoint_costs_one_checkpoint_and_a_line(train_here, whole, tmp_path, capsys, how):
    d = tmp_path / "run"
    train_here(d, *RUN, "train.epochs=2")  # checkpoints of epochs 1 and 2 kept
    assert sorted(int(p) for p in os.listdir(d / "checkpoint") if p.isdigit()) == [1, 2]
    assert _damage_latest_checkpoint(d, how) == 2
    capsys.readouterr()
    train_here(d, *RUN, "train.epochs=3")
    captured = capsys.readouterr()
    assert captured.err.count("the checkpoint of epoch 2") == 1 and "is damaged" in captured.err, captured.err
    assert "resuming from epoch 1" in captured.out
    lines = [json.loads(l) for l in (d / "metrics.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == [1, 2, 3]  # epoch 2 trained again, written once
    _params_equal(whole, d)  # bit for bit, as a resume promises
    # The damaged checkpoint was replaced: both kept ones (epochs 2 and 3) read back whole.
    assert sorted(int(p) for p in os.listdir(d / "checkpoint") if p.isdigit()) == [2, 3]
    sums = json.loads((d / "checkpoint" / "checksums.json").read_text())
    assert sorted(sums) == ["2", "3"]


def test_damaged_identity_or_summary(train_here, train_cli_here, whole, tmp_path, capsys):
    d = tmp_path / "run"
    train_here(d, *RUN, "train.epochs=3")
    # summary.json cut short: the run is finished again from its last checkpoint, and says so.
    text = (d / "summary.json").read_text()
    (d / "summary.json").write_text(text[: len(text) // 2])
    capsys.readouterr()
    train_here(d, *RUN, "train.epochs=3")
    err = capsys.readouterr().err
    assert f"{d / 'summary.json'} is damaged" in err and "finishing the run again" in err
    assert json.loads((d / "summary.json").read_text())["models"] == json.loads((whole / "summary.json").read_text())["models"]
    # identity.json not JSON: one line naming it, exit code 2.
    (d / "checkpoint" / "identity.json").write_text("{not json")
    (d / "summary.json").unlink()
    r = train_cli_here(*RUN, "train.epochs=3", f"hydra.run.dir={d}")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "identity.json: cannot read" in r.stderr, r.stderr


def test_a_full_disk_is_one_line_and_leaves_the_last_checkpoint_whole(train_cli_here, tmp_path, monkeypatch):
    d = tmp_path / "run"
    save = checkpoint.save_state

    def full_at_epoch_2(directory, epoch, state, identity):
        if epoch == 2:
            raise OSError(28, "No space left on device", os.path.join(directory, "2"))
        save(directory, epoch, state, identity)

    monkeypatch.setattr(checkpoint, "save_state", full_at_epoch_2)
    r = train_cli_here(*RUN, "train.epochs=3", f"hydra.run.dir={d}")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "No space left on device" in r.stderr, r.stderr
    monkeypatch.setattr(checkpoint, "save_state", save)
    group = train.init_groups(*_plan_and_programs(d))
    restored = checkpoint.restore_state(str(d / "checkpoint"), group, json.loads((d / "checkpoint" / "identity.json").read_text()))
    assert restored is not None and restored[0] == 1


def _plan_and_programs(d):
    from omegaconf import OmegaConf

    from mlpjax import plan

    cfg = OmegaConf.load(d / ".hydra" / "config.yaml")
    p = plan.make_plan(cfg, n_inputs=784, n_images=10_000)
    return p, plan.chunks(p, 0)


# Killed at a moment no poll can catch: the process patches the writer to SIGKILL itself there.
KILLER = """
import os, signal, sys
import orbax.checkpoint as ocp
from mlpjax import train
moment = sys.argv.pop(1)
if moment == "inside-checkpoint-save":  # epoch 2's files written into orbax's temporary folder, not yet renamed to "2"
    for name in ("rename", "replace"):
        real = getattr(os, name)
        def moved(src, dst, *a, _real=real, **k):
            if os.path.basename(os.fspath(dst)) == "2":
                os.kill(os.getpid(), signal.SIGKILL)
            return _real(src, dst, *a, **k)
        setattr(os, name, moved)
else:  # inside-summary-write: half of summary.json's temporary file written
    def write(path, obj):
        with open(path + ".tmp", "w") as f:
            f.write("{\\"models\\": [")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    train.write_json_atomic = write
sys.argv[0] = "train.py"
train.main()
"""


@pytest.mark.parametrize("moment", ["inside-checkpoint-save", "inside-summary-write"])
def test_sigkill_inside_a_write_then_the_same_command_ends_as_an_uninterrupted_run(train_env, train_here, whole, tmp_path, capsys, moment):
    d = tmp_path / "run"
    argv = [*RUN, "train.epochs=3", f"hydra.run.dir={d}"]
    r = subprocess.run(
        [sys.executable, "-c", KILLER, moment, *argv], env=dict(os.environ) | train_env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == -9, r.stderr  # SIGKILL
    assert not (d / "summary.json").exists()
    if moment == "inside-checkpoint-save":  # killed mid-save: the temporary folder is there, epoch 2 is not
        names = os.listdir(d / "checkpoint")
        assert "2" not in names and any(n.startswith("2.") for n in names), names
    capsys.readouterr()
    train_here(d, *RUN, "train.epochs=3")
    assert "resuming from epoch" in capsys.readouterr().out
    assert json.loads((d / "summary.json").read_text())["models"] == json.loads((whole / "summary.json").read_text())["models"]
    _params_equal(whole, d)
    assert [json.loads(l)["epoch"] for l in (d / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_a_metrics_line_cut_by_a_kill_is_dropped_and_a_damaged_middle_is_one_line(train_here, train_cli_here, whole, tmp_path):
    d = tmp_path / "run"
    train_here(d, *RUN, "train.epochs=3")
    (d / "summary.json").unlink()  # as if killed after epoch 3's checkpoint, while writing a line past it
    with open(d / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 4, "train_cost": [0.1')
    train_here(d, *RUN, "train.epochs=3")
    assert [json.loads(l)["epoch"] for l in (d / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    _params_equal(whole, d)
    # A line in the middle damaged: the metrics no longer match the checkpoint; one line, exit code 2.
    lines = (d / "metrics.jsonl").read_text().splitlines()
    (d / "metrics.jsonl").write_text("\n".join([lines[0], "{damaged", *lines[2:]]) + "\n")
    (d / "summary.json").unlink()
    r = train_cli_here(*RUN, "train.epochs=4", f"hydra.run.dir={d}")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "metrics.jsonl holds 1 epochs, the checkpoint 3" in r.stderr, r.stderr
