"""The compiled epoch: learning on real MNIST, reproducibility, groups equal networks alone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlpjax import cost, fit, model


def _arrays(mnist, n_train=None):
    x = jnp.asarray(mnist.x_train_NxD[:n_train])
    labels = jnp.asarray(mnist.labels_train_N[:n_train])
    return x, jax.nn.one_hot(labels, 10), labels


def _train(spec, x, y, seeds, lrs, epochs, shuffle="shared", init="lecun", data_seed=None):
    group = fit.init_group(spec, init, np.array(seeds), np.array(lrs))
    for epoch in range(1, epochs + 1):
        order_seeds = [seeds[0] if data_seed is None else data_seed] if shuffle == "shared" else seeds
        perm = jnp.asarray(fit.permutations(order_seeds, epoch, spec.n_train))
        group, metrics = fit.train_epoch(group, x, y, perm, spec)  # one row: shared; one per network: per_model
    return group, metrics


def test_one_epoch_on_real_mnist_learns_far_above_chance(mnist):
    x, y, labels = _arrays(mnist)
    spec = fit.Spec((784, 16, 16, 10), "sigmoid", "quadratic", 10, x.shape[0])
    group, metrics = _train(spec, x, y, [0], [1.0], epochs=1)
    cost_G, acc_G = fit.evaluate(group.params, jnp.asarray(mnist.x_test_NxD), jax.nn.one_hot(mnist.labels_test_N, 10), jnp.asarray(mnist.labels_test_N), "sigmoid", "quadratic")
    assert float(acc_G[0]) > 0.85  # chance is 0.10
    assert float(cost_G[0]) < 0.25  # an untrained net sits near 2.5
    assert bool(group.alive_G[0])


def test_same_seed_same_parameters_other_seed_different(mnist):
    x, y, _ = _arrays(mnist, 3000)
    spec = fit.Spec((784, 16, 16, 10), "sigmoid", "quadratic", 10, 3000)
    a, _ = _train(spec, x, y, [7], [1.0], epochs=2)
    b, _ = _train(spec, x, y, [7], [1.0], epochs=2)
    c, _ = _train(spec, x, y, [8], [1.0], epochs=2)
    for la, lb in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_array_equal(la, lb)
    assert not np.allclose(a.params[0][0], c.params[0][0])


@pytest.mark.parametrize("shuffle", ["shared", "per_model"])
def test_network_in_a_group_equals_network_alone(mnist, shuffle):
    x, y, _ = _arrays(mnist, 2560)
    spec = fit.Spec((784, 16, 16, 10), "sigmoid", "quadratic", 128, 2560)
    seeds, lrs = [3, 4, 3, 4], [0.5, 0.5, 3.0, 3.0]
    group, _ = _train(spec, x, y, seeds, lrs, epochs=2, shuffle=shuffle, data_seed=3)
    for g, (s, lr) in enumerate(zip(seeds, lrs)):
        alone, _ = _train(spec, x, y, [s], [lr], epochs=2, shuffle=shuffle, data_seed=3)
        for lg, la in zip(jax.tree.leaves(group.params), jax.tree.leaves(alone.params)):
            np.testing.assert_allclose(lg[g], la[0], rtol=1e-4, atol=1e-5)
    # Different seeds and learning rates really are different networks.
    assert not np.allclose(group.params[0][0][0], group.params[0][0][1])
    assert not np.allclose(group.params[0][0][0], group.params[0][0][2])


def test_full_batch_gradient_descent_is_one_step_of_the_true_gradient(mnist):
    x, y, _ = _arrays(mnist, 500)
    spec = fit.Spec((784, 16, 10), "sigmoid", "quadratic", 500, 500)
    group, _ = _train(spec, x, y, [0], [2.0], epochs=1)
    params0 = model.init_params(jax.random.key(0), [784, 16, 10], "lecun")
    grads = jax.grad(cost.network_cost)(params0, x, y)
    expected = jax.tree.map(lambda p, g: p - 2.0 * g, params0, grads)
    for lg, le in zip(jax.tree.leaves(group.params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(lg[0], le, rtol=1e-5, atol=1e-6)


def test_diverged_network_is_frozen_while_the_rest_train(mnist):
    x, y, _ = _arrays(mnist, 1000)
    spec = fit.Spec((784, 16, 10), "relu", "quadratic", 10, 1000)
    group, _ = _train(spec, x, y, [0, 0], [0.1, 1e6], epochs=1)
    assert group.alive_G.tolist() == [True, False]
    assert np.isfinite(np.concatenate([np.ravel(l[1]) for l in jax.tree.leaves(group.params)])).all()
    # The diverged network kept the parameters it had before the epoch (its initial ones).
    init = model.init_params(jax.random.key(0), [784, 16, 10], "lecun")
    np.testing.assert_array_equal(group.params[0][0][1], init[0][0])


def test_evaluate_equals_the_cost_averaged_over_every_example(mnist):
    x, y, labels = _arrays(mnist, 4321)  # not a multiple of the evaluation chunk
    params = model.init_params(jax.random.key(5), [784, 16, 16, 10], "lecun")
    stacked = jax.tree.map(lambda a: a[None], params)
    cost_G, acc_G = fit.evaluate(stacked, x, y, labels, "sigmoid", "quadratic", chunk=1000)
    np.testing.assert_allclose(cost_G[0], cost.network_cost(params, x, y), rtol=1e-5)
    np.testing.assert_allclose(acc_G[0], cost.accuracy(params, x, labels), rtol=1e-6)


def test_last_partial_batch_is_dropped():
    spec = fit.Spec((784, 16, 10), "sigmoid", "quadratic", 128, 60_000)
    assert spec.steps_per_epoch == 468  # 468 * 128 = 59,904; 96 examples wait for the next shuffle
    assert fit.Spec((784, 10), "sigmoid", "quadratic", 60_000, 60_000).full_batch


def test_permutations_depend_only_on_seed_and_epoch():
    a = fit.permutations([1, 2], 5, 100)
    np.testing.assert_array_equal(a, fit.permutations([1, 2], 5, 100))
    assert sorted(a[0].tolist()) == list(range(100))
    assert not np.array_equal(a[0], a[1])
    assert not np.array_equal(a[0], fit.permutations([1], 6, 100)[0])
