"""The series' measurements on tiny networks, and the command end to end on a fake run dir."""

import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import problems
import pytest
from jax.flatten_util import ravel_pytree

from mlpjax import checkpoint, model, series


def tiny(sizes=(6, 4, 3), seed=0, n=40, float64=False):
    """Random params and n random examples; `float64` (under `jax.enable_x64`): all cast to float64."""
    dtype = np.float64 if float64 else np.float32
    params, (x_NxD, y_NxK) = problems.network(sizes, seed, dtype=dtype), problems.examples(n, sizes[0], sizes[-1], seed, dtype)
    if float64:
        assert all(a.dtype == jnp.float64 for a in jax.tree.leaves((params, x_NxD, y_NxK)))
    return params, x_NxD, y_NxK


@pytest.mark.parametrize("output", ["sigmoid", "log_softmax"])
def test_noise_distributions_sum_to_one(output):
    params, x, _ = tiny()
    r = series.noise_confidence(params, "sigmoid", output, jax.random.key(1), n=500, x_digits_NxD=x, bins=10)
    assert len(r["bin_edges"]) == 11
    for name, n in [("noise", 500), ("digits", 40)]:
        d = r[name]
        assert d["n"] == n
        assert len(d["top_fractions"]) == 10 and len(d["class_fractions"]) == 3
        assert sum(d["top_fractions"]) == pytest.approx(1.0)
        assert sum(d["class_fractions"]) == pytest.approx(1.0)
        assert 0 <= d["mean_top"] <= 1
    if output == "log_softmax":  # probabilities: the top one is at least 1/K
        assert r["noise"]["median_top"] >= 1 / 3


def test_noise_on_a_network_that_always_answers_two():
    # Last layer ignores its input: outputs σ(−3), σ(−3), σ(+2) for every image.
    params, _, _ = tiny()
    params[-1] = (jnp.zeros_like(params[-1][0]), jnp.array([-3.0, -3.0, 2.0]))
    r = series.noise_confidence(params, "relu", "sigmoid", jax.random.key(0), n=200, bins=10)
    assert "digits" not in r
    assert r["noise"]["class_fractions"] == [0.0, 0.0, 1.0]
    top = 1 / (1 + math.exp(-2.0))  # 0.881: every image falls in the bin [0.8, 0.9)
    assert r["noise"]["top_fractions"][8] == 1.0
    # Each output is float32 σ(2) (z = 0·x + 2 exactly), within a few ulp (eps = 1.2e-7) of the
    # true value; their mean is taken in float64. rel 1e-6.
    assert r["noise"]["mean_top"] == pytest.approx(top, rel=1e-6)
    assert r["noise"]["above_half"] == 1.0 and r["noise"]["above_0.9"] == 0.0


def test_first_layer_images_are_the_rows_of_W1():
    params = model.init_params(jax.random.key(0), [784, 5, 10])
    images = series.first_layer_images(params)
    assert images.shape == (5, 28, 28)
    W = np.asarray(params[0][0])
    np.testing.assert_array_equal(images[3], W[3].reshape(28, 28))
    assert images[2, 7, 11] == W[2, 28 * 7 + 11]  # row-major: pixel (r, c) is input 28r + c
    with pytest.raises(ValueError, match="784"):
        series.first_layer_images(tiny()[0])


@pytest.mark.parametrize("activation,cost_name", [("sigmoid", "quadratic"), ("relu", "cross_entropy")])
def test_gradient_magnitudes_match_jax_grad(activation, cost_name):
    # Both sides in float64: the jitted gradient of the code and the eager one here then differ
    # by ~40·eps64 ≈ 1e-14 of the terms they sum (in float32 they differed by up to 8e-6 relative
    # on another CPU). rtol 1e-9 (atol 1e-12 of the largest for entries near 0) still sees any
    # wrong entry, which is off by O(itself).
    with jax.enable_x64(True):
        params, x, y = tiny(float64=True)
        x = x.at[:, 0].set(0.0)  # an always-black input: its 4 first-layer weights get exactly 0
        r = series.gradient_magnitudes(params, x, y, activation, cost_name, bins=12, top_k=5)
        grads = problems.grad_C(params, x, y, activation, cost_name)
        g_P = np.abs(np.asarray(ravel_pytree(grads)[0]))  # in the context: outside, JAX would cast to float32
    assert g_P.dtype == np.float64
    tol = 1e-12 * g_P.max()
    assert r["abs_grads_P"].shape == (43,)
    np.testing.assert_allclose(r["abs_grads_P"], g_P, rtol=1e-9, atol=tol)
    # Exact zeros: the black input's weights, and under relu those of units dead on every example.
    assert r["zero_fraction"] == np.mean(g_P == 0) and r["zero_fraction"] >= 4 / 43
    assert r["fractions"].sum() + r["zero_fraction"] == pytest.approx(1.0, rel=1e-12)
    assert len(r["bin_edges"]) == 13 and r["bin_edges"][0] <= g_P[g_P > 0].min() and r["bin_edges"][-1] >= g_P.max()
    assert r["max"] == pytest.approx(g_P.max(), rel=1e-9) and r["median"] == pytest.approx(np.median(g_P), rel=1e-9, abs=tol)
    # Under relu more than half of these entries are 0 (dead units): the ratio is then inf.
    median = np.median(g_P)
    assert r["ratio_max_to_median"] == (pytest.approx(g_P.max() / median, rel=1e-8) if median > 0 else math.inf)
    assert (median > 0) == (activation == "sigmoid")  # of this draw (tests/problems.py): both branches are seen
    # The top entries point at the right parameters, largest first. Robust to near-ties: each
    # named entry's value is its gradient, and it is among the 5 largest up to `tol` (of two
    # entries within rounding of each other, either may come first).
    by_name = {f"{k}{l + 1}": np.abs(np.asarray(a)) for l, (gW, gb) in enumerate(grads) for k, a in (("W", gW), ("b", gb))}
    top = r["top"]
    assert len(top) == 5 and len({(t["param"], tuple(t["index"])) for t in top}) == 5
    np.testing.assert_allclose([t["abs_grad"] for t in top], sorted(g_P, reverse=True)[:5], rtol=1e-9, atol=tol)
    sixth = sorted(g_P, reverse=True)[5]
    for t in top:
        true_value = by_name[t["param"]][tuple(t["index"])]
        assert t["abs_grad"] == pytest.approx(true_value, rel=1e-9, abs=tol)
        assert true_value >= sixth - tol
    np.testing.assert_allclose(r["first_layer_sum_D"], by_name["W1"].sum(axis=0), rtol=1e-9, atol=tol)
    assert r["first_layer_sum_D"][0] == 0.0
    assert [p["param"] for p in r["per_param"]] == ["W1", "b1", "W2", "b2"]
    for p in r["per_param"]:
        assert p["max"] == pytest.approx(by_name[p["param"]].max(), rel=1e-9, abs=tol)
        assert p["median"] == pytest.approx(np.median(by_name[p["param"]]), rel=1e-9, abs=tol)


def test_sigmoid_log_likelihood_is_the_bernoulli_one():
    # float64: log(1 − ŷ) of the direct formula loses eps/(1 − ŷ) relative where an output is near
    # 1, which in float32 would be the error measured; in float64 both formulas agree to ~1e-13.
    with jax.enable_x64(True):
        params, x, y = tiny(float64=True)
        yhat = model.forward(params, x, "sigmoid", "sigmoid")
        direct = jnp.sum(y * jnp.log(yhat) + (1 - y) * jnp.log(1 - yhat), axis=-1)
        loglik = series._log_likelihood(params, x, y, "sigmoid", "sigmoid")
    assert loglik.dtype == jnp.float64
    np.testing.assert_allclose(loglik, direct, rtol=1e-10)


@pytest.mark.parametrize("activation,output", [("sigmoid", "sigmoid"), ("relu", "log_softmax")])
def test_dream_raises_each_digits_log_likelihood(activation, output):
    params, _, _ = tiny(sizes=(20, 8, 4), seed=3)
    r = series.dream(params, activation, output, digits=range(4), steps=60, lr=0.05, noise_starts=2)
    assert r["images_BxD"].shape == (4, 20)
    assert r["images_BxD"].min() >= 0 and r["images_BxD"].max() <= 1
    assert r["confidence_BxK"].shape == (4, 4)
    # The ascent climbs log P(d | image) (checked against its formula above), not output d alone:
    # with sigmoid outputs it may lower ŷ_d a little while it lowers the other outputs more.
    noise_SxD = np.asarray(jax.random.uniform(jax.random.key(0), (2, 20)))  # dream's default key
    starts = {"black": np.zeros(20), "gray": np.full(20, 0.5), "noise 0": noise_SxD[0], "noise 1": noise_SxD[1]}
    x0_BxD = np.stack([starts[name] for name in r["start"]]).astype(np.float32)
    y_BxK = np.eye(4, dtype=np.float32)
    before_B, after_B = (np.asarray(series._log_likelihood(params, x, y_BxK, activation, output)) for x in (x0_BxD, r["images_BxD"]))
    assert np.all(after_B > before_B), (before_B, after_B)
    # The starts rebuilt here are dream's: output d of each is the `target_start` it reports.
    conf0_BxK = np.asarray(series.confidence(model.forward(params, jnp.asarray(x0_BxD), activation, output), output))
    for b in range(4):
        assert r["target"][b] == r["confidence_BxK"][b, b]
        assert r["target_start"][b] == pytest.approx(conf0_BxK[b, b], rel=1e-5)
    assert set(r["start"]) <= {"black", "gray", "noise 0", "noise 1"}


# --------------------------------------------------------------------------- the command

SIZES = [784, 5, 10]
SEEDS = [3, 4]


def fake_mnist(n_train=120, n_test=60):
    from mlpjax.data import Mnist

    rng = np.random.default_rng(0)
    x_train = rng.uniform(size=(n_train, 784)).astype(np.float32)
    x_train[:, :28] = 0  # a black top row, as in MNIST
    return Mnist(
        x_train_NxD=x_train,
        labels_train_N=rng.integers(0, 10, n_train).astype(np.int32),
        x_test_NxD=rng.uniform(size=(n_test, 784)).astype(np.float32),
        labels_test_N=rng.integers(0, 10, n_test).astype(np.int32),
        source="fake",
    )


@pytest.fixture
def run_dir(tmp_path):
    """A finished two-network run as `mlpjax.train` leaves it; network 1 is the better one."""
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    nets = []
    for seed in SEEDS:
        init = model.init_params(jax.random.key(seed), SIZES, "lecun")
        nets.append([(0.5 * W, b + 0.1) for W, b in init])  # "trained": moved away from the init
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *nets)
    checkpoint.save_params(str(run / "params"), stacked)
    models = [{"seed": s, "learning_rate": 1.0, "test_accuracy": acc, "diverged": False} for s, acc in zip(SEEDS, [0.5, 0.7])]
    summary = {"sizes": SIZES, "activation": "sigmoid", "cost": "quadratic", "models": models}
    (run / "summary.json").write_text(json.dumps(summary))
    (run / ".hydra" / "config.yaml").write_text(f"model:\n  init: lecun\ndata:\n  idx_dir: null\n  data_dir: {tmp_path / 'tfds'}\n")
    return run, nets


def test_a_run_reads_the_idx_folder_it_was_trained_on(run_dir, tmp_path, monkeypatch):
    # $MNIST_IDX_DIR is only the fallback: a run trained with data.idx_dir=… gets those files where they exist here.
    from mlpjax import rundir

    run, _ = run_dir
    calls = []
    monkeypatch.setattr("mlpjax.data.load_mnist", lambda idx_dir, data_dir: calls.append(idx_dir) or fake_mnist())
    monkeypatch.setenv("MNIST_IDX_DIR", "/the/env/dir")
    config = run / ".hydra" / "config.yaml"
    for recorded, expected in [(tmp_path, str(tmp_path)), (tmp_path / "elsewhere", "/the/env/dir"), ("null", "/the/env/dir")]:
        config.write_text(f"data:\n  idx_dir: {recorded}\n  data_dir: {tmp_path / 'tfds'}\n")
        rundir.load_data(rundir.load_run(str(run)))
        assert calls.pop() == expected, recorded


def test_command_all_writes_every_figure_and_its_numbers(run_dir, tmp_path, monkeypatch, capsys):
    run, nets = run_dir
    calls = []

    def load(idx_dir, data_dir):
        calls.append((idx_dir, data_dir))
        return fake_mnist()

    monkeypatch.setattr("mlpjax.data.load_mnist", load)
    monkeypatch.setenv("MNIST_IDX_DIR", "/the/idx/dir")
    out = tmp_path / "out"
    assert series.main(["all", str(run), "--out", str(out)]) == 0
    # The data is read once, from $MNIST_IDX_DIR, prepared where the run's config says.
    assert calls == [("/the/idx/dir", str(tmp_path / "tfds"))]
    for what in series.WHATS:
        assert (out / f"{what}.png").stat().st_size > 1000
    numbers = {what: json.loads((out / f"{what}.json").read_text()) for what in series.WHATS}
    assert numbers["noise"]["network"] == 1  # the best test accuracy
    assert sum(numbers["noise"]["noise"]["class_fractions"]) == pytest.approx(1.0)
    assert numbers["noise"]["digits"]["n"] == 60
    assert numbers["weights"]["runs"][0]["hidden"] == 5
    # The init is re-created from network 1's seed; the end is its saved parameters.
    mnist = fake_mnist()
    y = jax.nn.one_hot(mnist.labels_train_N, 10)
    # Expected: the median |∂C/∂w| by plain jax.grad in float64. The command's float32 gradient
    # sums 120 examples (<~ 120·eps ≈ 1.4e-5 of the terms' sizes, eps = 1.2e-7); the median moves
    # by no more than its entries do. rel 1e-4; the init and the final network's medians differ
    # by far more (checked).
    medians = {}
    for stage, params in [("init", model.init_params(jax.random.key(SEEDS[1]), SIZES, "lecun")), ("final", nets[1])]:
        with jax.enable_x64(True):
            as64 = lambda a: jnp.asarray(a, jnp.float64)
            grads = problems.grad_C(jax.tree.map(as64, params), as64(mnist.x_train_NxD), as64(y))
            g_P = np.abs(np.asarray(ravel_pytree(grads)[0]))  # in the context: outside, JAX would cast to float32
        assert g_P.dtype == np.float64
        medians[stage] = float(np.median(g_P))
        assert numbers["gradients"][stage]["median"] == pytest.approx(medians[stage], rel=1e-4)
        assert numbers["gradients"][stage]["zero_fraction"] == 28 * 5 / model.count_for_sizes(SIZES)  # the black top row
    assert medians["init"] != pytest.approx(medians["final"], rel=1e-2)
    assert len(numbers["dream"]["target"]) == 10
    printed = capsys.readouterr().out
    assert "== dream" in printed and "max / median" in printed


def test_command_network_choice_and_one_line_errors(run_dir, tmp_path, capsys):
    run, _ = run_dir
    out = tmp_path / "out"
    assert series.main(["dream", str(run), "--network", "0", "--out", str(out)]) == 0
    assert json.loads((out / "dream.json").read_text())["network"] == 0
    capsys.readouterr()
    bad = [
        ["noise", str(tmp_path / "nowhere")],
        ["weights", str(tmp_path / "nowhere")],
        ["dream", str(run), "--network", "2"],
        ["paint", str(run)],
        ["dream", str(run), str(run)],  # a second run only for weights
        ["dream", str(tmp_path)],  # a dir without summary.json
    ]
    for argv in bad:
        assert series.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, (argv, err)
    os.remove(run / ".hydra" / "config.yaml")  # gradients needs model.init from it
    assert series.main(["gradients", str(run)]) == 2
    assert "config.yaml: missing" in capsys.readouterr().err


def test_weights_of_two_runs_and_python_dash_m(run_dir, tmp_path):
    run, _ = run_dir
    out = tmp_path / "out"
    assert series.main(["weights", str(run), str(run), "--out", str(out)]) == 0
    assert len(json.loads((out / "weights.json").read_text())["runs"]) == 2
    # The command itself, `python -m mlpjax.series`: main's exit code and its one line reach the shell.
    p = subprocess.run(
        [sys.executable, "-m", "mlpjax.series", "weights", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        env=os.environ | {"JAX_PLATFORMS": "cpu"},
        timeout=120,
    )
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and p.stderr.startswith("error: "), p.stderr


def test_init_is_recreated_as_training_drew_it():
    # `gradients` rebuilds the init with `model.init_params(key(seed))`; training draws each network of
    # its group with the same compiled program (fit.init_group), so the two agree bit for bit.
    from mlpjax import fit

    spec = fit.Spec(sizes=tuple(SIZES), activation="sigmoid", cost="quadratic", batch_size=10, n_train=100)
    group = fit.init_group(spec, "lecun", np.array(SEEDS), np.ones(2))
    for g, seed in enumerate(SEEDS):
        again = model.init_params(jax.random.key(seed), SIZES, "lecun")
        for (W, b), (W2, b2) in zip(checkpoint.network(group.params, g), again):
            np.testing.assert_array_equal(W, W2)
            np.testing.assert_array_equal(b, b2)
    # Seeds are not interchangeable: the other seed's draw is another network.
    assert not np.allclose(checkpoint.network(group.params, 0)[0][0], model.init_params(jax.random.key(SEEDS[1]), SIZES, "lecun")[0][0])
