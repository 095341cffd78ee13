"""`python -m mlpjax.train` end to end: outputs, overrides, one-line errors."""

import json

import pytest

from mlpjax import checkpoint, cli


def test_overrides_end_to_end(run_train, tmp_path):
    out = tmp_path / "run"
    r = run_train(
        "model.activation=relu",
        "optim.lr=0.1",
        "model.hidden=[32]",
        "data.batch_size=32",
        "train.epochs=2",
        "seed=3",
        f"hydra.run.dir={out}",
    )
    assert r.returncode == 0, r.stderr
    assert "784-32-10 relu network, 25,450 parameters" in r.stdout
    assert "Traceback" not in r.stderr
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == [1, 2]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["param_count"] == 25_450 and summary["epochs"] == 2
    assert summary["wall_seconds"] > 0 and summary["epoch_seconds"] > 0
    (m,) = summary["models"]
    assert m["seed"] == 3 and m["learning_rate"] == 0.1
    assert m["test_accuracy"] > 0.8
    assert m["test_accuracy"] == lines[-1]["test_accuracy"][0]
    assert "activation: relu" in (out / ".hydra" / "config.yaml").read_text()
    params = checkpoint.load_params(str(out / "params"))
    assert [(W.shape, b.shape) for W, b in params] == [((1, 32, 784), (1, 32)), ((1, 10, 32), (1, 10))]
    assert all(isinstance(layer, tuple) for layer in params)


def test_full_batch_gradient_descent_runs(train_here, tmp_path, capsys):
    summary = train_here(tmp_path, "data.batch_size=full", "train.epochs=2", "optim.lr=3")
    assert "mini-batch full" in capsys.readouterr().out
    assert summary["batch_size"] == "full"
    assert json.loads((tmp_path / "summary.json").read_text())["batch_size"] == "full"


@pytest.mark.parametrize(
    "override,expected",
    [
        ("model.activation=tanh", "model.activation='tanh': must be one of sigmoid, relu"),
        ("model.cost=hinge", "model.cost='hinge': must be one of quadratic, cross_entropy"),
        ("model.init=xavier", "model.init='xavier': must be one of normal, lecun, glorot, he"),
        ("optim.lr=0", "optim.lr=0: must be a number > 0"),
        ("optim.lr=-1", "optim.lr=-1: must be a number > 0"),
        ("optim.lr=fast", "optim.lr='fast': must be a number > 0"),
        ("data.batch_size=0", "data.batch_size=0: must be an integer >= 1, or full"),
        ("model.hidden=[16,0]", "model.hidden=[16, 0]: must be a list of layer sizes, each an integer >= 1"),
        ("train.epochs=0", "train.epochs=0: must be an integer >= 1"),
        ("nosuch.key=1", "unknown key 'nosuch.key'"),
        ("+nosuch=1", "unknown key 'nosuch'"),
        ("data.idx_dir=/no/such/dir", "data.idx_dir='/no/such/dir': must be an existing folder"),
    ],
)
def test_bad_override_is_one_line_naming_the_key(capsys, override, expected):
    # `mlpjax.train.main` runs `cli.preflight(argv)` before Hydra; the command line is tested below.
    with pytest.raises(SystemExit) as stop:
        cli.preflight([override, "train.epochs=1"])
    assert stop.value.code == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert out == ""


@pytest.mark.parametrize(
    "override,expected,process",
    [
        # Caught by the preflight, before Hydra and before any data is read (`mlpjax.train.main` in this process).
        ("model.activation=tanh", "model.activation='tanh': must be one of sigmoid, relu", False),
        # Caught once the data is loaded: the training set (here the small one, n examples) bounds the batch.
        # The real process: nothing else (a library's warning, a traceback) reaches stderr.
        ("data.batch_size={n_plus_1}", "data.batch_size={n_plus_1}: must be 'full' or an integer in 1..{n}", True),
    ],
)
def test_the_command_reports_bad_input_in_one_line(run_train, train_cli_here, small_mnist, tmp_path, override, expected, process):
    n = small_mnist.x_train_NxD.shape[0]
    override, expected = override.format(n_plus_1=n + 1), expected.format(n_plus_1=n + 1, n=n)
    r = (run_train if process else train_cli_here)(override, "train.epochs=1", f"hydra.run.dir={tmp_path}")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert not (tmp_path / "summary.json").exists()
