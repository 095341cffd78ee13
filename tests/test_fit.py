"""The compiled epoch: learning on real MNIST, reproducibility, groups equal networks alone.

Where two code paths (vmapped and not, chunked and not, scan and by hand) are compared, both run
in float64 under `jax.enable_x64(True)`, with the parameters cast to float64: what is checked
(which data, which network, how many steps) does not depend on the precision, and in float64
rounding (eps = 2.2e-16) stays many orders of magnitude below what a wrong answer would show.
"""

import jax
import jax.numpy as jnp
import numpy as np
import problems
import pytest

from mlpjax import cost, fit, model


def _arrays(mnist, n_train=None, dtype=jnp.float32):
    x = jnp.asarray(mnist.x_train_NxD[:n_train], dtype)
    labels = jnp.asarray(mnist.labels_train_N[:n_train])
    return x, jax.nn.one_hot(labels, 10, dtype=dtype), labels


def _as64(tree):
    """Every floating-point leaf as float64 (under `jax.enable_x64(True)`)."""
    # Cast on the host: a cast on the device compiles a program for every shape.
    return jax.tree.map(lambda a: jnp.asarray(np.asarray(a, np.float64)) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def _copy(tree):
    return jax.tree.map(np.array, tree)  # on the host: `train_epoch` donates the group it is given


def _train(spec, x, y, seeds, lrs, epochs, shuffle="shared", init="lecun", data_seed=None, float64=False):
    group = fit.init_group(spec, init, np.array(seeds), np.array(lrs))
    if float64:
        group = _as64(group)
    for epoch in range(1, epochs + 1):
        order_seeds = [seeds[0] if data_seed is None else data_seed] if shuffle == "shared" else seeds
        perm = jnp.asarray(fit.permutations(order_seeds, epoch, spec.n_train))
        group, metrics = fit.train_epoch(group, x, y, perm, spec)  # one row: shared; one per network: per_model
    return group, metrics


def test_one_epoch_on_real_mnist_learns_far_above_chance(mnist_arrays):
    x, y, _ = _arrays(mnist_arrays)  # all 60,000 training images
    spec = fit.Spec((784, 16, 16, 10), "sigmoid", "quadratic", 10, x.shape[0])
    group, metrics = _train(spec, x, y, [0], [1.0], epochs=1)
    x_test, y_test, labels_test = (
        jnp.asarray(mnist_arrays.x_test_NxD),
        jax.nn.one_hot(mnist_arrays.labels_test_N, 10),
        jnp.asarray(mnist_arrays.labels_test_N),
    )
    cost_G, acc_G = fit.evaluate(group.params, x_test, y_test, labels_test, "sigmoid", "quadratic")
    assert float(acc_G[0]) > 0.85  # chance is 0.10
    assert float(cost_G[0]) < 0.25  # an untrained net sits near 2.5
    assert bool(group.alive_G[0])


def test_same_seed_same_parameters_other_seed_different(small_mnist):
    # Bit for bit: one process, one compiled program, the same inputs.
    x, y, _ = _arrays(small_mnist, 3000)
    spec = fit.Spec((784, 16, 16, 10), "sigmoid", "quadratic", 10, 3000)
    a, _ = _train(spec, x, y, [7], [1.0], epochs=2)
    b, _ = _train(spec, x, y, [7], [1.0], epochs=2)
    c, _ = _train(spec, x, y, [8], [1.0], epochs=2)
    for la, lb in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_array_equal(la, lb)
    assert not np.allclose(a.params[0][0], c.params[0][0])


@pytest.mark.parametrize("shuffle", ["shared", "per_model"])
def test_network_in_a_group_equals_network_alone(small_mnist, shuffle):
    # float64: the vmapped and the unbatched programs round differently, by ~eps64 = 1.1e-16 per
    # step; 40 steps at η ≤ 3 amplify that to < 1e-12 (measured: ~1e-14). rtol 1e-9 has margin,
    # and another seed or learning rate differs by > 1e-2.
    seeds, lrs = [3, 4, 3, 4], [0.5, 0.5, 3.0, 3.0]
    spec = fit.Spec((784, 16, 16, 10), "sigmoid", "quadratic", 128, 2560)
    with jax.enable_x64(True):
        x, y, _ = _arrays(small_mnist, 2560, jnp.float64)
        group, _ = _train(spec, x, y, seeds, lrs, epochs=2, shuffle=shuffle, data_seed=3, float64=True)
        for g, (s, lr) in enumerate(zip(seeds, lrs)):
            alone, _ = _train(spec, x, y, [s], [lr], epochs=2, shuffle=shuffle, data_seed=3, float64=True)
            for lg, la in zip(jax.tree.leaves(group.params), jax.tree.leaves(alone.params)):
                assert lg.dtype == jnp.float64
                np.testing.assert_allclose(lg[g], la[0], rtol=1e-9, atol=1e-12)
    # Different seeds and learning rates really are different networks.
    assert not np.allclose(group.params[0][0][0], group.params[0][0][1], rtol=1e-2)
    assert not np.allclose(group.params[0][0][0], group.params[0][0][2], rtol=1e-2)


def test_full_batch_gradient_descent_is_one_step_of_the_true_gradient(small_mnist):
    # float64 on both sides: a sum over 500 examples rounds to ≲ 500·eps64 ≈ 1e-13 relative to
    # its terms, so rtol 1e-9 (atol 1e-12 for entries near 0) leaves four orders of margin.
    spec = fit.Spec((784, 16, 10), "sigmoid", "quadratic", 500, 500)
    with jax.enable_x64(True):
        x, y, _ = _arrays(small_mnist, 500, jnp.float64)
        group = _as64(fit.init_group(spec, "lecun", np.array([0]), np.array([2.0])))
        params0 = [(W[0], b[0]) for W, b in _copy(group.params)]
        group, _ = fit.train_epoch(group, x, y, jnp.asarray(fit.permutations([0], 1, 500)[0]), spec)
        grads = problems.grad_C(params0, x, y)
        expected = jax.tree.map(lambda p, g: p - 2.0 * g, params0, grads)
        for lg, le, l0 in zip(jax.tree.leaves(group.params), jax.tree.leaves(expected), jax.tree.leaves(params0)):
            np.testing.assert_allclose(lg[0], le, rtol=1e-9, atol=1e-12)
            assert not np.allclose(le, l0, rtol=1e-6)  # the step moved them: the comparison means something


def test_diverged_network_is_frozen_while_the_rest_train(small_mnist):
    x, y, _ = _arrays(small_mnist, 1000)
    spec = fit.Spec((784, 16, 10), "relu", "quadratic", 10, 1000)
    group = fit.init_group(spec, "lecun", np.array([0, 0]), np.array([0.1, 1e6]))
    before = _copy(group.params)
    group, _ = fit.train_epoch(group, x, y, jnp.asarray(fit.permutations([0], 1, 1000)[0]), spec)
    assert group.alive_G.tolist() == [True, False]
    assert np.isfinite(np.concatenate([np.ravel(l[1]) for l in jax.tree.leaves(group.params)])).all()
    # Bit for bit (the code keeps the old arrays): the diverged network kept the parameters it
    # had before the epoch; the other one trained.
    for la, lb in zip(jax.tree.leaves(group.params), jax.tree.leaves(before)):
        np.testing.assert_array_equal(la[1], lb[1])
        assert not np.array_equal(la[0], lb[0])


def test_evaluate_equals_the_cost_averaged_over_every_example(small_mnist):
    # float64: a mean over 4321 examples rounds to ≲ 4321·eps64 ≈ 1e-12 relative (all terms ≥ 0).
    with jax.enable_x64(True):
        x, y, labels = _arrays(small_mnist, 4321, jnp.float64)  # not a multiple of the evaluation chunk
        params = _as64(model.init_params(jax.random.key(5), [784, 16, 16, 10], "lecun"))
        stacked = jax.tree.map(lambda a: a[None], params)
        cost_G, acc_G = fit.evaluate(stacked, x, y, labels, "sigmoid", "quadratic", chunk=1000)
        assert float(cost_G[0]) == pytest.approx(float(np.mean(np.sum((np.asarray(model.forward(params, x)) - y) ** 2, -1))), rel=1e-10)
        # Accuracy: a count of argmax hits; an example whose top two outputs tie within rounding
        # may go either way, so a difference of one example is allowed.
        assert float(acc_G[0]) == pytest.approx(float(cost.accuracy(params, x, labels)), abs=1.5 / 4321)
        # Chunks of 1000 pad the last one with 679 rows of weight 0: the same cost as one chunk of all 4321.
        assert float(fit.evaluate(stacked, x, y, labels, "sigmoid", "quadratic", chunk=4321)[0][0]) == pytest.approx(
            float(cost_G[0]), rel=1e-10
        )


def test_the_last_partial_batch_is_dropped():
    # 100 examples in mini-batches of 32: an epoch is 3 steps on perm[0:32], perm[32:64],
    # perm[64:96]; the 4 examples perm[96:] wait for the next epoch's shuffle.
    spec = fit.Spec((6, 5, 3), "sigmoid", "quadratic", 32, 100)
    assert spec.steps_per_epoch == 3
    perm = fit.permutations([0], 1, 100)[0]
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        x = rng.uniform(size=(100, 6))
        labels = rng.integers(0, 3, 100)

        def one_epoch(x_NxD, labels_N):
            group = _as64(fit.init_group(spec, "lecun", np.array([0]), np.array([1.0])))
            before = [(W[0], b[0]) for W, b in _copy(group.params)]
            group, _ = fit.train_epoch(group, jnp.asarray(x_NxD), jax.nn.one_hot(labels_N, 3), jnp.asarray(perm), spec)
            return before, [(np.asarray(W[0]), np.asarray(b[0])) for W, b in group.params]

        before, after = one_epoch(x, labels)
        # The same epoch by hand: three SGD steps (η = 1) in float64; rtol 1e-9 is ~10⁶ × the
        # rounding of sums over 32 examples.
        grad = jax.jit(jax.grad(cost.network_cost))  # compiled, not op by op
        params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in before]
        for s in range(3):
            idx = perm[32 * s : 32 * (s + 1)]
            grads = grad(params, jnp.asarray(x[idx]), jax.nn.one_hot(labels[idx], 3))
            params = jax.tree.map(lambda p, g: p - g, params, grads)
        for a, e in zip(jax.tree.leaves(after), jax.tree.leaves(params)):
            np.testing.assert_allclose(a, e, rtol=1e-9, atol=1e-12)
        # A fourth step on the 4 left over would have moved the parameters far past that tolerance.
        tail = perm[96:]
        grads = grad(params, jnp.asarray(x[tail]), jax.nn.one_hot(labels[tail], 3))
        assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads)) > 1e-3

        # The left-over examples have no influence at all: other pixels and labels there leave
        # the parameters bit for bit the same; changing one example of the first batch does not.
        x_other, labels_other = x.copy(), labels.copy()
        x_other[tail] = rng.uniform(size=(4, 6))
        labels_other[tail] = (labels[tail] + 1) % 3
        for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(one_epoch(x_other, labels_other)[1])):
            np.testing.assert_array_equal(a, b)
        x_other = x.copy()
        x_other[perm[0]] = rng.uniform(size=6)
        assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(one_epoch(x_other, labels)[1])))
    assert fit.Spec((784, 10), "sigmoid", "quadratic", 60_000, 60_000).full_batch


def test_permutations_depend_only_on_seed_and_epoch():
    a = fit.permutations([1, 2], 5, 100)
    np.testing.assert_array_equal(a, fit.permutations([1, 2], 5, 100))
    assert sorted(a[0].tolist()) == list(range(100))
    assert not np.array_equal(a[0], a[1])
    assert not np.array_equal(a[0], fit.permutations([1], 6, 100)[0])
