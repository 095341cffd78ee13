"""The landscape measurements on tiny networks whose answers are known or computed densely."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import problems
import pytest

from mlpjax import cost, landscape, model


def tiny_problem(activation="sigmoid", cost_name="quadratic", seed=0, sizes=(6, 4, 3), n=32):
    """Random params of `sizes` (43 parameters for [6, 4, 3]) and n random examples."""
    return problems.network(sizes, seed), *problems.examples(n, sizes[0], sizes[-1], seed)


@pytest.mark.parametrize("activation,cost_name", [("sigmoid", "quadratic"), ("relu", "cross_entropy")])
def test_interpolation_endpoints_are_the_two_costs(activation, cost_name):
    params_a, x, y = tiny_problem(activation, cost_name, seed=0)
    params_b, _, _ = tiny_problem(activation, cost_name, seed=1)
    costs = landscape.interpolate(params_a, params_b, x, y, activation, cost_name, jnp.array([0.0, 0.3, 1.0]))
    assert costs.shape == (3,)
    c_a = cost.network_cost(params_a, x, y, activation, cost_name)
    c_b = cost.network_cost(params_b, x, y, activation, cost_name)
    # The endpoints are the same parameters bit for bit; the vmapped and the eager cost round
    # differently: the mean of 32×3 terms ≥ 0 to ≲ 35·eps ≈ 4e-6 relative (eps = 1.2e-7), the two
    # layers before it to a few eps each. rtol 1e-5; the two networks differ by > 1e-3.
    np.testing.assert_allclose(costs[0], c_a, rtol=1e-5)
    np.testing.assert_allclose(costs[-1], c_b, rtol=1e-5)
    assert not math.isclose(float(c_a), float(c_b), rel_tol=1e-3)  # the two nets really differ
    # The point at α = 0.3 is the cost of the averaged parameters (those round to within an ulp
    # or two of each other, which moves the cost by a few eps more: the same rtol holds).
    mid = jax.tree.map(lambda a, b: 0.7 * a + 0.3 * b, params_a, params_b)
    np.testing.assert_allclose(costs[1], cost.network_cost(mid, x, y, activation, cost_name), rtol=1e-5)
    assert not math.isclose(float(costs[1]), float(c_a), rel_tol=1e-3) and not math.isclose(float(costs[1]), float(c_b), rel_tol=1e-3)


def test_straight_line_between_identical_params_is_flat_and_has_no_barrier():
    params, x, y = tiny_problem()
    costs = np.asarray(landscape.interpolate(params, params, x, y), np.float64)
    assert costs.shape == (21,)
    # (1−α)·p + α·p is p to within ~2 ulp, and every α runs the same program: the costs agree to
    # a few eps (1.2e-7) times the cost's sensitivity to its parameters. rtol 1e-5.
    np.testing.assert_allclose(costs, costs[0], rtol=1e-5)
    assert landscape.barrier(costs) == pytest.approx(0.0, abs=1e-5 * costs[0])
    assert landscape.barrier(costs, np.linspace(0, 1, 21)) == pytest.approx(0.0, abs=1e-5 * costs[0])


def test_barrier_definitions():
    costs = np.array([1.0, 3.0, 5.0, 2.0])
    # Above the worse endpoint (2.0): 5 − 2.
    assert landscape.barrier(costs) == pytest.approx(3.0)
    # Above the line from 1 to 2 over α = 0, 1/3, 2/3, 1: 5 − (1 + 2/3) at α = 2/3.
    assert landscape.barrier(costs, np.linspace(0, 1, 4)) == pytest.approx(5 - 5 / 3)
    # A monotone path has no barrier either way.
    assert landscape.barrier(np.array([4.0, 3.0, 1.0])) == 0.0
    # A convex path lies below the line: no barrier against it.
    assert landscape.barrier(np.array([2.0, 0.5, 2.0]), np.array([0.0, 0.5, 1.0])) == 0.0
    with pytest.raises(ValueError):
        landscape.barrier(np.array([1.0]))


def hessian64(params, x, y, activation="sigmoid", cost_name="quadratic"):
    """The dense Hessian computed in float64 (parameters and data cast): the reference spectrum."""
    with jax.enable_x64(True):
        as64 = lambda a: jnp.asarray(a, jnp.float64)
        H = landscape.hessian(jax.tree.map(as64, params), as64(x), as64(y), activation, cost_name)
    assert H.dtype == np.float64
    return H


def test_power_iteration_matches_the_dense_hessian():
    params, x, y = tiny_problem(sizes=(6, 4, 3))
    assert model.param_count(params) == 43
    H = hessian64(params, x, y)
    assert H.shape == (43, 43)
    np.testing.assert_allclose(H, H.T, atol=1e-12 * np.abs(H).max())  # float64: ~100·eps64 of the largest entry
    eig = np.linalg.eigvalsh(H)
    dominant = eig[np.argmax(np.abs(eig))]

    # In float32 the Rayleigh quotient v·Hv (43 terms, each Hv entry a sum over 32 examples)
    # jitters by up to ~(43+32)·eps ≈ 1e-5 relative from step to step (eps = 1.2e-7), so a stop
    # criterion tighter than that may never be met: tol 1e-4.
    s = landscape.sharpness(params, x, y, key=jax.random.key(3), iters=2000, tol=1e-4)
    assert s.converged and 0 < s.iterations < 2000
    assert s.eigenvalue == pytest.approx(dominant, rel=1e-3)
    assert s.residual < 0.05
    # The returned vector is an eigenvector of the dense Hessian, of norm one (float32
    # normalization: ≲ 43·eps ≈ 5e-6 relative).
    v = s.vector_P.astype(np.float64)
    assert np.linalg.norm(v) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(H @ v, s.eigenvalue * v, atol=0.05 * abs(dominant))


def test_power_iteration_stops_at_iters_when_not_converged():
    params, x, y = tiny_problem()
    s = landscape.sharpness(params, x, y, iters=3, tol=0.0)
    assert s.iterations == 3 and not s.converged


def test_lanczos_finds_both_ends_of_the_spectrum():
    params, x, y = tiny_problem(activation="relu", cost_name="cross_entropy", seed=2)
    eig = np.linalg.eigvalsh(hessian64(params, x, y, "relu", "cross_entropy"))
    scale = np.abs(eig).max()
    # The Hessian-vector products are float32: each carries an error of ≲ (43+32)·eps·scale
    # ≈ 1e-5·scale (eps = 1.2e-7), and Ritz values move by at most that much. 1e-4·scale for the
    # bounds; 1e-3·scale for the values at P steps.
    ritz = landscape.lanczos(params, x, y, "relu", "cross_entropy", steps=43)
    np.testing.assert_allclose(ritz[-1], eig[-1], atol=1e-3 * scale)
    np.testing.assert_allclose(ritz[0], eig[0], atol=1e-3 * scale)
    assert eig[0] < -1e-2 * scale  # not a minimum: both ends are tested, not one twice
    # With fewer steps the extreme Ritz values are already close, and inside the spectrum.
    ritz = landscape.lanczos(params, x, y, "relu", "cross_entropy", steps=20)
    assert len(ritz) == 20
    assert eig[0] - 1e-4 * scale <= ritz[0] and ritz[-1] <= eig[-1] + 1e-4 * scale
    assert ritz[-1] == pytest.approx(eig[-1], rel=1e-2)


def hand_built_net():
    """2 inputs -> 4 hidden -> 1 output, on inputs x = (t, 1 − t) with t in [0, 1].

    Pre-activations: unit 0: 20 + 0·x (always +20), unit 1: −20 (always), unit 2: 0 (always),
    unit 3: 40·t − 20 (from −20 to +20: in its middle range for a band of t).
    """
    W1 = jnp.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [40.0, 0.0]])
    b1 = jnp.array([20.0, -20.0, 0.0, -20.0])
    W2 = jnp.ones((1, 4))
    b2 = jnp.zeros(1)
    # t = k/100 rounded once to float32: t = 1/2 is exact, so unit 3's 40·t − 20 is exactly 0 there.
    t = np.arange(101) / 100
    return [(W1, b1), (W2, b2)], jnp.asarray(np.stack([t, 1 - t], axis=1), jnp.float32)


def test_sigmoid_saturation_on_hand_built_units():
    params, x = hand_built_net()
    s = landscape.unit_saturation(params, x, "sigmoid")
    # Units 0 and 1 are saturated on every example, unit 2 sits at 0.5, unit 3 passes through.
    assert s["kind"] == "saturated" and s["layer_sizes"] == [4]
    assert s["units_per_layer"] == [0.5] and s["units"] == 0.5
    # Unit 3: σ(40t − 20) is within [0.01, 0.99] for |40t − 20| ≤ log(99) ≈ 4.595, i.e. 23 of the 101 t.
    z = 40 * np.linspace(0, 1, 101) - 20
    unit3 = np.mean(np.abs(z) > math.log(99))
    assert unit3 == pytest.approx(78 / 101)
    assert s["pairs"] == pytest.approx((1 + 1 + 0 + unit3) / 4)
    # Unit 3 counts as saturated once 77% of the examples are enough.
    assert landscape.unit_saturation(params, x, "sigmoid", min_fraction=0.77)["units"] == 0.75


def test_relu_dead_units_on_hand_built_units():
    params, x = hand_built_net()
    s = landscape.unit_saturation(params, x, "relu")
    # relu(−20) = 0 always: unit 1 dead. Unit 2 is relu(0) = 0 on every example: dead too.
    # Unit 3 is 0 for t ≤ 1/2 (51 of 101 examples) but alive; unit 0 is always 20.
    assert s["kind"] == "dead"
    assert s["units"] == 0.5
    assert s["pairs"] == pytest.approx((0 + 1 + 1 + 51 / 101) / 4)


def test_two_hidden_layers_are_reported_separately():
    params, x, _ = tiny_problem(sizes=(6, 5, 3, 2))
    # Kill every unit of the second hidden layer: weights ≤ 0 on relu outputs ≥ 0, bias −1.
    W2, b2 = params[1]
    params[1] = (-jnp.abs(W2), -jnp.ones_like(b2))
    s = landscape.unit_saturation(params, x, "relu")
    assert s["layer_sizes"] == [5, 3]
    assert s["units_per_layer"][1] == 1.0 and s["pairs_per_layer"][1] == 1.0
    assert s["units"] == pytest.approx((5 * s["units_per_layer"][0] + 3) / 8)


def test_cost_spread():
    s = landscape.cost_spread([0.2, 0.4, float("nan"), 0.3])
    assert s["n"] == 3 and s["n_nonfinite"] == 1
    assert s["mean"] == pytest.approx(0.3)
    assert s["std"] == pytest.approx(0.1)
    assert (s["min"], s["max"]) == (0.2, 0.4)
    assert s["range"] == pytest.approx(0.2)
    assert landscape.cost_spread([0.5])["std"] == 0.0
    assert math.isnan(landscape.cost_spread([float("inf")])["mean"])
