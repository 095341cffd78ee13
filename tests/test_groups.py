"""Groups of networks in one run: one entry per network, chunks, and several devices."""

import json

import pytest

from test_cli import env, run_train  # noqa: F401  (env is a fixture)


def _models(out):
    return json.loads((out / "summary.json").read_text())["models"]


def test_seeds_times_learning_rates_and_the_member_matches_it_alone(env, tmp_path):
    # 200 steps: SGD at η=3 amplifies float32 rounding (batched and unbatched matmuls round
    # differently) from ~1e-7 after 100 steps to ~0.3 in the weights after 1,875; README.
    short = ["train.epochs=2", "data.batch_size=600"]
    r = run_train("seed=9", "train.seeds=4", "optim.lr=[0.5,3.0]", *short, f"hydra.run.dir={tmp_path / 'group'}", env_extra=env)
    assert r.returncode == 0, r.stderr
    models = _models(tmp_path / "group")
    assert [(m["seed"], m["learning_rate"]) for m in models] == [(s, lr) for lr in (0.5, 3.0) for s in (9, 10, 11, 12)]
    assert len({m["train_cost"] for m in models}) == 8  # 8 distinct networks
    lines = [json.loads(l) for l in (tmp_path / "group" / "metrics.jsonl").read_text().splitlines()]
    assert all(len(l["test_accuracy"]) == 8 for l in lines)
    r = run_train("seed=9", "optim.lr=3.0", *short, f"hydra.run.dir={tmp_path / 'alone'}", env_extra=env)
    assert r.returncode == 0, r.stderr
    (alone,) = _models(tmp_path / "alone")
    member = models[4]
    assert (member["seed"], member["learning_rate"]) == (9, 3.0)
    assert member["train_cost"] == pytest.approx(alone["train_cost"], rel=1e-4)
    assert member["test_accuracy"] == pytest.approx(alone["test_accuracy"], abs=2e-4)  # at most 2 of 10,000 digits


def test_a_group_split_into_programs_equals_the_group_in_one(env, tmp_path):
    args = ["train.seeds=3", "optim.lr=[0.5,2.0]", "train.epochs=1", "data.batch_size=128"]
    r = run_train(*args, "train.max_group=4", f"hydra.run.dir={tmp_path / 'split'}", env_extra=env)
    assert r.returncode == 0, r.stderr
    assert "in 2 programs of 4 networks" in r.stdout
    r = run_train(*args, f"hydra.run.dir={tmp_path / 'one'}", env_extra=env)
    assert r.returncode == 0, r.stderr
    for a, b in zip(_models(tmp_path / "split"), _models(tmp_path / "one")):
        assert a["train_cost"] == pytest.approx(b["train_cost"], rel=1e-5)


def test_networks_spread_over_four_devices_give_the_same_results(env, tmp_path):
    args = ["train.seeds=3", "optim.lr=[0.5,2.0]", "train.epochs=1", "data.batch_size=128"]
    r = run_train(*args, f"hydra.run.dir={tmp_path / 'four'}", env_extra=env | {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    assert r.returncode == 0, r.stderr
    assert "spread over 4 devices" in r.stdout
    r = run_train(*args, f"hydra.run.dir={tmp_path / 'one'}", env_extra=env)
    assert r.returncode == 0, r.stderr
    for a, b in zip(_models(tmp_path / "four"), _models(tmp_path / "one")):
        assert a["train_cost"] == pytest.approx(b["train_cost"], rel=1e-5)
