"""Groups of networks in one run: one entry per network, chunks, and several devices.

The same network trained in a group of another size, in another chunk or on another device runs
batched matmuls of other shapes, which round differently (float32, eps = 1.2e-7); SGD carries the
differences along. Measured on the runs below (≤ 156 steps, η ≤ 3): ≤ 5e-7 of the layer's largest
|weight|. PARAM_TOL allows 20 times that; networks of other seeds or learning rates differ by 0.2
to 1 times the largest |weight|, and each test checks that they differ by more than 100 × PARAM_TOL.
Costs and accuracies are compared too, but they are the weaker test: the η = 3 networks' costs lie
within 1e-3 of each other.
"""

import json

import jax
import numpy as np
import pytest

from mlpjax import checkpoint

PARAM_TOL = 1e-5  # of the layer's largest |weight|
COST_REL = 1e-4  # the cost moves by a few times the parameters' relative change


def _models(out):
    return json.loads((out / "summary.json").read_text())["models"]


def _params(out):
    """The run's saved parameters, read as series and landscape read them: onto this process's one
    device, whatever devices saved them (orbax once refused another topology)."""
    leaves = jax.tree.leaves(checkpoint.load_params(str(out / "params")))
    assert all(len(a.sharding.device_set) == 1 for a in leaves)
    return [np.asarray(a) for a in leaves]


def _distance(a, b, scale):
    return float(np.abs(a - b).max() / scale)


def _assert_same_networks(a_dir, b_dir, n_test):
    a_models, b_models = _models(a_dir), _models(b_dir)
    assert [(m["seed"], m["learning_rate"]) for m in a_models] == [(m["seed"], m["learning_rate"]) for m in b_models]
    for a, b in zip(a_models, b_models):
        assert a["train_cost"] == pytest.approx(b["train_cost"], rel=COST_REL)
        assert a["test_accuracy"] == pytest.approx(b["test_accuracy"], abs=2.5 / n_test)  # 2 near-ties may flip
    G = len(a_models)
    for la, lb in zip(_params(a_dir), _params(b_dir)):
        scale = np.abs(lb).max()
        for g in range(G):
            assert _distance(la[g], lb[g], scale) < PARAM_TOL
            # ...and not any other network of the group: those differ by far more.
            assert all(_distance(la[g], lb[h], scale) > 100 * PARAM_TOL for h in range(G) if h != g)


# 3 seeds × 2 learning rates, 2 epochs of 78 SGD steps (mini-batch 128, as in test_resume's sweep,
# whose single-network programs then come from the session's compilation cache).
SCHEDULE = ["train.epochs=2", "data.batch_size=128"]
GROUP = ["seed=9", "train.seeds=3", "optim.lr=[0.5,3.0]", *SCHEDULE]


@pytest.fixture(scope="module")
def group_in_one_program(train_here, tmp_path_factory):
    """The 6 networks of GROUP as one program on one device: what the other layouts must equal."""
    out = tmp_path_factory.mktemp("one")
    train_here(out, *GROUP)
    return out


def test_seeds_times_learning_rates_and_the_member_matches_it_alone(train_here, group_in_one_program, small_mnist, tmp_path):
    models = _models(group_in_one_program)
    assert [(m["seed"], m["learning_rate"]) for m in models] == [(s, lr) for lr in (0.5, 3.0) for s in (9, 10, 11)]
    assert len({m["train_cost"] for m in models}) == 6  # 6 distinct networks
    lines = [json.loads(l) for l in (group_in_one_program / "metrics.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == [1, 2] and all(len(l["test_accuracy"]) == 6 for l in lines)

    train_here(tmp_path, "seed=9", "optim.lr=3.0", *SCHEDULE)
    (alone,) = _models(tmp_path)
    member = models[3]
    assert (member["seed"], member["learning_rate"]) == (9, 3.0) == (alone["seed"], alone["learning_rate"])
    assert member["train_cost"] == pytest.approx(alone["train_cost"], rel=COST_REL)
    assert member["test_accuracy"] == pytest.approx(alone["test_accuracy"], abs=2.5 / small_mnist.x_test_NxD.shape[0])
    for lg, la in zip(_params(group_in_one_program), _params(tmp_path)):
        scale = np.abs(la).max()
        assert _distance(lg[3], la[0], scale) < PARAM_TOL
        assert all(_distance(lg[g], la[0], scale) > 100 * PARAM_TOL for g in range(6) if g != 3)


def test_a_group_split_into_programs_equals_the_group_in_one(train_here, group_in_one_program, small_mnist, tmp_path, capsys):
    train_here(tmp_path, *GROUP, "train.max_group=4")  # the second program padded with a copy of the last network
    assert "in 2 programs of 4 networks" in capsys.readouterr().out
    _assert_same_networks(tmp_path, group_in_one_program, small_mnist.x_test_NxD.shape[0])


def test_networks_spread_over_four_devices_give_the_same_results(run_train, group_in_one_program, small_mnist, tmp_path):
    # A subprocess: the number of host devices is fixed when JAX starts. 6 networks on 4 devices: padded to 8.
    # Its parameters, saved over 4 devices, are read back here on one (a run on 4 GPUs, read on a laptop).
    r = run_train(*GROUP, f"hydra.run.dir={tmp_path}", env_extra={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    assert r.returncode == 0, r.stderr
    assert "spread over 4 devices" in r.stdout
    _assert_same_networks(tmp_path, group_in_one_program, small_mnist.x_test_NxD.shape[0])
