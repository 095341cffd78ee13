"""Critical points with known answers: the trust-region step, the verdicts, an independent solver, a
symmetric saddle by construction, an escape to infinity, a permuted copy, and the command end to end."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from scipy.optimize import minimize

from mlpjax import checkpoint, cost
from mlpjax.landscape import critical, critical_cli, geometry, verdict


def _spectrum_of(H):
    eig = np.linalg.eigvalsh(np.asarray(H, np.float64))
    return {"eigenvalues": eig, "complete": True, "lambda_min": eig[0], "lambda_max": eig[-1], "residual_min": 0.0}


NO_ESCAPE = {"norm_growth": 0.0, "log_norm_slope": 0.0, "cost_change": 0.0}


def test_steihaug_step_is_newtons_inside_the_region_and_follows_negative_curvature_to_its_edge():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 6))
    H_pd = A @ A.T + 0.5 * np.eye(6)
    g = rng.normal(size=6)
    with jax.enable_x64(True):
        p, iters, negative = critical._steihaug(lambda v: jnp.asarray(H_pd) @ v, jnp.asarray(g), 1e6, 1e-13, 50)
        np.testing.assert_allclose(np.asarray(p), -np.linalg.solve(H_pd, g), rtol=1e-9)
        assert not bool(negative) and int(iters) <= 7  # CG is exact in at most 6 steps, up to rounding
        H_saddle = np.diag([2.0, 1.0, -1.0])  # first direction tried is -g: it has curvature -1 < 0
        p, _, negative = critical._steihaug(lambda v: jnp.asarray(H_saddle) @ v, jnp.asarray([0.0, 0.0, 1.0]), 0.5, 1e-13, 50)
        assert bool(negative) and float(jnp.linalg.norm(p)) == pytest.approx(0.5) and float(p[2]) < 0


@pytest.mark.parametrize(
    "sizes, activation, cost_name",
    [
        ((7, 3, 4, 5), "sigmoid", "quadratic"),
        ((7, 5), "sigmoid", "quadratic"),
        ((7, 3, 5), "relu", "cross_entropy"),
        ((6, 2, 3, 2, 4), "relu", "quadratic"),
    ],
)
def test_the_hessian_from_first_layer_blocks_is_the_one_from_hessian_vector_products(sizes, activation, cost_name):
    rng = np.random.default_rng(1)
    P = sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))
    with jax.enable_x64(True):
        problem = critical.Problem(sizes, activation, cost_name, 1e-3)
        theta = jnp.asarray(rng.normal(size=P))
        x, y = jnp.asarray(rng.uniform(size=(53, sizes[0]))), jax.nn.one_hot(rng.integers(0, sizes[-1], 53), sizes[-1])
        prog = critical._programs(problem)
        H = prog["hessian"](theta, x, y, 1e-3, chunk=20)  # 53 examples in chunks of 20: a short last chunk too
        reference = np.asarray(jax.vmap(lambda v: prog["hvp"](theta, v, x, y, 1e-3))(jnp.eye(P)))  # P Hessian-vector products
    assert H.shape == (P, P)
    np.testing.assert_allclose(H, reference, rtol=0, atol=1e-13 * np.abs(reference).max())  # float64 rounding: ~1e-16 seen


@pytest.mark.parametrize(
    "f,expected,index",
    [
        (lambda z: z[0] ** 2 + 3 * z[1] ** 2 + 0.5 * z[2] ** 2 + 2 * z[3] ** 2 + z[0] ** 4 + z[1] * z[3], "minimum", 0),
        (lambda z: z[0] ** 2 + z[1] ** 2 - z[2] ** 2 - 2 * z[3] ** 2 + z[0] * z[2], "saddle", 2),
        (lambda z: z[0] ** 2 + z[1] ** 4 + z[2] ** 2 + z[3] ** 2, "unresolved", 0),  # degenerate: the second-order test cannot decide
    ],
)
def test_verdicts_of_functions_with_known_critical_points_at_zero(f, expected, index):
    with jax.enable_x64(True):
        z = jnp.zeros(4)
        g = float(jnp.linalg.norm(jax.grad(f)(z)))
        spec = _spectrum_of(jax.hessian(f)(z))
    v = verdict.verdict(g, 1e-10, spec, 0, NO_ESCAPE, None, spec["lambda_max"])
    assert v["verdict"] == expected and v["index"] == index, v


def test_without_a_small_gradient_a_point_is_never_a_minimum():
    spec = _spectrum_of(np.eye(3))
    assert verdict.verdict(1e-6, 1e-10, spec, 0, NO_ESCAPE, None, 1.0)["verdict"] == "unresolved"
    assert verdict.verdict(1e-6, 1e-10, None, 0, NO_ESCAPE, 1e-8, 1.0)["verdict"] == "gradient-flat"
    assert verdict.verdict(float("nan"), 1e-10, spec, 0, NO_ESCAPE, None, 1.0)["verdict"] == "unresolved"
    # A tiny λ_min needs a gradient far below tol: ε grows with λ_max·‖∇f‖/|λ|_min.
    near = _spectrum_of(np.diag([1e-7, 1.0]))
    assert verdict.verdict(1e-16, 1e-10, near, 0, NO_ESCAPE, None, 1.0)["verdict"] == "minimum"  # ε = 1e-9
    assert verdict.verdict(1e-12, 1e-10, near, 0, NO_ESCAPE, None, 1.0)["verdict"] == "unresolved"  # ε = 1e-5


def test_lanczos_never_calls_a_point_a_minimum_and_a_negative_ritz_value_is_a_saddle():
    positive = {"eigenvalues": np.array([1e-3, 0.5, 1.0]), "complete": False, "residual_min": 1e-9, "lambda_min": 1e-3, "lambda_max": 1.0}
    v = verdict.verdict(1e-13, 1e-10, positive, 0, NO_ESCAPE, None, 1.0)
    assert v["verdict"] == "unresolved" and "not verified" in v["reason"]
    negative = positive | {"eigenvalues": np.array([-1e-2, 0.5, 1.0])}  # a Ritz value ≥ λ_min (interlacing)
    v = verdict.verdict(1e-13, 1e-10, negative, 0, NO_ESCAPE, None, 1.0)
    assert v["verdict"] == "saddle" and v["index"] is None and v["index_at_least"] == 1


def test_with_l2_a_growing_norm_is_not_an_escape():
    growing = {"norm_growth": 0.5, "log_norm_slope": 0.3, "cost_change": -0.1}
    assert verdict.verdict(1e-3, 1e-10, None, 0, growing, None, 1.0, l2=0.0)["verdict"] == "escaping"
    assert verdict.verdict(1e-3, 1e-10, None, 0, growing, None, 1.0, l2=1e-4)["verdict"] == "unresolved"


def test_symmetries_count_every_exactly_flat_direction_once():
    """A ReLU net with dead units in two consecutive layers and inputs that are always 0: at λ = 0 the
    flat directions that do not depend on the point are exactly the all-zero rows of the Hessian."""
    rng = np.random.default_rng(4)
    sizes = (5, 4, 3, 2)
    x = rng.uniform(size=(30, 5))
    x[:, [1, 3]] = 0.0  # two inputs that are 0 on every example
    params = [(rng.normal(size=(o, i)), rng.normal(size=o)) for i, o in zip(sizes[:-1], sizes[1:])]
    params[0] = (params[0][0], np.where(np.arange(4) == 2, -100.0, 1.0))  # unit 2 of layer 1: dead
    params[1] = (params[1][0], np.where(np.arange(3) == 0, -100.0, 1.0))  # unit 0 of layer 2: dead (and fed by a dead one)
    problem = critical.Problem(sizes, "relu", "quadratic", 0.0)
    sym = verdict.symmetries(problem, params, x)
    y = np.eye(2)[rng.integers(0, 2, 30)]
    with jax.enable_x64(True):
        theta, unravel = ravel_pytree([(jnp.asarray(W), jnp.asarray(b)) for W, b in params])
        f = lambda t: cost.network_cost(unravel(t), jnp.asarray(x), jnp.asarray(y), "relu", "quadratic")
        H = np.asarray(jax.jit(jax.hessian(f))(theta))
    assert sym["dead_units"] == 2 and sym["relu_rescaling"] == 5
    assert sym["zero_input_weights"] + sym["dead_unit_weights"] == int(np.sum(np.all(H == 0, axis=1)))
    assert sym["explained"] == sym["zero_input_weights"] + sym["dead_unit_weights"] + 5
    assert verdict.symmetries(critical.Problem(sizes, "relu", "quadratic", 1e-4), params, x)["explained"] == 0


def _softmax_ce_l2(theta, x, y, l2):
    """Multinomial logistic regression with L2, in NumPy: f and ∇f over θ = [W (K×D) row-major, b (K)]."""
    N, D = x.shape
    K = y.shape[1]
    W, b = theta[: K * D].reshape(K, D), theta[K * D :]
    z = x @ W.T + b
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    f = -np.mean(np.sum(y * np.log(p), axis=1)) + 0.5 * l2 * theta @ theta
    r = (p - y) / N
    return f, np.concatenate([(r.T @ x).ravel(), r.sum(axis=0)]) + l2 * theta


def test_logistic_regression_with_l2_is_the_independent_solvers_unique_minimum():
    """No hidden layer, cross-entropy, λ > 0: strictly convex, one minimum. SciPy's BFGS on a NumPy cost
    finds it independently; its Hessian is Σ Zᵀ(diag p − ppᵀ)Z/N + λI in closed form."""
    rng = np.random.default_rng(1)
    N, D, K, l2 = 60, 5, 3, 1e-2
    x, y = rng.uniform(size=(N, D)), np.eye(K)[rng.integers(0, K, N)]
    problem = critical.Problem((D, K), "sigmoid", "cross_entropy", l2)
    e = verdict.analyze(problem, rng.normal(size=K * D + K), x, y)
    theta = e["path"].theta_P
    ref = minimize(_softmax_ce_l2, np.zeros(K * D + K), args=(x, y, l2), jac=True, method="BFGS", options={"gtol": 1e-12})
    assert e["verdict"] == "minimum" and e["grad_norm"] <= 1e-10
    np.testing.assert_allclose(theta, ref.x, atol=1e-7)
    assert np.linalg.norm(_softmax_ce_l2(theta, x, y, l2)[1]) <= 1e-10  # NumPy's gradient at our point
    z = x @ theta[: K * D].reshape(K, D).T + theta[K * D :]
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    H = l2 * np.eye(K * D + K)
    for n in range(N):
        Z = np.zeros((K, K * D + K))
        for k in range(K):
            Z[k, k * D : (k + 1) * D], Z[k, K * D + k] = x[n], 1.0
        H += Z.T @ (np.diag(p[n]) - np.outer(p[n], p[n])) @ Z / N
    eig = np.linalg.eigvalsh(H)
    assert e["lambda_min"] == pytest.approx(eig[0], rel=1e-8) and e["lambda_max"] == pytest.approx(eig[-1], rel=1e-8)


def _xor(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 2))
    return x, np.eye(2)[((x[:, 0] > 0.5) ^ (x[:, 1] > 0.5)).astype(int)]


def _numpy_cost(theta, problem, x, y):
    """The sigmoid network's quadratic cost with L2, in NumPy (independent of JAX)."""
    a = x
    params = critical.unravel(problem, theta)
    for W, b in params:
        a = 1 / (1 + np.exp(-(a @ W.T + b)))
    return np.mean(np.sum((a - y) ** 2, axis=1)) + 0.5 * problem.l2 * theta @ theta


def test_two_identical_hidden_units_are_a_saddle_by_symmetry():
    """Units tied in and out (Fukumizu & Amari 2000): the gradient keeps them tied, so the search ends on
    the tied subspace at a critical point of the whole cost; XOR needs two different units, so the
    untying direction curves down. Checked by finite differences of a NumPy cost along it."""
    x, y = _xor()
    problem = critical.Problem((2, 2, 2), "sigmoid", "quadratic", 1e-3)
    rng = np.random.default_rng(0)
    w, v = 3 * rng.normal(size=2), 2 * rng.normal(size=2)
    theta0 = critical.flatten([(np.stack([w, w]), np.array([0.3, 0.3])), (np.stack([v, v], axis=1), rng.normal(size=2))])
    e = verdict.analyze(problem, theta0, x, y)
    assert e["verdict"] == "saddle" and e["index"] == 1, e["reason"]
    (W1, b1), (W2, _) = critical.unravel(problem, e["path"].theta_P)
    assert np.array_equal(W1[0], W1[1]) and b1[0] == b1[1] and np.array_equal(W2[:, 0], W2[:, 1])
    # The Hessian on the untying directions (unit 1's parameter up, unit 2's down: W1's rows, b1, W2's
    # columns), by second differences of a NumPy cost: its smallest eigenvalue is the saddle's.
    theta, h = e["path"].theta_P, 1e-4
    U = np.zeros((5, theta.size))
    for row, (i, j) in enumerate([(0, 2), (1, 3), (4, 5), (6, 7), (8, 9)]):
        U[row, i], U[row, j] = 2**-0.5, -(2**-0.5)
    c = lambda t: _numpy_cost(t, problem, x, y)
    H = np.array(
        [
            [(c(theta + h * (u + v)) - c(theta + h * (u - v)) - c(theta - h * (u - v)) + c(theta - h * (u + v))) / (4 * h * h) for v in U]
            for u in U
        ]
    )
    assert np.linalg.eigvalsh(H)[0] == pytest.approx(e["lambda_min"], abs=1e-6) and e["lambda_min"] < -1e-4


def test_a_sigmoid_on_separable_data_without_l2_escapes():
    rng = np.random.default_rng(2)
    x = rng.uniform(size=(40, 2))
    y = np.eye(2)[(x[:, 0] > x[:, 1]).astype(int)]
    problem = critical.Problem((2, 2), "sigmoid", "quadratic", 0.0)
    e = verdict.analyze(problem, rng.normal(size=6), x, y, budget=30)
    assert e["verdict"] == "escaping", e["reason"]
    assert e["theta_norm"] > 10 * np.linalg.norm(e["path"].norm_S[0]) and e["escape"]["norm_growth"] >= verdict.GROWTH


def test_a_permuted_copy_is_the_same_minimum_and_a_moved_one_is_not():
    problem = critical.Problem((4, 5, 3, 2), "sigmoid", "quadratic", 1e-3)
    rng = np.random.default_rng(3)
    A = [(rng.normal(size=(o, i)), rng.normal(size=o)) for i, o in zip(problem.sizes[:-1], problem.sizes[1:])]
    B = geometry.permute(A, [rng.permutation(5), rng.permutation(3)])
    thetas = [critical.flatten(A), critical.flatten(B), critical.flatten(A) + 1e-3]
    d = geometry.distinct_minima(thetas, [1e-12, 1e-12, 1e-12], problem)
    assert d["count"] == 2 and sorted(map(sorted, d["groups"])) == [[0, 1], [2]]
    assert d["relative_distances"][0][1] < 1e-15 < d["relative_distances"][0][2]


# --------------------------------------------------------------------------- the command


def _numpy_grad(theta, problem, x, y):
    """∇ of the one-hidden-layer sigmoid network's quadratic cost with L2, by hand-written backprop in NumPy."""
    (W1, b1), (W2, b2) = critical.unravel(problem, theta)
    a1 = 1 / (1 + np.exp(-(x @ W1.T + b1)))
    a2 = 1 / (1 + np.exp(-(a1 @ W2.T + b2)))
    d2 = 2 * (a2 - y) * a2 * (1 - a2) / x.shape[0]
    d1 = (d2 @ W2) * a1 * (1 - a1)
    return critical.flatten([(d1.T @ x, d1.sum(0)), (d2.T @ a1, d2.sum(0))]) + problem.l2 * theta


def test_the_command_finds_minima_that_an_independent_computation_confirms(train_here, small_idx_dir, tfds_dir, tmp_path, capsys):
    from omegaconf import OmegaConf

    from mlpjax import config

    run = tmp_path / "run"
    overrides = ["train.seeds=2", "train.epochs=1", "model.hidden=[2]", "data.batch_size=50", "data.validation=2000", "model.l2=1e-3"]
    train_here(run, *overrides)
    (run / ".hydra").mkdir()
    OmegaConf.save(
        config.compose([f"data.idx_dir={small_idx_dir}", f"data.data_dir={tfds_dir}", *overrides]), run / ".hydra" / "config.yaml"
    )
    out = tmp_path / "crit"
    assert critical_cli.main([str(run), "--networks", "all", "--examples", "300", "--out", str(out)]) == 0
    result = json.loads((out / "critical.json").read_text())
    assert [e["seed"] for e in result["networks"]] == [0, 1] and result["definitions"]["minimum"]
    assert result["environment"]["git_commit"] and "git_dirty" in result["environment"]  # what made it
    minima = [e for e in result["networks"] if e["verdict"] == "minimum"]
    assert minima and sum(result["counts"].values()) == 2
    assert (out / "critical.png").stat().st_size > 1000 and "verdicts: minimum" in capsys.readouterr().out
    # The minimum, read back, checked without JAX's autodiff: a NumPy backprop, and the Hessian by
    # central differences of it (h = 1e-5: truncation ~1e-10, rounding ~1e-11).
    with jax.enable_x64(True):
        stacked = checkpoint.load_params(str(out / "params_critical"))
    e = minima[0]
    theta = critical.flatten(checkpoint.network(stacked, e["network"]))
    problem = critical.Problem((784, 2, 10), "sigmoid", "quadratic", 1e-3)
    x_NxD = np.asarray(small_mnist_train(small_idx_dir)[0][:300], np.float64)
    y_NxK = np.eye(10)[small_mnist_train(small_idx_dir)[1][:300]]
    assert np.linalg.norm(_numpy_grad(theta, problem, x_NxD, y_NxK)) <= 1e-8
    h, P = 1e-5, theta.size
    H = np.empty((P, P))
    for i in range(P):
        step = np.zeros(P)
        step[i] = h
        H[i] = (_numpy_grad(theta + step, problem, x_NxD, y_NxK) - _numpy_grad(theta - step, problem, x_NxD, y_NxK)) / (2 * h)
    lam_min = np.linalg.eigvalsh(0.5 * (H + H.T))[0]
    assert lam_min == pytest.approx(e["lambda_min"], abs=1e-8) and lam_min > 0


def small_mnist_train(idx_dir):
    from mlpjax.data import read_idx

    x = read_idx(f"{idx_dir}/train-images-idx3-ubyte.gz")
    return x.reshape(len(x), -1).astype(np.float32) / np.float32(255), read_idx(f"{idx_dir}/train-labels-idx1-ubyte.gz")


@pytest.mark.parametrize(
    "args,message",
    [
        (["/no/such/run"], "/no/such/run: not a directory"),
        (["{run}", "--networks", "x"], "--networks 'x': must be network numbers"),
        (["{run}", "--tol", "0"], "--tol 0.0: must be > 0"),
        (["{run}", "--start", "adam"], "argument --start: invalid choice"),
    ],
)
def test_mistakes_are_one_line(tmp_path, capsys, args, message):
    (tmp_path / "run").mkdir()
    assert critical_cli.main([a.replace("{run}", str(tmp_path / "run")) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
