"""Sweeps through real Hydra launchers: submitit's local executor and joblib processes."""

import json

import pytest


@pytest.mark.parametrize("launcher", ["submitit_local", "joblib_cpu"])
def test_sweep_through_a_launcher_writes_every_summary(train_cli_here, tmp_path, launcher):
    # The sweep's own process is this one; the launcher starts the jobs' processes.
    r = train_cli_here("-m", f"hydra/launcher={launcher}", "seed=0,1", "train.epochs=1", "optim.lr=3", f"hydra.sweep.dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    summaries = [json.loads((tmp_path / str(j) / "summary.json").read_text()) for j in (0, 1)]
    assert [s["models"][0]["seed"] for s in summaries] == [0, 1]
    assert all(s["models"][0]["test_accuracy"] > 0.5 for s in summaries)
    if launcher == "joblib_cpu":  # XLA single-threaded in each job process
        assert all("--xla_cpu_multi_thread_eigen=false" in (s["environment"]["xla_flags"] or "") for s in summaries)
