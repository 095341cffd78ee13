"""Sweeps as Hydra users run them: what each job returns (train.objective), every override syntax through the
check before Hydra, an Optuna search through the grouped launcher, and the dry run."""

import math

import pytest
import yaml

from mlpjax import cli, config, train

SMALL = ["train.epochs=1", "model.hidden=[8]", "data.batch_size=128"]


def test_the_objective_is_the_mean_over_the_networks_that_did_not_diverge():
    models = [
        {"validation_accuracy": 0.9, "train_cost": 0.2, "diverged": False},
        {"validation_accuracy": 0.7, "train_cost": 0.4, "diverged": False},
        {"validation_accuracy": 0.1, "train_cost": 9.0, "diverged": True},
    ]
    assert train.objective({"models": models}, "validation_accuracy") == pytest.approx(0.8)
    assert train.objective({"models": models}, "train_cost") == pytest.approx(0.3)
    assert math.isnan(train.objective({"models": models[2:]}, "train_cost"))  # all diverged: a failed trial
    assert train.objective({"models": [{"train_cost": 0.2, "diverged": False}]}, "validation_accuracy") is None
    assert set(config.OBJECTIVE_DIRECTION) == {"validation_accuracy", "validation_cost", "train_cost", "train_accuracy"}


@pytest.mark.parametrize(
    "override",
    ["optim.lr=interval(0.05,3.0)", "optim.lr=tag(log,interval(0.01,1))", "optim.lr=choice(0.1,0.3)", "seed=range(0,3)",
     "optim.lr=sort(3,1,2)", "optim.lr=shuffle(1,2)", "model.activation=glob(*)", "+model.hidden=[4]"],
)  # fmt: skip
def test_every_hydra_override_syntax_passes_the_check_before_hydra(override):
    cli.check_overrides(["-m", override])


@pytest.mark.parametrize("override", ["optim.lr=interval(-1,3.0)", "optim.lr=choice(0.1,-1)", "train.objective=test_accuracy"])
def test_a_bad_value_inside_a_sweep_is_still_one_line(override):
    with pytest.raises(config.ConfigError) as e:
        cli.check_overrides(["-m", override])
    assert "\n" not in str(e.value) and override.split("=")[0] in str(e.value)


def test_an_optuna_search_of_the_learning_rate_through_the_grouped_launcher(train_cli_here, tmp_path):
    d = tmp_path / "optuna"
    # Optuna minimizes by default, as the default objective (validation cost) wants.
    argv = ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "optim.lr=interval(0.05,3.0)"]
    r = train_cli_here(*argv, "data.validation=2000", *SMALL, f"hydra.sweep.dir={d}")
    assert r.returncode == 0, r.stderr
    best = yaml.safe_load((d / "optimization_results.yaml").read_text())
    assert 0.05 <= best["best_params"]["optim.lr"] <= 3.0 and 0.0 < best["best_value"] < 1.0
    assert "set 1/1" in r.stdout  # the trials went through the grouped launcher
    # Without a validation split the default objective does not exist: one line, exit code 2.
    r = train_cli_here(*argv, *SMALL, f"hydra.sweep.dir={tmp_path / 'none'}")
    assert r.returncode == 2 and "train.objective=validation_cost is not in this job's summary" in r.stderr, r.stderr
    # A direction against the objective's would return the worst trial as the best: one line, exit code 2.
    r = train_cli_here(*argv, "hydra.sweeper.direction=maximize", "data.validation=2000", *SMALL, f"hydra.sweep.dir={tmp_path / 'w'}")
    assert r.returncode == 2 and "set hydra.sweeper.direction=minimize" in r.stderr, r.stderr


def test_a_dry_run_prints_the_sets_and_trains_nothing(train_cli_here, tmp_path):
    d = tmp_path / "sweep"
    r = train_cli_here("-m", "seed=0,1", "model.hidden=[8],[4]", *SMALL[:1], f"hydra.sweep.dir={d}", "hydra.launcher.dry_run=true")
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.splitlines() if l.startswith(("set ", "dry run"))]
    assert lines[0].startswith("set 1 of 2: hidden [8] sigmoid, batch 32, 2 networks to train in 2 of its 2 jobs")
    assert lines[-1].startswith("dry run: 4 jobs, 2 set(s), 4 job(s) to train; nothing trained")
    assert not any((d / str(n) / "summary.json").exists() for n in range(4))
