"""The plan a config resolves to, the chunks it is cut into, and the command line's overrides."""

import jax.numpy as jnp
import numpy as np
import pytest

from mlpjax import cli, config, fit, plan, train


def compose_cfg(*overrides):
    return config.compose(list(overrides))


def test_default_plan_is_the_series_network():
    p = plan.make_plan(compose_cfg(), n_inputs=784, n_images=60_000)
    assert p.spec.sizes == (784, 16, 16, 10)
    assert (p.spec.activation, p.spec.cost, p.spec.batch_size) == ("sigmoid", "quadratic", 32)
    assert p.networks == (plan.Network(seed=0, learning_rate=1.0, init="lecun", order_seed=0, momentum=0.0, schedule="cosine"),)
    assert (p.epochs, p.shuffle, p.data_seed) == (40, "shared", 0)


def test_networks_are_learning_rate_major_seed_minor():
    p = plan.make_plan(compose_cfg("seed=9", "train.seeds=3", "optim.lr=[0.5,3]"), 784, 60_000)
    assert [(n.seed, n.learning_rate) for n in p.networks] == [(9, 0.5), (10, 0.5), (11, 0.5), (9, 3.0), (10, 3.0), (11, 3.0)]
    assert p.order_seeds(list(p.networks[:2])) == [9]  # shared: the run's seed orders the data
    per_model = plan.make_plan(compose_cfg("seed=9", "train.seeds=2", "train.shuffle=per_model"), 784, 60_000)
    assert per_model.order_seeds(list(per_model.networks)) == [9, 10]


def test_full_batch_and_too_large_a_batch():
    assert plan.make_plan(compose_cfg("data.batch_size=full"), 784, 1000).spec.full_batch
    with pytest.raises(config.ConfigError, match=r"data.batch_size=1001: must be 'full' or an integer in 1..1000"):
        plan.make_plan(compose_cfg("data.batch_size=1001"), 784, 1000)


def test_train_images_takes_the_first_images_not_held_out():
    p = plan.make_plan(compose_cfg("data.validation=100", "data.train_images=300", "data.batch_size=full"), 784, 1000)
    assert (p.n_train, p.validation, p.spec.batch_size) == (300, 100, 300)
    assert plan.make_plan(compose_cfg("data.validation=100"), 784, 1000).n_train == 900  # 0: all of them
    with pytest.raises(
        config.ConfigError, match=r"data.train_images=901: must be an integer in 0..900 \(0: all; 1000 training images, 100 held out"
    ):
        plan.make_plan(compose_cfg("data.validation=100", "data.train_images=901"), 784, 1000)
    mnist = type(
        "M",
        (),
        {
            "x_train_NxD": np.arange(10.0)[:, None],
            "labels_train_N": np.arange(10),
            "x_test_NxD": np.zeros((2, 1)),
            "labels_test_N": np.zeros(2, int),
        },
    )
    arrays = train.DeviceData.of(mnist, validation=3, n_train=4)
    assert np.asarray(arrays.train.x_NxD)[:, 0].tolist() == [0, 1, 2, 3] and np.asarray(arrays.validation.x_NxD)[:, 0].tolist() == [7, 8, 9]


def test_identity_leaves_out_only_what_does_not_change_the_networks():
    a = config.run_identity(compose_cfg())
    assert a == config.run_identity(compose_cfg("data.train_images=0", "model.l2=0"))  # the defaults: runs from before these keys match
    assert a != config.run_identity(compose_cfg("data.train_images=5"))
    assert a == config.run_identity(compose_cfg("train.epochs=3", "train.checkpoint_every=2", "train.analyze=true", "data.data_dir=/x"))
    for other in ("seed=1", "optim.lr=0.5", "model.hidden=[32]", "train.max_group=2", "train.shuffle=per_model"):
        assert config.run_identity(compose_cfg(other)) != a, other
    assert "train.epochs" not in a and a["model.hidden"] == [16, 16]


def test_chunks_are_equal_and_padded_with_the_last_network():
    p = plan.make_plan(compose_cfg("train.seeds=3", "optim.lr=[0.5,2]", "train.max_group=4"), 784, 60_000)
    assert plan.chunks(p, data_bytes=0) == [plan.Program((0, 1, 2, 3), 1), plan.Program((4, 5, 5, 5), 1)]
    whole = plan.make_plan(compose_cfg("train.seeds=3"), 784, 60_000)
    assert plan.chunks(whole, 0) == [plan.Program((0, 1, 2), 1)]


def test_chunks_gather_the_networks_of_each_data_order():
    # per_model: seeds 0,1,2 x learning rates 0.5, 2 -> three orders of two networks each.
    p = plan.make_plan(compose_cfg("train.seeds=3", "optim.lr=[0.5,2]", "train.shuffle=per_model"), 784, 60_000)
    (prog,) = plan.chunks(p, 0)
    assert prog == plan.Program((0, 3, 1, 4, 2, 5), 3)
    assert prog.order_seeds(p.networks) == [0, 1, 2]
    # At most 4 networks a program: two orders a program, the last padded with a copy of its last order.
    small = plan.make_plan(compose_cfg("train.seeds=3", "optim.lr=[0.5,2]", "train.shuffle=per_model", "train.max_group=4"), 784, 60_000)
    progs = plan.chunks(small, 0)
    assert progs == [plan.Program((0, 3, 1, 4), 2), plan.Program((2, 5, 2, 5), 2)]
    assert plan.positions(progs, 6).tolist() == [0, 2, 4, 1, 3, 5]


def test_set_learning_rates_returns_a_new_group_and_leaves_the_old_one():
    spec = fit.Spec((6, 3, 10), "sigmoid", "quadratic", 2, 10)
    group = fit.init_group(spec, "lecun", np.array([0, 1]), np.array([0.5, 2.0]))
    new = fit.set_learning_rates(group, np.array([0.1, 0.2]))
    np.testing.assert_array_equal(group.opt_state.hyperparams["learning_rate"], jnp.array([0.5, 2.0], jnp.float32))
    np.testing.assert_array_equal(new.opt_state.hyperparams["learning_rate"], jnp.array([0.1, 0.2], jnp.float32))


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["seed=1", "optim.lr=0.1,1"], ["seed=1", "optim.lr=0.1,1"]),
        (["-m", "--cfg", "job", "seed=1"], ["seed=1"]),
        (["-cn", "config", "--config-dir=/x", "+experiment=sigmoid_vs_relu"], ["+experiment=sigmoid_vs_relu"]),
        (["--info", "defaults", "seed=2"], ["seed=2"]),
        (["--info", "seed=2"], ["seed=2"]),
        (["~train.seeds", "-p", "hydra", "--resolve"], ["~train.seeds"]),
    ],
)
def test_overrides_are_found_among_hydra_flags(argv, expected):
    assert cli.overrides_of(argv) == expected
