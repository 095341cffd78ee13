"""The sweep report on a hand-made sweep dir, its command line, and `landscape.analyze_group`."""

import csv
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from mlpjax import cost, landscape, report

LRS = [0.1, 1.0]
SEEDS = [0, 1, 2]


def write_job(job_dir, activation, hidden, batch_size, *, epochs=2, summary=True, diverged=(), minima=False, error=None, log=None):
    """One job folder as `mlpjax.train` leaves it: .hydra/, metrics.jsonl, summary.json (optional)."""
    os.makedirs(job_dir / ".hydra")
    cfg = {
        "model": {"hidden": list(hidden), "activation": activation, "init": "lecun", "cost": "quadratic"},
        "optim": {"lr": LRS, "momentum": 0.0},
        "data": {"batch_size": batch_size, "idx_dir": "${oc.env:MNIST_IDX_DIR,null}", "data_dir": "/tmp/x"},
        "train": {"epochs": epochs, "seeds": len(SEEDS), "shuffle": "shared", "max_group": 0, "diverge_norm": 1e4},
        "seed": 0,
    }
    (job_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    overrides = [f"model.activation={activation}", f"model.hidden=[{','.join(map(str, hidden))}]", f"data.batch_size={batch_size}"]
    (job_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    members = [(lr, s) for lr in LRS for s in SEEDS]
    base = 0.9 if activation == "relu" else 0.8
    acc = lambda g, e: base + 0.01 * g * e / epochs
    with open(job_dir / "metrics.jsonl", "w") as f:
        for e in range(1, epochs + 1):
            rec = {
                "epoch": e,
                "test_accuracy": [acc(g, e) for g in range(len(members))],
                "train_cost": [0.2 - 0.01 * g for g in range(len(members))],
                "diverged": [g in diverged for g in range(len(members))],
            }
            f.write(json.dumps(rec) + "\n")
    if log:
        (job_dir / "train.log").write_text(log)
    if error:
        (job_dir / "error.txt").write_text(error + "\n")
    if not summary:
        return
    models = []
    for g, (lr, s) in enumerate(members):
        m = {"seed": s, "learning_rate": lr, "test_accuracy": acc(g, epochs), "test_cost": 0.1, "train_cost": 0.2 - 0.01 * g,
             "train_accuracy": 0.9, "diverged": g in diverged, "diverged_epoch": 2 if g in diverged else None}
        if minima:
            m["minima"] = {"skipped": "diverged"} if g in diverged else {"sharpness": 10.0 + g, "sharpness_lr": (10.0 + g) * lr,
                                                                         "init_barrier": 0.0, "seed_barrier": 0.01 * g}
        models.append(m)
    sizes = [784, *hidden, 10]
    summary_d = {"param_count": 1, "sizes": sizes, "activation": activation, "cost": "quadratic", "batch_size": batch_size,
                 "epochs": epochs, "networks": len(models), "wall_seconds": 3.0, "epoch_seconds": 1.0, "models": models}
    (job_dir / "summary.json").write_text(json.dumps(summary_d))


@pytest.fixture
def sweep(tmp_path):
    """2 activations × 2 configs = 4 jobs: job 3 failed without a summary, job 1 has a diverged network."""
    root = tmp_path / "sweep"
    root.mkdir()
    (root / "multirun.yaml").write_text("hydra: {}\n")
    write_job(root / "0", "sigmoid", [16, 16], 10, minima=True)
    write_job(root / "1", "sigmoid", [32], "full", diverged={4}, minima=True)  # lr 1.0, seed 1
    write_job(root / "2", "relu", [16, 16], 10)
    write_job(root / "3", "relu", [32], "full", epochs=2, summary=False, log="step 1\nKilled: out of memory\n")
    os.remove(root / "3" / "metrics.jsonl")
    (root / "3" / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "test_accuracy": [0.5] * 6, "diverged": [False] * 6}) + "\n{\"epoch\": 2, \"tes")
    return root


def test_report_from_a_hand_made_sweep(sweep, capsys):
    out = report.report(str(sweep))
    printed = capsys.readouterr().out

    # csv: one row per (activation, hidden, batch, lr); the failed job as rows too.
    with open(sweep / "report.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * len(LRS)
    key = lambda r: (r["activation"], r["hidden"], r["batch_size"], float(r["learning_rate"]))
    by = {key(r): r for r in rows}
    # Sorted: activation, then parameter count, then batch size, then learning rate.
    assert [key(r) for r in rows] == sorted(by, key=lambda k: (k[0], 0 if k[1] == "[16,16]" else 1, k[3]))

    ok = by[("sigmoid", "[16,16]", "10", 0.1)]
    assert ok["status"] == "ok" and ok["seeds"] == "3"
    accs = [0.8 + 0.01 * g for g in range(3)]
    assert float(ok["test_acc_mean"]) == pytest.approx(np.mean(accs))
    assert float(ok["test_acc_std"]) == pytest.approx(np.std(accs, ddof=1))
    assert float(ok["train_cost_mean"]) == pytest.approx(np.mean([0.2, 0.19, 0.18]))
    assert (ok["best_seed"], ok["worst_seed"]) == ("2", "0")
    assert float(ok["diverged_frac"]) == 0.0
    assert float(ok["sharpness"]) == pytest.approx(11.0)  # mean of 10, 11, 12

    # The diverged network (lr 1.0, seed 1) counts in the fraction, not in the means.
    div = by[("sigmoid", "[32]", "full", 1.0)]
    assert float(div["diverged_frac"]) == pytest.approx(1 / 3)
    assert div["diverged"] == "1" and div["seeds"] == "3"
    assert float(div["test_acc_mean"]) == pytest.approx(np.mean([0.8 + 0.01 * 3, 0.8 + 0.01 * 5]))
    assert float(div["sharpness"]) == pytest.approx(np.mean([13.0, 15.0]))
    assert float(by[("sigmoid", "[32]", "full", 0.1)]["diverged_frac"]) == 0.0

    # Jobs without minima leave the columns empty; the failed job is there, marked, with why.
    assert by[("relu", "[16,16]", "10", 0.1)]["sharpness"] == ""
    failed = [r for r in rows if r["status"] == "failed"]
    assert [key(r) for r in failed] == [("relu", "[32]", "full", lr) for lr in LRS]
    assert all(r["jobs"] == "3" and "no summary.json" in r["error"] and "epoch 1 of 2" in r["error"] for r in failed)

    md = (sweep / "report.md").read_text()
    assert "| activation | hidden | batch |" in md and "FAILED" in md
    assert "## Failed jobs" in md and "**3**" in md and "Killed: out of memory" in md
    assert "| sigmoid | [32] | full | 1 | 3 |" in md and "| 1/3 |" in md
    assert "sharpness" in md
    assert "| activation | hidden | batch |" in printed and "FAILED job 3" in printed

    pngs = sorted(p for p in os.listdir(sweep) if p.endswith(".png"))
    assert len(pngs) >= 2 and {"accuracy_vs_lr.png", "learning_curves.png", "cost_spread.png", "sharpness_vs_lr.png"} <= set(pngs)
    assert all((sweep / p).stat().st_size > 1000 for p in pngs)
    assert len(out["jobs"]) == 4


def test_report_without_minima_and_with_error_txt(tmp_path, capsys):
    root = tmp_path / "s"
    write_job(root / "0", "relu", [16], 32)
    write_job(root / "1", "relu", [16], 128, error="DataError: bad IDX file")  # a job that failed in train(): error.txt
    report.report(str(root))
    rows = list(csv.DictReader(open(root / "report.csv")))
    assert "sharpness" not in rows[0]
    assert {r["batch_size"]: r["status"] for r in rows} == {"32": "ok", "128": "failed"}
    assert "DataError: bad IDX file" in [r for r in rows if r["status"] == "failed"][0]["error"]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mlpjax.report", *args], capture_output=True, text=True, timeout=120)


def test_cli_errors_are_one_line(tmp_path):
    for args, what in [((str(tmp_path / "nope"),), "no such directory"), ((str(tmp_path),), "no job folders")]:
        p = run_cli(*args)
        assert p.returncode == 2
        assert p.stderr.count("\n") == 1 and p.stderr.startswith("error: ") and what in p.stderr
        assert "Traceback" not in p.stderr
    p = run_cli()
    assert p.returncode == 2 and "usage" in p.stderr


def test_cli_writes_the_report(sweep):
    p = run_cli(str(sweep))
    assert p.returncode == 0, p.stderr
    assert "| relu | [16,16] | 10 |" in p.stdout
    assert (sweep / "report.md").exists() and (sweep / "report.csv").exists()


def test_callback_reports_the_sweep_dir(sweep):
    from omegaconf import OmegaConf

    report.ReportCallback().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    assert (sweep / "report.md").exists()
    # A bad dir: one line, and the sweep is not failed by the callback.
    report.ReportCallback().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep / "none")}}}))


# --------------------------------------------------------------------------- analyze_group


def tiny_group(activation, G=4, sizes=(8, 6, 5, 3), n=64):
    """G stacked random networks (LeCun-scaled) and a copy moved a little, as "init" and "final".

    Drawn with NumPy: eager JAX ops would each compile, which costs more than the test.
    """
    rng = np.random.default_rng(0)
    init = [(rng.normal(size=(G, o, i)) / np.sqrt(i), np.zeros((G, o))) for i, o in zip(sizes[:-1], sizes[1:])]
    final = [(W + 0.3 * rng.normal(size=W.shape), b + 0.3 * rng.normal(size=b.shape)) for W, b in init]
    as_jax = lambda p: [(jnp.asarray(W, jnp.float32), jnp.asarray(b, jnp.float32)) for W, b in p]
    x = rng.uniform(size=(n, sizes[0])).astype(np.float32)
    y = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], n)]
    return as_jax(init), as_jax(final), x, y


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_analyze_group_on_a_tiny_net(activation):
    init, final, x, y = tiny_group(activation)
    members = [{"seed": 0, "learning_rate": 0.5}, {"seed": 1, "learning_rate": 0.5, "diverged": True},
               {"seed": 2, "learning_rate": 0.5}, {"seed": 0, "learning_rate": 2.0}]
    out = landscape.analyze_group(init, final, members, x, y, activation, "quadratic", jax.random.key(0), n_examples=50, lanczos_steps=200)
    assert len(out) == 4
    assert out[1] == {"skipped": "diverged"}
    kind = "saturated" if activation == "sigmoid" else "dead"
    net = lambda p, g: [(W[g], b[g]) for W, b in p]
    # The same fixed subset of 50 rows that analyze_group draws.
    rows = np.sort(np.random.default_rng(0).choice(64, 50, replace=False))
    xs, ys = x[rows], y[rows]
    # Sharpness and λ_min: the ends of the dense Hessian's spectrum on the subset (Lanczos with
    # as many steps as parameters is exact). One network: each dense Hessian compiles anew.
    eig = np.linalg.eigvalsh(landscape.hessian(net(final, 0), xs, ys, activation).astype(np.float64))
    assert out[0]["sharpness"] == pytest.approx(eig[-1], rel=1e-3)
    assert out[0]["min_eigenvalue"] == pytest.approx(eig[0], rel=1e-3, abs=1e-4 * eig[-1])
    for g in (0, 2, 3):
        m = out[g]
        assert m["min_eigenvalue"] <= m["sharpness"] and m["sharpness"] > 0.0
        assert m["sharpness_lr"] == pytest.approx(m["sharpness"] * members[g]["learning_rate"])
        assert 0.0 <= m[f"{kind}_units"] <= 1.0 and 0.0 <= m[f"{kind}_pairs"] <= 1.0
        assert m["init_barrier"] >= 0.0
        assert m["cost_subset"] == pytest.approx(float(cost.network_cost(net(final, g), xs, ys, activation)), rel=1e-5)
    # Seed barriers pair the survivors of lr 0.5 (seeds 0 and 2); lr 2.0 has one network: none.
    assert out[0]["seed_barrier_to"] == 2 and out[2]["seed_barrier_to"] == 0
    assert out[0]["seed_barrier"] == out[2]["seed_barrier"] >= 0.0
    path = landscape.interpolate(net(final, 0), net(final, 2), xs, ys, activation, alphas_A=jnp.linspace(0, 1, 11))
    assert out[0]["seed_barrier"] == pytest.approx(landscape.barrier(path, np.linspace(0, 1, 11)), abs=1e-6)
    assert "seed_barrier" not in out[3]


def test_analyze_group_sharpness_is_the_top_eigenvalue_with_few_steps():
    # 20 Lanczos steps on 107 parameters: the top Ritz value is already close to the top eigenvalue.
    init, final, x, y = tiny_group("sigmoid", G=1)
    out = landscape.analyze_group(init, final, [{"seed": 0, "learning_rate": 1.0}], x, y, "sigmoid", n_examples=50, lanczos_steps=20)
    rows = np.sort(np.random.default_rng(0).choice(64, 50, replace=False))
    eig = np.linalg.eigvalsh(landscape.hessian([(W[0], b[0]) for W, b in final], x[rows], y[rows]).astype(np.float64))
    assert out[0]["sharpness"] == pytest.approx(eig[-1], rel=0.02)
    assert out[0]["sharpness"] <= eig[-1] * (1 + 1e-4)  # Ritz values lie inside the spectrum


def test_analyze_group_barrier_is_zero_when_final_equals_init():
    init, _, x, y = tiny_group("sigmoid", G=2)
    out = landscape.analyze_group(init, init, [{"seed": 0, "learning_rate": 1.0}, {"seed": 1, "learning_rate": 1.0}], x, y, "sigmoid",
                                   n_examples=50, lanczos_steps=200)  # the shapes of the test above: compiled already
    assert out[0]["init_barrier"] == pytest.approx(0.0, abs=1e-6)
