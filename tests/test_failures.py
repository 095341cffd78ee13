"""Faults a user meets: no network and no data folder, non-finite numbers, every network diverged."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from mlpjax import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _no_network_available() -> bool:
    """Whether `unshare -rn` can run a command in a new network namespace (loopback only, down)."""
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _no_network_available(), reason="needs `unshare -rn` to cut the network off")
def test_without_network_and_data_folder_one_line_within_seconds(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MNIST_IDX_DIR"} | {"TFDS_DATA_DIR": str(tmp_path / "tfds")}
    t0 = time.perf_counter()
    # A new network namespace: no route and no DNS, as on a cluster node or a laptop on a train.
    r = subprocess.run(
        ["unshare", "-rn", sys.executable, "-m", "mlpjax.train", "train.epochs=1", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.perf_counter() - t0
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: cannot download MNIST (no network: ")
    assert lines[0].endswith("set MNIST_IDX_DIR or data.idx_dir to a folder with the four IDX files")
    assert seconds < 60, seconds  # tfds's own retries took 208 s
    # Nothing a later run would take for a prepared dataset.
    prepared = [p for p in (tmp_path / "tfds").rglob("dataset_info.json")] if (tmp_path / "tfds").exists() else []
    assert prepared == []


def test_parallel_jobs_prepare_the_dataset_once_and_both_read_it(small_idx_dir, tmp_path):
    # Two sweep jobs starting together into one fresh TFDS_DATA_DIR (joblib, submitit): the second
    # used to fail on tfds's final rename.
    load = f"from mlpjax.data import load_mnist; m = load_mnist({small_idx_dir!r}, {str(tmp_path)!r}); print(m.x_train_NxD.shape[0])"
    procs = [
        subprocess.Popen([sys.executable, "-c", load], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    assert all(out.strip().splitlines()[-1] == "10000" for out, _ in outs)
    assert sum("prepared MNIST" in out for out, _ in outs) == 1


@pytest.mark.parametrize(
    "override,expected",
    [
        ("optim.lr=1e309", "optim.lr=inf: must be a number > 0 and finite"),
        ("optim.lr=[0.1,inf]", "optim.lr=[0.1, inf]: must be a number > 0 and finite"),
        ("train.diverge_norm=nan", "train.diverge_norm=nan: must be a number > 0 and finite"),
    ],
)
def test_non_finite_numbers_are_one_line_errors(override, expected, capsys):
    with pytest.raises(SystemExit) as e:
        cli.preflight([override])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and expected in err, err


def test_a_run_whose_every_network_diverged_stops_with_checkpoint_and_summary(train_here, tmp_path, capsys):
    run = ("model.activation=relu", "optim.lr=[1e6,1e7]", "train.epochs=4", "train.checkpoint_every=3")
    summary = train_here(tmp_path, *run)
    assert "every network has diverged: stopping after epoch 1 of 4" in capsys.readouterr().out
    assert summary["epochs"] == 4 and summary["epochs_run"] == 1
    assert [m["diverged_epoch"] for m in summary["models"]] == [1, 1]
    assert json.loads((tmp_path / "summary.json").read_text())["epochs_run"] == 1
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1
    assert (tmp_path / "checkpoint" / "1").is_dir()  # saved although 1 is no multiple of checkpoint_every
    # The run is complete: the same command does nothing more.
    assert train_here(tmp_path, *run)["epochs_run"] == 1
    assert "complete already" in capsys.readouterr().out
