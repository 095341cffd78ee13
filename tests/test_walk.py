"""SGD's drunken walk (mlpjax.walk): the compiled loop against steps taken by hand, the mini-batch
bookkeeping, the principal directions, and the command on tiny fake data. No MNIST needed."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import problems
import pytest
from jax.flatten_util import ravel_pytree

from mlpjax import cost, fit, walk


def tiny(sizes=(8, 5, 4), n=24, seed=0, dtype=jnp.float32):
    """Random parameters (LeCun) and n random examples with one-hot targets."""
    return problems.network(sizes, seed, "lecun", dtype), *problems.examples(n, sizes[0], sizes[-1], seed, dtype)


def flat(params) -> np.ndarray:
    return np.asarray(ravel_pytree(params)[0])


def by_hand(params, x_BxD_for_step, lr, steps):
    """θ after each of `steps` plain steps θ ← θ − lr ∇C, the batch of step s given by `x_BxD_for_step(s)`."""
    thetas = [flat(params)]
    grad = jax.jit(jax.grad(cost.network_cost))  # compiled once: op-by-op eager would compile every primitive
    for s in range(steps):
        xb, yb = x_BxD_for_step(s)
        g = grad(params, xb, yb)
        params = jax.tree.map(lambda p, gp: p - lr * gp, params, g)
        thetas.append(flat(params))
    return np.stack(thetas), params


def run(params, x, y, steps, lr, idx=None, stride=0, dirs=None, record_all=True):
    P = flat(params).shape[0]
    dirs = jnp.zeros((P, 0), x.dtype) if dirs is None else jnp.asarray(dirs, x.dtype)
    record = jnp.full(steps, record_all)
    return walk.run_steps(params, x, y, idx, record, jnp.asarray(lr, x.dtype), dirs, "sigmoid", "quadratic", stride)


# Float32 tolerance: the compiled loop and the eager steps do the same arithmetic, but XLA fuses and
# orders the sums of the matmuls and the batch mean differently, so each gradient differs by a few
# ulps (float32 eps = 1.2e-7) of its terms; a handful of steps at lr ≤ 1 on parameters of size ~1
# keeps that below 1e-6 (measured: ≤ 2.4e-7). A real mistake — a missed or repeated step, a wrong
# batch, the lr applied twice — moves parameters by lr·|∂C/∂θ| ≳ 1e-3 here, far above atol 1e-5.
ATOL = 1e-5


@pytest.mark.parametrize("stride", [1, 3])
def test_full_batch_gd_trajectory_is_plain_gradient_descent(stride):
    params, x, y = tiny()
    steps, lr = 7, 0.8
    hand_TxP, hand_params = by_hand(params, lambda s: (x, y), lr, steps)
    trace = run(params, x, y, steps, lr, stride=stride)
    kept = walk.snapshot_steps(steps, stride)
    assert kept.tolist() == ([0, 1, 2, 3, 4, 5, 6, 7] if stride == 1 else [0, 3, 6, 7])
    assert trace.snap_MxP.shape == (len(kept), hand_TxP.shape[1])
    np.testing.assert_allclose(np.asarray(trace.snap_MxP), hand_TxP[kept], rtol=0, atol=ATOL)
    np.testing.assert_allclose(flat(trace.params), hand_TxP[-1], rtol=0, atol=ATOL)
    # The recorded costs are those of θ after each step, on the whole set; the step lengths |θ_{s+1} − θ_s|.
    assert float(trace.cost_S[-1]) == pytest.approx(float(cost.network_cost(hand_params, x, y)), abs=ATOL)
    assert float(trace.cost0) == pytest.approx(float(cost.network_cost(params, x, y)), abs=ATOL)
    np.testing.assert_allclose(np.asarray(trace.step_norm_S), np.linalg.norm(np.diff(hand_TxP, axis=0), axis=1), rtol=1e-4)
    assert np.all(np.diff(np.asarray(trace.cost_S)) < 0)  # small lr on a smooth cost: GD goes downhill


def test_costs_are_recorded_only_where_asked():
    params, x, y = tiny()
    points = walk.log_points(9, n=4)
    record = jnp.asarray(walk._record_mask(9, points))
    trace = walk.run_steps(params, x, y, None, record, jnp.float32(0.5), jnp.zeros((flat(params).size, 0)), "sigmoid", "quadratic")
    c_S = np.asarray(trace.cost_S)
    assert points.tolist() == [0, 1, 2, 4, 9]
    assert np.isfinite(c_S[[0, 1, 3, 8]]).all() and np.isnan(np.delete(c_S, [0, 1, 3, 8])).all()


def test_log_points():
    p = walk.log_points(2000)
    assert p[0] == 0 and p[1] == 1 and p[-1] == 2000
    assert np.all(np.diff(p) > 0) and 35 <= len(p) <= 42
    ratios = p[10:] / p[9:-1]  # past the integer-rounding region the spacing is geometric
    assert ratios.min() > 1.1 and ratios.max() < 1.35
    assert walk.log_points(10).tolist() == list(range(11))


@pytest.mark.parametrize("n, B", [(12, 4), (13, 5)])
def test_each_example_once_per_epoch_in_the_per_epoch_shuffle(n, B):
    seed, epochs = 3, 4
    per_epoch = n // B
    idx_SxB = walk.batch_indices(seed, n, B, epochs * per_epoch)
    assert idx_SxB.shape == (epochs * per_epoch, B) and idx_SxB.dtype == np.int32
    for e in range(1, epochs + 1):
        block = idx_SxB[(e - 1) * per_epoch : e * per_epoch].ravel()
        order = fit.permutations([seed], e, n)[0]
        np.testing.assert_array_equal(block, order[: per_epoch * B])  # mlpjax.train's order, last partial batch dropped
        assert len(np.unique(block)) == per_epoch * B  # no example twice in an epoch
        if B * per_epoch == n:
            assert sorted(block) == list(range(n))  # every example exactly once
    assert not np.array_equal(idx_SxB[:per_epoch], idx_SxB[per_epoch : 2 * per_epoch])  # reshuffled each epoch
    # A run that is not whole epochs is the start of the longer one.
    np.testing.assert_array_equal(walk.batch_indices(seed, n, B, per_epoch + 1), idx_SxB[: per_epoch + 1])
    with pytest.raises(ValueError):
        walk.batch_indices(seed, n, n + 1, 1)


def test_sgd_loop_takes_the_batches_in_order():
    params, x, y = tiny(n=20)
    idx_SxB = walk.batch_indices(5, 20, 4, 12)  # 2.4 epochs of 5 steps
    hand_TxP, _ = by_hand(params, lambda s: (x[idx_SxB[s]], y[idx_SxB[s]]), 1.0, 12)
    trace = run(params, x, y, 12, 1.0, idx=jnp.asarray(idx_SxB), stride=1)
    np.testing.assert_allclose(np.asarray(trace.snap_MxP), hand_TxP, rtol=0, atol=ATOL)  # tolerance: see ATOL


def test_sgd_epochs_at_tiny_lr_sum_the_full_gradient():
    # To first order in lr, E epochs of SGD at batch B (B divides n) move θ by −lr·E·(n/B)·∇C(θ_0): every
    # example's gradient counted once per epoch. float64, so float rounding is negligible and the O(lr²)
    # remainder sets the tolerance: measured ≤ 2e-13 against a largest entry of 3e-7, so 1e-4 of that
    # entry has a 100x margin; an example skipped or repeated changes the sum by ~1/n of it, 5% here.
    with jax.enable_x64(True):
        params, x, y = tiny(n=20, dtype=jnp.float64)
        B, epochs, lr = 2, 3, 1e-6
        idx = jnp.asarray(walk.batch_indices(1, 20, B, epochs * 10))
        trace = run(params, x, y, epochs * 10, lr, idx=idx)
        g_P = flat(jax.jit(jax.grad(cost.network_cost))(params, x, y))
        expected_P = -lr * epochs * (20 / B) * g_P
        np.testing.assert_allclose(flat(trace.params) - flat(params), expected_P, rtol=0, atol=1e-4 * np.abs(expected_P).max())
        # Whereas one batch taken 30 times sums something else.
        same = jnp.tile(idx[:1], (epochs * 10, 1))
        wrong = flat(run(params, x, y, epochs * 10, lr, idx=same).params) - flat(params)
        assert np.abs(wrong + lr * epochs * (20 / B) * g_P).max() > 1e-2 * np.abs(lr * epochs * (20 / B) * g_P).max()


def test_principal_directions_of_a_straight_path():
    rng = np.random.default_rng(0)
    P, M = 50, 30
    u_P = rng.normal(size=P)
    u_P /= np.linalg.norm(u_P)
    theta0_P = rng.normal(size=P)
    a_M = np.linspace(0, 1, M) ** 2 * 5  # uneven speed along the line, outward
    snap_MxP = theta0_P + a_M[:, None] * u_P + 1e-6 * rng.normal(size=(M, P))
    dirs_PxR, explained_R = walk.principal_directions(snap_MxP, theta0_P)
    assert dirs_PxR.shape == (P, 2)
    assert dirs_PxR[:, 0] @ u_P > 0.999999  # the line itself, pointing from start to end
    assert explained_R[0] > 0.999999 and explained_R[1] < 1e-6
    np.testing.assert_allclose(np.linalg.norm(dirs_PxR, axis=0), 1, rtol=1e-12)
    proj_MxR = (snap_MxP - theta0_P) @ dirs_PxR
    np.testing.assert_allclose(proj_MxR[:, 0], a_M, atol=1e-5)  # coordinates are distances along the line


def test_principal_directions_of_an_ellipse():
    # A full turn around an ellipse with semi-axes 3 (along u) and 1 (along v): the centred
    # coordinates are uncorrelated, with variances in the ratio 9 : 1.
    rng = np.random.default_rng(1)
    P, M = 40, 400
    q_PxP, _ = np.linalg.qr(rng.normal(size=(P, P)))
    u_P, v_P = q_PxP[:, 0], q_PxP[:, 1]
    t_M = np.arange(M) / M * 2 * np.pi
    theta0_P = rng.normal(size=P)
    # Starting away from the centre: the path starts at θ0 and displacements are from it.
    snap_MxP = theta0_P + (3 * (1 - np.cos(t_M)))[:, None] * u_P + np.sin(t_M)[:, None] * v_P
    dirs_PxR, explained_R = walk.principal_directions(snap_MxP, theta0_P)
    np.testing.assert_allclose(explained_R, [0.9, 0.1], atol=1e-9)
    assert abs(dirs_PxR[:, 0] @ u_P) > 1 - 1e-9 and abs(dirs_PxR[:, 1] @ v_P) > 1 - 1e-9


def test_projections_in_the_loop_match_the_snapshots():
    params, x, y = tiny(n=30)
    gd = run(params, x, y, 20, 2.0, stride=1)
    dirs_PxR, explained_R = walk.principal_directions(np.asarray(gd.snap_MxP), flat(params))
    assert 0.9 < explained_R.sum() <= 1 + 1e-9  # a short GD path is nearly planar
    again = run(params, x, y, 20, 2.0, dirs=dirs_PxR)
    expected = (np.asarray(gd.snap_MxP[1:], np.float64) - flat(params)) @ dirs_PxR
    np.testing.assert_allclose(np.asarray(again.proj_SxR), expected, rtol=0, atol=ATOL)
    assert expected[-1, 0] > 0  # signed so that the end lies on the positive side


def test_path_stats():
    s = walk.path_stats(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]))
    assert s["path"] == pytest.approx(2.0) and s["straight"] == pytest.approx(np.sqrt(2))
    assert s["ratio"] == pytest.approx(np.sqrt(2))
    assert np.isnan(walk.path_stats(np.zeros((3, 2)))["ratio"])
    keep = walk.subsample(2001)
    assert len(keep) == 500 and keep[0] == 0 and keep[-1] == 2000
    assert walk.subsample(7).tolist() == list(range(7))


# --------------------------------------------------------------------------- the command


def fake_mnist(n_train=300, n_test=20, seed=0):
    from mlpjax import data

    rng = np.random.default_rng(seed)
    return data.Mnist(
        x_train_NxD=rng.random((n_train, 784), dtype=np.float32),
        labels_train_N=rng.integers(0, 10, n_train).astype(np.int32),
        x_test_NxD=rng.random((n_test, 784), dtype=np.float32),
        labels_test_N=rng.integers(0, 10, n_test).astype(np.int32),
        source="fake",
    )


@pytest.fixture
def no_data(monkeypatch):
    """Loading MNIST fails the test: these mistakes must be caught before."""
    import mlpjax.data

    def refuse(*args):
        raise AssertionError("load_mnist was called")

    monkeypatch.setattr(mlpjax.data, "load_mnist", refuse)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--batch-sizes", "10,60000"], "60000 is larger than the training set"),
        (["--batch-sizes", "50001"], "larger than the training set"),
        (["--lr", "0"], "--lr 0: must be"),
        (["--lr", "-1"], "--lr -1: must be"),
        (["--lr", "nan"], "--lr nan"),
        (["--activation", "tanh"], "--activation 'tanh': unknown"),
        (["--cost", "hinge"], "--cost 'hinge': unknown"),
        (["--steps", "0"], "--steps 0"),
        (["--epochs", "-2"], "--epochs -2"),
        (["--batch-sizes", "10,x"], "--batch-sizes '10,x'"),
        (["--batch-sizes", "10,10"], "appears twice"),
        (["--batch-sizes", "0"], "must be ≥ 1"),
        (["--hidden", "16,0"], "--hidden '16,0'"),
        (["--validation", "60000"], "leaves no training images"),
        (["--steps", "many"], "invalid int value"),
        (["--frobnicate"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(no_data, tmp_path, capsys, args, words):
    assert walk.main(["--out", str(tmp_path / "w"), *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert words in err
    assert not os.path.exists(tmp_path / "w")


def test_missing_out_is_one_line(no_data, capsys):
    assert walk.main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--out" in err and err.count("\n") == 1


def test_batch_larger_than_the_loaded_training_set(monkeypatch, tmp_path, capsys):
    import mlpjax.data

    monkeypatch.setattr(mlpjax.data, "load_mnist", lambda *a: fake_mnist(300))
    assert walk.main(["--out", str(tmp_path), "--validation", "100", "--batch-sizes", "10,201"]) == 2
    err = capsys.readouterr().err
    assert err == "error: --batch-sizes: 201 is larger than the training set (300 − 100 = 200 images)\n"


def test_main_on_tiny_fake_data(monkeypatch, tmp_path, capsys):
    import mlpjax.data

    monkeypatch.setattr(mlpjax.data, "load_mnist", lambda *a: fake_mnist(300))
    out = tmp_path / "walk"
    argv = [
        "--out",
        str(out),
        "--steps",
        "600",
        "--epochs",
        "2",
        "--batch-sizes",
        "25",
        "--hidden",
        "6",
        "--validation",
        "100",
        "--lr",
        "0.5",
    ]
    assert walk.main(argv) == 0
    stdout = capsys.readouterr().out
    assert "SGD, batch 25" in stdout and "GD, batch 200" in stdout and "path/straight" in stdout
    assert (out / "walk.png").stat().st_size > 10_000
    r = json.loads((out / "walk.json").read_text())
    assert r["settings"]["sizes"] == [784, 6, 10] and r["settings"]["batch_sizes"] == [25] and r["n_train"] == 200
    assert r["param_count"] == 784 * 6 + 6 + 6 * 10 + 10 and r["wall_seconds"] > 0
    steps_runs, ex_runs, walk_runs = r["equal_steps"], r["equal_examples"], r["walk"]["runs"]
    assert (
        [x["label"] for x in steps_runs]
        == [x["label"] for x in ex_runs]
        == [x["label"] for x in walk_runs]
        == ["SGD, batch 25", "GD, batch 200"]
    )
    for x in steps_runs:
        assert x["steps"][0] == 0 and x["steps"][-1] == 600 and len(x["steps"]) == len(x["cost"])
        assert x["cost"][0] == steps_runs[0]["cost"][0]  # the same θ0
    sgd, gd = ex_runs
    assert sgd["steps"][-1] == 2 * (200 // 25) and sgd["examples"][-1] == 400  # 2 epochs of 8 steps
    assert gd["steps"] == [0, 1, 2] and gd["examples"] == [0, 200, 400]
    # The fake labels are noise, but both must still lower the training cost.
    assert sgd["cost"][-1] < sgd["cost"][0] and gd["cost"][-1] < gd["cost"][0]
    for w in walk_runs:  # 601 points per run, thinned to 500 with both ends kept
        assert len(w["pc1"]) == len(w["pc2"]) == len(w["steps"]) == 500
        assert w["steps"][0] == 0 and w["steps"][-1] == 600 and w["pc1"][0] == 0 and w["pc2"][0] == 0
        assert w["zoom"]["steps"] == list(range(500, 601))  # the inset: the last 100 steps, every one
        assert w["zoom"]["pc1"][-1] == w["pc1"][-1] and len(w["zoom"]["pc2"]) == 101
        assert w["drunkenness_plane"] >= 1 and w["drunkenness_full"] >= 1 and 0 < w["in_plane_share"] <= 1 + 1e-6
    ev = r["walk"]["explained_variance"]
    assert len(ev) == 2 and 0 <= ev[1] <= ev[0] and sum(ev) <= 1 + 1e-9
    assert walk_runs[0]["drunkenness_full"] > walk_runs[1]["drunkenness_full"]  # SGD staggers more than GD
