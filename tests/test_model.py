"""The model and the cost: shapes, values worked out by hand, gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import problems
import pytest

from mlpjax import cost, model


def sig(z):
    return 1 / (1 + math.exp(-z))


def tiny_params():
    # 2 inputs -> 2 hidden -> 1 output
    W1 = jnp.array([[1.0, -1.0], [0.5, 2.0]])
    b1 = jnp.array([0.0, -1.0])
    W2 = jnp.array([[2.0, -3.0]])
    b2 = jnp.array([0.5])
    return [(W1, b1), (W2, b2)]


def test_reference_net_has_13002_parameters_and_W_is_out_by_in():
    params = model.init_params(jax.random.key(0), [784, 16, 16, 10])
    assert model.param_count(params) == 13_002
    assert model.count_for_sizes([784, 16, 16, 10]) == 13_002
    assert [(W.shape, b.shape) for W, b in params] == [((16, 784), (16,)), ((16, 16), (16,)), ((10, 16), (10,))]
    assert all(isinstance(layer, tuple) for layer in params)


@pytest.mark.parametrize(
    "init,w_std,b_zero",
    [("normal", 1.0, False), ("lecun", 1 / 28, True), ("glorot", math.sqrt(2 / 800), True), ("he", math.sqrt(2 / 784), True)],
)
def test_init_scales(init, w_std, b_zero):
    (W, b), *_ = model.init_params(jax.random.key(1), [784, 16, 10], init)
    assert float(jnp.std(W)) == pytest.approx(w_std, rel=0.05)
    assert bool(jnp.all(b == 0)) == b_zero


def test_init_rejects_unknown_scheme():
    with pytest.raises(ValueError, match="xavier"):
        model.init_params(jax.random.key(0), [4, 2], "xavier")


def test_forward_and_quadratic_cost_by_hand():
    params = tiny_params()
    # Layer 1: z = W1 x + b1 = [1*1 - 1*2 + 0, 0.5*1 + 2*2 - 1] = [-1, 3.5]
    a1 = [sig(-1.0), sig(3.5)]
    # Layer 2: z = 2 a1[0] - 3 a1[1] + 0.5
    yhat = sig(2 * a1[0] - 3 * a1[1] + 0.5)
    assert yhat == pytest.approx(0.1330587, abs=5e-8)  # the same number, written out to 7 digits
    # The hand values are float64; the network computes in float32 (eps = 1.2e-7): about ten
    # operations, each rounding by <= eps/2 and passed on with a gain <~ 3 (σ'·z/σ, the cancellation
    # in 2·a − 3·b + 0.5), give <~ 2e-6 relative. rtol 1e-5 here and below.
    out = model.forward(params, jnp.array([[1.0, 2.0]]))
    assert out.shape == (1, 1)
    assert float(out[0, 0]) == pytest.approx(yhat, rel=1e-5)
    # ReLU hidden layer: a1 = [0, 3.5]; z = −3·3.5 + 0.5 = −10 exactly, then one σ.
    out_relu = model.forward(params, jnp.array([[1.0, 2.0]]), activation="relu")
    assert float(out_relu[0, 0]) == pytest.approx(sig(-3 * 3.5 + 0.5), rel=1e-5)
    # Quadratic cost: Σ (ŷ - y)², no ½, averaged over examples (with ½, or summed, it is off by 2).
    x = jnp.array([[1.0, 2.0], [0.0, 0.0]])
    y = jnp.array([[1.0], [0.0]])
    yhat0 = sig(2 * sig(0.0) - 3 * sig(-1.0) + 0.5)
    expected = ((yhat - 1.0) ** 2 + (yhat0 - 0.0) ** 2) / 2
    assert float(cost.network_cost(params, x, y)) == pytest.approx(expected, rel=1e-5)


def test_cross_entropy_by_hand():
    logits = jnp.array([[1.0, 2.0, 3.0]])
    logp = jax.nn.log_softmax(logits)
    expected = -(2.0 - math.log(math.exp(1) + math.exp(2) + math.exp(3)))
    # float32 log-softmax: a max, three exps, a sum, a log and a subtraction, each a few ulp
    # (eps = 1.2e-7) of values no larger than the result (1.41): <~ 1e-6 relative. rtol 1e-5.
    assert float(cost.cross_entropy_per_example(logp, jnp.array([[0.0, 1.0, 0.0]]))[0]) == pytest.approx(expected, rel=1e-5)


def _flat(params):
    return jnp.concatenate([jnp.concatenate([W.ravel(), b]) for W, b in params])


@pytest.mark.parametrize("activation,cost_name", [("sigmoid", "quadratic"), ("relu", "cross_entropy")])
def test_grad_matches_central_finite_differences(activation, cost_name):
    with jax.enable_x64(True):
        params = [(W, b + 0.1) for W, b in problems.network((5, 4, 3), dtype=np.float64)]
        x, _ = problems.examples(7, 5, 3, dtype=np.float64)
        y = jnp.asarray(np.eye(3)[np.arange(7) % 3])
        C = jax.jit(lambda p: cost.network_cost(p, x, y, activation, cost_name))  # one program for the 78 calls (39 parameters)
        grads = _flat(jax.grad(C)(params))
        eps = 1e-6
        numeric = []
        for l, (W, b) in enumerate(params):
            for which, arr in ((0, W), (1, b)):
                for i in np.ndindex(arr.shape):

                    def bumped(d, l=l, which=which, arr=arr, i=i):
                        p = [list(layer) for layer in params]
                        p[l][which] = arr.at[i].add(d)
                        return C([tuple(layer) for layer in p])

                    numeric.append((bumped(eps) - bumped(-eps)) / (2 * eps))
        # _flat orders each layer as W then b, as the loops above do. float64 central differences,
        # h = 1e-6: truncation h² × (third derivative) / 6 <~ 1e-11; rounding <~ 10 ops × eps64 × |C| / h
        # ≈ 7e-9 at worst for |C| <~ 3 (far less in practice: C(w + h) and C(w − h) round alike).
        # atol 1e-8, rtol 1e-6; a wrong gradient (a factor 2, a transposed W) is off by ~1e-2.
        np.testing.assert_allclose(grads, np.array(numeric), rtol=1e-6, atol=1e-8)


def test_gradient_is_the_mean_of_per_example_nudges():
    """Backpropagation per example, averaged, is the gradient of the average cost."""
    params = model.init_params(jax.random.key(3), [784, 16, 16, 10])
    x, _ = problems.examples(32, 784, 10, seed=3)
    y = jnp.asarray(np.eye(10, dtype=np.float32)[np.arange(32) % 10])
    per_example = jax.vmap(jax.grad(lambda p, xi, yi: cost.network_cost(p, xi[None], yi[None])), in_axes=(None, 0, 0))(params, x, y)
    mean_of_nudges = jax.tree.map(lambda g: jnp.mean(g, axis=0), per_example)
    grad_of_mean = problems.grad_C(params, x, y)
    # float32: each entry is a sum over 32 examples (<~ 32·eps ≈ 4e-6 of the sum of the terms'
    # sizes, eps = 1.2e-7) of per-example backpropagations that round by a few eps per layer.
    # Against that scale, mean_i |nudge_i|, the two agree to 1e-5; summed instead of averaged,
    # they would differ by 31 times the gradient.
    for a, b, nudges in zip(jax.tree.leaves(mean_of_nudges), jax.tree.leaves(grad_of_mean), jax.tree.leaves(per_example)):
        scale = np.mean(np.abs(np.asarray(nudges)), axis=0)
        assert np.all(np.abs(np.asarray(a) - np.asarray(b)) <= 1e-5 * scale)
        assert np.abs(np.asarray(b)).max() > 1e-2 * scale.max()  # not all cancelled: the check means something
