"""The geometry of minima against cases whose answer is known: a network and a permutation of itself, a
valley that a curve can follow, the Hessian by `jax.hessian` in float64, rescaled filters."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import problems
import pytest

from mlpjax import cost, landscape, model
from mlpjax.landscape import commands, geometry


def tiny(sizes=(12, 5, 4, 3), seed=0, n=40, init="normal"):
    x_NxD, _ = problems.examples(n, sizes[0], sizes[-1], seed)
    y_NxK = jnp.asarray(np.eye(sizes[-1], dtype=np.float32)[np.arange(n) % sizes[-1]])
    return problems.network(sizes, seed, init), x_NxD, y_NxK


def trained(sizes, steps=300, lr=2.0):
    """A tiny network after `steps` of full-batch gradient descent on `tiny`'s data: at low cost, so
    a path from it to a permuted copy of itself must climb."""
    params, x, y = tiny(sizes)
    step = jax.jit(lambda p: jax.tree.map(lambda w, g: w - lr * g, p, jax.grad(cost.network_cost)(p, x, y)))
    for _ in range(steps):
        params = step(params)
    return params, x, y


def _objective(A, B) -> float:
    """Σ_l ⟨W_l^A, W_l^B⟩ + ⟨b_l^A, b_l^B⟩, what weight matching maximizes, in float64."""
    return sum(float(np.vdot(np.float64(Wa), np.float64(Wb)) + np.vdot(np.float64(ba), np.float64(bb))) for (Wa, ba), (Wb, bb) in zip(A, B))


def test_a_permuted_copy_is_matched_back_exactly():
    A, x, y = trained((20, 7, 6, 3))
    rng = np.random.default_rng(1)
    perms = [rng.permutation(7), rng.permutation(6)]
    B = geometry.permute(A, perms)
    # A permutation changes the parameters but not the function (up to float32 summation order).
    assert not np.array_equal(B[0][0], A[0][0])
    np.testing.assert_allclose(model.forward(B, x), model.forward(A, x), rtol=1e-5, atol=1e-6)
    found, _ = geometry.weight_matching(A, B)
    aligned = geometry.permute(B, found)
    for a, b in zip(jax.tree.leaves(A), jax.tree.leaves(aligned)):
        np.testing.assert_array_equal(a, b)  # indexing only: exact
    alphas = np.linspace(0, 1, 11)
    unaligned = landscape.barrier(landscape.interpolate(A, B, x, y, "sigmoid", "quadratic", alphas), alphas)
    same = landscape.barrier(landscape.interpolate(A, aligned, x, y, "sigmoid", "quadratic", alphas), alphas)
    assert unaligned > 1e-3
    assert same <= 1e-6  # (1−α)·a + α·a is a up to one rounding of each parameter


def test_matching_two_independent_networks_raises_their_similarity():
    (A, _, _), (B, _, _) = tiny(seed=0), tiny(seed=7)
    found, rounds = geometry.weight_matching(A, B)
    assert rounds >= 1 and [sorted(p) for p in found] == [list(range(5)), list(range(4))]
    assert _objective(A, geometry.permute(B, found)) > _objective(A, B)
    # A fixed point: matching the aligned network again changes nothing.
    again, _ = geometry.weight_matching(A, geometry.permute(B, found))
    assert all(np.array_equal(p, np.arange(p.size)) for p in again)


def test_bezier_curve_follows_a_known_valley():
    # The cost is 0 on a circle through (−1, 0) and (1, 0), centre (0, 0.3); the straight line
    # between them crosses (0, 0), where the cost is (0.09 − 1.09)² = 1: a barrier of exactly 1.
    valley = lambda p, key: (p[0] ** 2 + (p[1] - 0.3) ** 2 - 1.09) ** 2
    a, b = jnp.array([-1.0, 0.0]), jnp.array([1.0, 0.0])
    theta, losses = geometry.fit_bezier(valley, a, b, jax.random.key(0), steps=2000, lr=0.01)
    ts = jnp.linspace(0, 1, 101)
    line = np.asarray(jax.vmap(lambda t: valley((1 - t) * a + t * b, None))(ts))
    curve = np.asarray(jax.vmap(lambda t: valley(geometry.bezier(a, theta, b, t), None))(ts))
    assert landscape.barrier(line, np.asarray(ts)) == pytest.approx(1.0, abs=1e-6)
    assert landscape.barrier(curve, np.asarray(ts)) < 0.05
    assert losses[-100:].mean() < 0.05 * losses[:10].mean()
    middle = geometry.bezier(a, theta, b, 0.5)  # near the circle's top or bottom, far from the line
    assert abs(float(middle[1]) - 0.3) == pytest.approx(np.sqrt(1.09), abs=0.1) and abs(float(middle[0])) < 0.1


def _hessian_f64(params, x, y, activation="sigmoid", cost="quadratic") -> np.ndarray:
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        return landscape.hessian(p64, jnp.asarray(x, jnp.float64), jnp.asarray(y, jnp.float64), activation, cost)


@pytest.mark.parametrize("activation,cost", [("sigmoid", "quadratic"), ("relu", "cross_entropy")])
def test_every_eigenvalue_matches_the_float64_hessian(activation, cost):
    params, x, y = tiny()
    exact = np.linalg.eigvalsh(_hessian_f64(params, x, y, activation, cost))
    got = geometry.hessian_eigenvalues(params, x, y, activation, cost, chunk=16)
    assert got.shape == (model.param_count(params),) == exact.shape
    # float32 Hessian-vector products: errors of a few float32 epsilons of the largest |λ|.
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-5 * np.abs(exact).max())
    assert exact[0] < 0 < exact[-1]  # not at a minimum: both signs, so the test sees the sign
    ritz = landscape.lanczos(params, x, y, activation, cost, steps=10)
    assert exact[0] - 1e-5 <= ritz[0] and ritz[-1] <= exact[-1] + 1e-5  # Ritz values lie inside


def test_slq_quadrature_is_exact_for_its_start_vectors():
    params, x, y = tiny()
    H = _hessian_f64(params, x, y)
    exact = np.linalg.eigvalsh(H)
    key, V, steps = jax.random.key(3), 6, 12
    nodes, weights = geometry.slq(params, x, y, "sigmoid", "quadratic", key, steps=steps, vectors=V)
    v_VxP = np.asarray(jax.random.rademacher(key, (V, H.shape[0]), jnp.float32), np.float64)  # slq's start vectors
    scale = np.abs(exact).max()
    for v, theta, w in zip(v_VxP, nodes, weights):
        assert w.sum() == pytest.approx(1.0, abs=1e-9)
        assert exact[0] - 1e-5 * scale <= theta.min() and theta.max() <= exact[-1] + 1e-5 * scale
        # Gauss quadrature with `steps` nodes is exact for vᵀHᵏv, k < 2·steps.
        for k in (1, 2, 3):
            moment = v @ np.linalg.matrix_power(H, k) @ v / (v @ v)
            assert np.sum(w * theta**k) == pytest.approx(moment, rel=1e-4, abs=1e-5 * scale**k)
    grid = np.linspace(exact[0] - scale, exact[-1] + scale, 4001)
    d = geometry.density(nodes, weights, grid, sigma=scale / 50)
    assert np.trapezoid(d, grid) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("c", [2.0, 3.0])
def test_filter_normalized_surface_ignores_a_rescaled_relu_layer(c):
    R, x, y = tiny(init="he")
    # ReLU(c·z) = c·ReLU(z): layer 1 times c and layer 2's weights divided by c compute the same function.
    R2 = [(R[0][0] * c, R[0][1] * c), (R[1][0] / c, R[1][1]), R[2]]
    np.testing.assert_allclose(model.forward(R2, x, "relu"), model.forward(R, x, "relu"), rtol=1e-5, atol=1e-6)
    d = [geometry.random_direction(jax.random.key(k), R) for k in (5, 6)]
    d2 = [geometry.random_direction(jax.random.key(k), R2) for k in (5, 6)]
    # Each filter of the direction follows its filter's norm: layer 1 grows by c, layer 2 shrinks by c.
    np.testing.assert_allclose(d2[0][0][0], c * d[0][0][0], rtol=1e-6)
    np.testing.assert_allclose(d2[0][1][0], d[0][1][0] / c, rtol=1e-6)
    assert all(float(jnp.abs(b).max()) == 0 for _, b in d[0])  # biases are not moved
    grid = jnp.linspace(-1, 1, 5)
    s1 = geometry.surface(R, *d, x, y, grid, grid, "relu", "quadratic")
    s2 = geometry.surface(R2, *d2, x, y, grid, grid, "relu", "quadratic")
    np.testing.assert_allclose(s2, s1, rtol=1e-5)
    # Without the normalization the same raw directions draw a different picture of the same function.
    rng = np.random.default_rng(5)
    raw = [[(jnp.asarray(rng.normal(size=W.shape).astype(np.float32)), jnp.zeros_like(b)) for W, b in R] for _ in range(2)]
    r1 = geometry.surface(R, *raw, x, y, grid, grid, "relu", "quadratic")
    r2 = geometry.surface(R2, *raw, x, y, grid, grid, "relu", "quadratic")
    assert not np.allclose(r1, r2, rtol=1e-3)


# --------------------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def trained_run(train_here, small_idx_dir, tfds_dir, tmp_path_factory):
    """Two seeds of 784-3-10 trained one epoch on the small MNIST, as `mlpjax.train` leaves the run dir."""
    from omegaconf import OmegaConf

    from mlpjax import config

    run = tmp_path_factory.mktemp("run")
    overrides = ["train.seeds=2", "train.epochs=1", "model.hidden=[3]", "data.batch_size=50", "data.validation=2000"]
    train_here(run, *overrides)
    (run / ".hydra").mkdir()
    cfg = config.compose([f"data.idx_dir={small_idx_dir}", f"data.data_dir={tfds_dir}", *overrides])
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
    return run


def test_every_command_writes_its_figure_and_numbers(trained_run, tmp_path, capsys):
    out = tmp_path / "out"
    common = ["--out", str(out), "--examples", "300"]
    assert commands.main(["align", str(trained_run), "--networks", "0,1", *common]) == 0
    align = json.loads((out / "align.json").read_text())
    assert align["barrier_aligned"] <= align["barrier_unaligned"]
    assert [sorted(p) for p in align["permutations"]] == [[0, 1, 2]]
    assert align["output_change"] < 1e-5 and align["examples"] == 300
    assert commands.main(["curve", str(trained_run), "--steps", "40", *common]) == 0
    curve = json.loads((out / "curve.json").read_text())
    assert curve["networks"] == align["networks"]  # the default pair: the best and the other seed
    assert {"barrier_line", "barrier_curve", "barrier_line_aligned", "barrier_curve_aligned"} <= curve.keys()
    assert curve["barrier_line"] == pytest.approx(align["barrier_unaligned"], rel=0.2)  # 51 points, not 25
    assert commands.main(["lines", str(trained_run), *common]) == 0
    lines = json.loads((out / "lines.json").read_text())
    assert len(lines["alphas"]) == 81 and lines["alphas"][0] == -0.5 and lines["alphas"][-1] == 1.5
    assert lines["init_to_a"]["costs"][20] > lines["init_to_a"]["costs"][60]  # training lowered the cost
    assert commands.main(["surface", str(trained_run), "--networks", "0,1", "--grid", "3", *common]) == 0
    surface = json.loads((out / "surface.json").read_text())
    assert np.array(surface["costs"]).shape == (3, 3) and surface["compared_with"]["network"] != surface["network"]
    assert surface["cost_center"] == pytest.approx(surface["costs"][1][1])
    assert commands.main(["spectrum", str(trained_run), "--networks", "1", "--slq-steps", "10", "--slq-vectors", "1", *common]) == 0
    spectrum = json.loads((out / "spectrum.json").read_text())
    assert spectrum["eigenvalues"] == 784 * 3 + 3 + 3 * 10 + 10
    eig = np.load(out / spectrum["eigenvalues_file"])
    assert spectrum["negative"] == int(np.sum(eig < 0)) and spectrum["top"][0] == eig[-1] >= spectrum["slq"]["lambda_max"] - 1e-6
    for what in commands.WHATS:
        assert (out / f"{what}.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "args,message",
    [
        (["align", "{run}", "--networks", "0,0"], "--networks 0,0: the same network twice"),
        (["curve", "{run}", "--networks", "all"], "--networks all is for align on one run dir"),
        (["lines", "{run}", "--networks", "1"], "lines needs two networks, I,J"),
        (["align", "{run}", "--networks", "0,5"], "--network 5: the run has 2 network(s), 0..1"),
        (["surface", "{run}", "--grid", "4"], "--grid 4: must be odd"),
        (["spectrum", "/no/such/run"], "/no/such/run: not a directory"),
    ],
)
def test_mistakes_are_one_line(trained_run, tmp_path, capsys, args, message):
    argv = [a.replace("{run}", str(trained_run)) for a in args] + ["--out", str(tmp_path)]
    assert commands.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
