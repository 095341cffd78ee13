"""The sweep report on a hand-made sweep dir, its command line, and `landscape.analyze_group`."""

import csv
import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml
from jax.flatten_util import ravel_pytree

from mlpjax import cost, landscape, report

LRS = [0.1, 1.0]
SEEDS = [0, 1, 2]


def write_job(
    job_dir,
    activation,
    hidden,
    batch_size,
    *,
    epochs=2,
    summary=True,
    diverged=(),
    minima=False,
    error=None,
    log=None,
    lrs=LRS,
    seeds=SEEDS,
    test=None,
    validation=None,
    stationary=None,
    polish_tol=1e-3,
):
    """One job folder as `mlpjax.train` leaves it: .hydra/, metrics.jsonl, summary.json (optional).

    Network g is (lrs[g // len(seeds)], seeds[g % len(seeds)]). `test`, `validation`: g → its final
    accuracy (by default 0.9 + 0.01·g for ReLU, 0.8 + 0.01·g for sigmoid; validation: none held out);
    `minima`: True (sharpness 10 + g, …) or g → its `minima` dict; `stationary`: g → its
    `stationary` block (None: none), with `post.polish_tol` = `polish_tol`.
    """
    os.makedirs(job_dir / ".hydra")
    cfg = {
        "model": {"hidden": list(hidden), "activation": activation, "init": "lecun", "cost": "quadratic"},
        "optim": {"lr": list(lrs), "momentum": 0.0},
        "data": {"batch_size": batch_size, "idx_dir": "${oc.env:MNIST_IDX_DIR,null}", "data_dir": "/tmp/x"},
        "train": {"epochs": epochs, "seeds": len(seeds), "shuffle": "shared", "max_group": 0, "diverge_norm": 1e4},
        "seed": 0,
    }
    if validation:
        cfg["data"]["validation"] = 5000
    (job_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    overrides = [f"model.activation={activation}", f"model.hidden=[{','.join(map(str, hidden))}]", f"data.batch_size={batch_size}"]
    (job_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    members = [(lr, s) for lr in lrs for s in seeds]
    base = 0.9 if activation == "relu" else 0.8
    test = test or (lambda g: base + 0.01 * g)
    at_epoch = lambda final, e: final - 0.02 * (epochs - e)  # the accuracy rises to its final value
    splits = {"test": test} | ({"validation": validation} if validation else {})
    with open(job_dir / "metrics.jsonl", "w") as f:
        for e in range(1, epochs + 1):
            rec = {
                "epoch": e,
                "train_cost": [0.2 - 0.01 * g for g in range(len(members))],
                "diverged": [g in diverged for g in range(len(members))],
            }
            rec |= {f"{name}_accuracy": [at_epoch(final(g), e) for g in range(len(members))] for name, final in splits.items()}
            f.write(json.dumps(rec) + "\n")
    if log:
        (job_dir / "train.log").write_text(log)
    if error:
        (job_dir / "error.txt").write_text(error + "\n")
    if not summary:
        return
    models = []
    for g, (lr, s) in enumerate(members):
        m = {
            "seed": s,
            "learning_rate": lr,
            "test_accuracy": test(g),
            "test_cost": 0.1,
            "train_cost": 0.2 - 0.01 * g,
            "train_accuracy": 0.9,
            "diverged": g in diverged,
            "diverged_epoch": 2 if g in diverged else None,
        }
        if validation:
            m |= {"validation_accuracy": validation(g), "validation_cost": 0.11}
        if stationary and g not in diverged and stationary(g) is not None:
            m["stationary"] = stationary(g)
        if callable(minima):
            m["minima"] = minima(g)
        elif minima:
            m["minima"] = (
                {"skipped": "diverged"}
                if g in diverged
                else {"sharpness": 10.0 + g, "sharpness_lr": (10.0 + g) * lr, "init_barrier": 0.0, "seed_barrier": 0.01 * g}
            )
        models.append(m)
    sizes = [784, *hidden, 10]
    summary_d = {
        "param_count": 1,
        "sizes": sizes,
        "activation": activation,
        "cost": "quadratic",
        "batch_size": batch_size,
        "epochs": epochs,
        "validation": 5000 if validation else 0,
        "networks": len(models),
        "wall_seconds": 3.0,
        "epoch_seconds": 1.0,
        "models": models,
    }
    if stationary:
        summary_d["post"] = {"analyze": bool(minima), "polish": 100, "polish_tol": polish_tol}
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
    (root / "3" / "metrics.jsonl").write_text(
        json.dumps({"epoch": 1, "test_accuracy": [0.5] * 6, "diverged": [False] * 6}) + '\n{"epoch": 2, "tes'
    )
    return root


@pytest.fixture
def without_figures(monkeypatch):
    """`report.report` without drawing its figures (about 3 s a report on 2 cores), for the tests of its
    tables, of the command line and of the callback: the figures are checked on the hand-made sweep."""
    monkeypatch.setattr(report, "plot_all", lambda root, sweep: ([], {}))


def test_report_from_a_hand_made_sweep(sweep, capsys):
    import matplotlib.image

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

    # report.csv writes 6 significant digits (%.6g): relative rounding <= 5e-6. rel 1e-5 below.
    approx = lambda v: pytest.approx(v, rel=1e-5)
    ok = by[("sigmoid", "[16,16]", "10", 0.1)]
    assert ok["status"] == "ok" and ok["seeds"] == "3"
    accs = [0.8 + 0.01 * g for g in range(3)]
    assert float(ok["test_acc_mean"]) == approx(np.mean(accs))
    assert float(ok["test_acc_std"]) == approx(np.std(accs, ddof=1))
    assert float(ok["train_cost_mean"]) == approx(np.mean([0.2, 0.19, 0.18]))
    assert (ok["best_seed"], ok["worst_seed"]) == ("2", "0")
    assert float(ok["diverged_frac"]) == 0.0
    assert float(ok["sharpness"]) == approx(11.0)  # mean of 10, 11, 12

    # The diverged network (lr 1.0, seed 1) counts in the fraction, not in the means.
    div = by[("sigmoid", "[32]", "full", 1.0)]
    assert float(div["diverged_frac"]) == approx(1 / 3)
    assert div["diverged"] == "1" and div["seeds"] == "3"
    assert float(div["test_acc_mean"]) == approx(np.mean([0.8 + 0.01 * 3, 0.8 + 0.01 * 5]))
    assert float(div["sharpness"]) == approx(np.mean([13.0, 15.0]))
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

    # Each figure's legend names what it draws, and nothing else.
    legends = out["legends"]
    assert set(legends) == set(out["pngs"]) == set(report.PLOTS)
    acc = legends["accuracy_vs_lr.png"]
    assert {"sigmoid", "relu", "median over seeds", "diverged (bottom edge)", "failed job (top edge)"} <= set(acc)
    assert not [label for label in acc if label.startswith("at chance")]
    assert "relu" not in legends["sharpness_vs_lr.png"]  # the ReLU jobs have no minima
    assert "sharpness ≤ 0 (bottom edge)" not in legends["sharpness_vs_lr.png"]
    assert {"batch 10", "batch full"} <= set(legends["sharpness_vs_cost.png"])
    # 150 dpi: 2 hidden × 2 batch panels are an 8 × 6.2 inch figure.
    assert matplotlib.image.imread(sweep / "accuracy_vs_lr.png").shape[:2] == (930, 1200)


def test_report_without_minima_and_with_error_txt(tmp_path, capsys):
    root = tmp_path / "s"
    write_job(root / "0", "relu", [16], 32)
    write_job(root / "1", "relu", [16], 128, error="DataError: bad IDX file")  # a job that failed in train(): error.txt
    report.report(str(root))
    rows = list(csv.DictReader(open(root / "report.csv")))
    assert "sharpness" not in rows[0]
    assert {r["batch_size"]: r["status"] for r in rows} == {"32": "ok", "128": "failed"}
    assert "DataError: bad IDX file" in [r for r in rows if r["status"] == "failed"][0]["error"]
    # A sweep from before validation, the polish and the minima: the sections it can have, no others.
    assert not {"val_acc_mean", "candidates_polished", "checked_sgd"} & set(rows[0])
    md = (root / "report.md").read_text()
    assert "## Selected on test (no validation split: chosen on test)" in md and "## All configurations" in md
    assert "## End points checked in float32" not in md and "## Sigmoid − ReLU" not in md and not (root / "differences.csv").exists()
    assert len(read_csv(root / "networks.csv")) == 6
    assert {p for p in os.listdir(root) if p.endswith(".png")} == {"accuracy_vs_lr.png", "learning_curves.png", "cost_spread.png"}


def test_cli_errors_are_one_line(tmp_path, capsys):
    # `python -m mlpjax.report` is `sys.exit(main())`; the command itself runs below.
    for argv, what in [([str(tmp_path / "nope")], "no such directory"), ([str(tmp_path)], "no job folders")]:
        assert report.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and what in err
    assert report.main([]) == 2 and "usage" in capsys.readouterr().err
    assert report.main(["--help"]) == 0 and "usage" in capsys.readouterr().out


def test_cli_writes_the_report(sweep, capsys, without_figures):
    assert report.main([str(sweep)]) == 0
    assert "| relu | [16,16] | 10 |" in capsys.readouterr().out
    assert (sweep / "report.md").exists() and (sweep / "report.csv").exists()
    # The command itself, `python -m mlpjax.report`: main's exit code and its one line reach the shell.
    p = subprocess.run([sys.executable, "-m", "mlpjax.report", str(sweep / "nope")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "no such directory" in p.stderr, p.stderr


def test_callback_reports_the_sweep_dir(sweep, capsys, without_figures):
    from omegaconf import OmegaConf

    report.ReportCallback().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    assert (sweep / "report.md").exists()
    capsys.readouterr()
    # A bad dir: one line, and the sweep is not failed by the callback (nothing raised).
    report.ReportCallback().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep / "none")}}}))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"report: could not write the report for {sweep / 'none'}: ")
    assert not (sweep / "none").exists()


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def from_csv(v):
    """A value as report's CSVs write it: 6 significant digits (%.6g), relative rounding <= 5e-6."""
    return pytest.approx(v, rel=1e-5)


def md_section(md, title):
    """The text of report.md's section `## title`, up to the next section."""
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_every_choice_is_made_on_validation(tmp_path, without_figures):
    # On validation, batch 32 at η = 1 is best and seed 1 is best in every configuration; on test,
    # batch 10 at η = 0.1 and seed 0. The report must follow validation, and read test only after.
    v10, t10 = lambda g: 0.90 + 0.01 * (g % 3 == 1), lambda g: 0.95 + 0.02 * (g < 3) + 0.01 * (g % 3 == 0)
    v32, t32 = lambda g: 0.93 + 0.02 * (g >= 3) + 0.01 * (g % 3 == 1), lambda g: 0.92 + 0.01 * (g % 3 == 0)
    for name, held_out in (("val", True), ("noval", False)):
        write_job(tmp_path / name / "0", "sigmoid", [16], 10, test=t10, validation=v10 if held_out else None)
        write_job(tmp_path / name / "1", "sigmoid", [16], 32, test=t32, validation=v32 if held_out else None)
    out = report.report(str(tmp_path / "val"), quiet=True)
    pick = lambda split: (lambda r: (r["batch_size"], r["learning_rate"]))(report.select_best(out["rows"], split))
    assert pick("validation") == (32, 1.0) and pick("test") == (10, 0.1)  # they disagree

    md = (tmp_path / "val" / "report.md").read_text()
    chosen = md_section(md, "Selected on validation")
    # Validation mean ± std of seeds 0–2 at (32, 1): 95, 96, 95; then their test accuracy: 93, 92, 92.
    assert "| sigmoid | [16] | 32, 1 | 3/3 | 95.33 ± 0.58 | 92.33 ± 0.58 (92.00–93.00) | 0.1600 ± 0.0100 |" in chosen
    assert "10, 0.1" not in chosen and "no validation split" not in md
    rows = read_csv(tmp_path / "val" / "report.csv")
    assert len(rows) == 4 and {(r["best_seed"], r["worst_seed"], r["selected_on"]) for r in rows} == {("1", "2", "validation")}
    best = [r for r in rows if (r["batch_size"], r["learning_rate"]) == ("32", "1")][0]
    assert (float(best["best_val_acc"]), float(best["best_acc"])) == (from_csv(0.96), from_csv(0.92))
    assert float(best["val_acc_mean"]) == from_csv(np.mean([0.95, 0.96, 0.95]))

    # Without a validation split: chosen on test, and said so.
    report.report(str(tmp_path / "noval"), quiet=True)
    md = (tmp_path / "noval" / "report.md").read_text()
    assert "| sigmoid | [16] | 10, 0.1 | 3/3 | 97.33 ± 0.58 (97.00–98.00) |" in md_section(
        md, "Selected on test (no validation split: chosen on test)"
    )
    rows = read_csv(tmp_path / "noval" / "report.csv")
    assert {(r["best_seed"], r["selected_on"]) for r in rows} == {("0", "test")} and "val_acc_mean" not in rows[0]


def test_a_configuration_where_a_network_diverged_is_chosen_last():
    # Its mean leaves the diverged network out, which flatters it: chosen only when every one has one.
    rows = [
        {"val_acc_mean": 0.97, "test_acc_mean": 0.99, "diverged": 1},
        {"val_acc_mean": 0.95, "test_acc_mean": 0.90, "diverged": 0},
        {"val_acc_mean": 0.96, "test_acc_mean": 0.95, "diverged": 0},
        {"val_acc_mean": float("nan"), "test_acc_mean": 0.98, "diverged": 0},
    ]
    assert report.select_best(rows, "validation") is rows[2]
    assert report.select_best(rows, "test") is rows[3]
    assert report.select_best(rows[:2], "test") is rows[1] and report.select_best(rows[:1], "validation") is rows[0]
    assert report.select_best(rows[3:], "validation") is None


def stationary_points(g):
    """After SGD every network still descends; after the polish network g is, by g mod 3, a candidate
    (λ_min ≥ −tol·λ_max for tol 1e-3, not for 1e-4), of negative curvature, or still descending."""
    polished = [
        {"grad_norm": 1e-4, "lambda_max": 1.0, "lambda_min": -5e-4},
        {"grad_norm": 5e-4, "lambda_max": 1.0, "lambda_min": -0.1},
        {"grad_norm": 0.01, "lambda_max": 1.0, "lambda_min": 0.2},
    ][g % 3]
    return {
        "sgd": {"grad_norm": 0.05 + 0.01 * g, "lambda_max": 2.0, "lambda_min": -0.5},
        "polished": polished | {"steps": 10 + g, "train_cost": 0.05, "train_accuracy": 0.97, "test_cost": 0.1, "test_accuracy": 0.9},
    }


def test_candidates_negative_curvature_and_descending_are_counted(tmp_path, without_figures):
    write_job(tmp_path / "0", "sigmoid", [16], 10, diverged={4}, stationary=stationary_points, polish_tol=1e-3)
    write_job(tmp_path / "1", "sigmoid", [32], 10, stationary=stationary_points, polish_tol=1e-4)  # the job's own tol
    write_job(tmp_path / "2", "sigmoid", [64], 10)  # an older job: nothing checked
    report.report(str(tmp_path), quiet=True)
    rows = {(r["hidden"], r["learning_rate"]): r for r in read_csv(tmp_path / "report.csv")}
    counts = lambda r, when: tuple(int(r[f"{c}_{when}"]) for c in ("checked", "candidates", "negative_curvature", "descending"))
    assert counts(rows[("[16]", "0.1")], "polished") == (3, 1, 1, 1)
    assert counts(rows[("[16]", "0.1")], "sgd") == (3, 0, 0, 3)
    assert counts(rows[("[16]", "1")], "polished") == (2, 1, 0, 1)  # seed 1 diverged: not checked
    assert counts(rows[("[32]", "0.1")], "polished") == (3, 0, 1, 2)  # tol 1e-4
    assert counts(rows[("[64]", "0.1")], "polished") == (0, 0, 0, 0)
    r = rows[("[16]", "0.1")]
    assert float(r["grad_norm_sgd_median"]) == from_csv(0.06) and float(r["lambda_min_sgd_median"]) == -0.5
    assert float(r["grad_norm_polished_median"]) == from_csv(5e-4) and float(r["lambda_ratio_polished_median"]) == from_csv(-5e-4)
    assert r["grad_norm_polished_median"] != rows[("[16]", "1")]["grad_norm_polished_median"]  # median of 1e-4 and 0.01

    md = (tmp_path / "report.md").read_text()
    section = md_section(md, "End points checked in float32 (not verified minima)")
    assert "| sigmoid | [16] | 10 | 0.1 | 3 | 0 / 0 / 3 | 0.06 | -0.25 | 1 / 1 / 1 | 0.0005 | -0.0005 |" in section
    assert "| sigmoid | [32] | 10 | 0.1 | 3 | 0 / 0 / 3 | 0.06 | -0.25 | 0 / 1 / 2 |" in section
    assert "[64]" not in section and "0.0001, 0.001" in section
    assert "| sigmoid | [16] | 10 | 1 | 3 |" in md_section(md, "All configurations") and "| 2/3 |" not in section


def test_networks_csv_has_one_row_per_network(sweep, without_figures):
    write_job(
        sweep / "4",
        "relu",
        [64],
        32,
        diverged={4},
        test=lambda g: 0.1 if g == 5 else 0.9 + 0.01 * g,
        validation=lambda g: 0.5 + 0.01 * g,
        stationary=stationary_points,
        minima=lambda g: (
            {"skipped": "diverged"} if g == 4 else {"sharpness": 10.0 + g, "seed_barrier": 0.01 * g, "seed_barrier_to": (g + 1) % 3}
        ),
    )
    report.report(str(sweep), quiet=True)
    assert "seed_barrier_to" not in read_csv(sweep / "report.csv")[0]  # a seed: no mean of it
    with open(sweep / "networks.csv") as f:
        header = next(csv.reader(f))
    assert len(header) == len(set(header)) and header[:2] == ["job", "activation"]
    nets = read_csv(sweep / "networks.csv")
    assert len(nets) == 4 * 6  # jobs 0, 1, 2, 4; the failed job 3 trained none
    assert sorted((n["job"], n["learning_rate"], n["seed"]) for n in nets) == sorted(
        (j, str(lr), str(s)) for j in "0124" for lr in (0.1, 1) for s in SEEDS
    )
    by = {(n["job"], n["learning_rate"], n["seed"]): n for n in nets}
    collapsed = by[("4", "1", "2")]  # network 5: at chance, not diverged
    assert (collapsed["activation"], collapsed["hidden"], collapsed["batch_size"]) == ("relu", "[64]", "32")
    assert float(collapsed["test_accuracy"]) == 0.1 and float(collapsed["validation_accuracy"]) == from_csv(0.55)
    assert (collapsed["at_chance"], collapsed["diverged"], collapsed["polished_kind"], collapsed["sgd_kind"]) == (
        "True",
        "False",
        "descending",
        "descending",
    )
    assert (float(collapsed["sharpness"]), float(collapsed["seed_barrier"]), collapsed["seed_barrier_to"]) == (15.0, 0.05, "0")
    assert collapsed["polished_steps"] == "15"
    diverged = by[("4", "1", "1")]
    assert (diverged["diverged"], diverged["at_chance"], diverged["polished_kind"], diverged["skipped"], diverged["sharpness"]) == (
        "True",
        "True",
        "",
        "diverged",
        "",
    )
    first = by[("4", "0.1", "0")]
    assert (first["polished_kind"], float(first["polished_grad_norm"]), float(first["sgd_grad_norm"])) == ("candidate", 1e-4, 0.05)
    assert (float(first["train_cost"]), float(first["polished_train_cost"]), first["at_chance"]) == (0.2, 0.05, "False")
    assert by[("1", "1", "1")]["diverged"] == "True" and by[("2", "1", "2")]["validation_accuracy"] == ""


# Two-sided 97.5% quantiles of Student's t (tables): 1 and 2 degrees of freedom.
T_975 = {1: 12.706204736174705, 2: 4.302652729749464}


def test_paired_difference_by_hand():
    a = {0: 1.0, 1: 2.0, 2: 4.0, 3: 7.0}
    b = {0: 0.5, 1: 1.0, 2: 2.0, 3: float("nan"), 5: 0.0}  # seed 3: no value, seed 5: no partner
    d = report.paired_difference(a, b)
    diffs = [0.5, 1.0, 2.0]
    assert d["n"] == 3 and d["pairs"] == [(0, 1.0, 0.5), (1, 2.0, 1.0), (2, 4.0, 2.0)]
    assert d["mean"] == pytest.approx(np.mean(diffs), rel=1e-12) and d["std"] == pytest.approx(np.std(diffs, ddof=1), rel=1e-12)
    # The paired t-interval: mean ± t(0.975, n−1)·s/√n.
    half = T_975[2] * np.std(diffs, ddof=1) / np.sqrt(3)
    assert (d["ci_low"], d["ci_high"]) == (pytest.approx(np.mean(diffs) - half, rel=1e-9), pytest.approx(np.mean(diffs) + half, rel=1e-9))
    # Sign flips of 3 positive differences: only all-plus and all-minus reach |mean| ≥ the observed, 2 of 8.
    assert d["p_signflip"] == pytest.approx(2 / 8) and not d["finding"] and np.isnan(d["bca_low"])
    assert report.paired_difference(a, b) == d  # deterministic
    one, none = report.paired_difference({0: 1.0}, {0: 0.25}), report.paired_difference({0: 1.0}, {1: 0.0})
    assert (one["n"], one["mean"], one["std"]) == (1, 0.75, 0.0) and np.isnan(one["ci_low"]) and np.isnan(one["ci_high"])
    assert none["n"] == 0 and np.isnan(none["mean"]) and none["pairs"] == []


def test_six_pairs_is_the_least_an_exact_sign_flip_can_call_a_finding():
    six = report.paired_difference(dict(enumerate([0.1, 0.3, 0.2, 0.5, 0.4, 0.6])), dict(enumerate([0.0] * 6)))
    five = report.paired_difference(dict(enumerate([0.1, 0.3, 0.2, 0.5, 0.4])), dict(enumerate([0.0] * 5)))
    assert six["p_signflip"] == pytest.approx(2 / 64) and six["finding"]
    assert five["p_signflip"] == pytest.approx(2 / 32) and not five["finding"]  # 0.0625: never below 0.05


def test_paired_difference_interval_shrinks_with_more_pairs():
    x = np.random.default_rng(3).normal(1.0, 1.0, 400)
    zeros = dict(enumerate(np.zeros(400)))
    few, many = (report.paired_difference(dict(enumerate(x[:n])), zeros) for n in (5, 400))
    assert few["n"] == 5 and many["n"] == 400
    assert few["ci_low"] < few["mean"] < few["ci_high"] and many["ci_low"] < many["mean"] < many["ci_high"]
    assert many["ci_high"] - many["ci_low"] < 0.3 * (few["ci_high"] - few["ci_low"])
    # With many pairs the t-interval and the BCa interval are both about mean ± 1.96 standard errors.
    se = np.std(x, ddof=1) / np.sqrt(400)
    assert many["mean"] == pytest.approx(x.mean(), rel=1e-12)
    for low, high in ((many["ci_low"], many["ci_high"]), (many["bca_low"], many["bca_high"])):
        assert (low, high) == (pytest.approx(x.mean() - 1.96 * se, abs=0.15 * se), pytest.approx(x.mean() + 1.96 * se, abs=0.15 * se))
    assert many["p_signflip"] < 1e-3 and many["p_t"] < 1e-10  # 10,000 random sign patterns past 16 pairs


def test_sigmoid_minus_relu_pairs_by_seed_and_says_what_it_dropped(tmp_path, without_figures):
    sig, relu = lambda g: 0.8 + 0.02 * g, lambda g: 0.1 if g == 2 else 0.9 + 0.01 * g  # ReLU η 0.1 seed 2: at chance
    write_job(tmp_path / "0", "sigmoid", [16], 10, test=sig, validation=lambda g: sig(g) - 0.01, minima=True)
    write_job(tmp_path / "1", "relu", [16], 10, test=relu, validation=lambda g: relu(g) + 0.01, minima=True, diverged={4})
    write_job(tmp_path / "2", "relu", [32], 10, validation=lambda g: 0.9)  # no sigmoid at [32]: no line
    out = report.report(str(tmp_path), quiet=True)
    assert len(out["differences"]) == 2
    rows = read_csv(tmp_path / "differences.csv")
    assert [(r["hidden"], r["batch_size"], r["learning_rate"]) for r in rows] == [("[16]", "10", "0.1"), ("[16]", "10", "1")]
    lo, hi = rows
    # η 0.1: seeds 0 and 1 (seed 2 dropped, at chance): test 0.80 − 0.90, 0.82 − 0.91; validation 0.79 − 0.91, 0.81 − 0.92.
    assert float(lo["test_accuracy_mean"]) == from_csv(-0.095) and (lo["test_accuracy_n"], lo["test_accuracy_dropped"]) == ("2", "1")
    assert float(lo["validation_accuracy_mean"]) == from_csv(-0.115) and lo["validation_accuracy_seeds"] == "0 1"
    assert (lo["train_cost_n"], lo["train_cost_dropped"], float(lo["train_cost_mean"])) == ("3", "0", 0.0)  # a cost at chance is a cost
    assert (lo["sharpness_n"], lo["sharpness_dropped"]) == ("2", "1")
    # η 1: seed 1 of ReLU diverged, dropped everywhere: seeds 0 and 2, 0.86 − 0.93, 0.90 − 0.95.
    assert float(hi["test_accuracy_mean"]) == from_csv(-0.06) and hi["test_accuracy_seeds"] == "0 2"
    assert (hi["train_cost_n"], hi["train_cost_dropped"]) == ("2", "1")
    assert float(hi["test_accuracy_std"]) == from_csv(np.std([-0.07, -0.05], ddof=1))
    section = md_section((tmp_path / "report.md").read_text(), "Sigmoid − ReLU at equal settings")
    # Two pairs each: mean ± t(0.975, 1)·s/√2, s = √2·0.005 (validation −0.12, −0.11; test −0.10, −0.09); sign-flip p 2/4.
    half = 100 * T_975[1] * 0.005
    val, test = f"-11.50 [{-11.5 - half:.2f}, {-11.5 + half:.2f}]", f"-9.50 [{-9.5 - half:.2f}, {-9.5 + half:.2f}]"
    tail = "(2 pairs, 1 dropped; p 0.5; n < 6: not a finding)"
    assert f"| [16] | 10 | 0.1 | {val} {tail} | {test} {tail} |" in section, section
    assert "[32]" not in section


def test_figures_legend_only_what_they_draw(tmp_path):
    # The hand-made sweep's legends: test_report_from_a_hand_made_sweep. Here a sweep with none of its marks.
    clean = tmp_path / "clean"
    write_job(
        clean / "0",
        "relu",
        [16],
        10,
        test=lambda g: 0.1 if g == 5 else 0.9,
        minima=lambda g: {"sharpness": -1e-3 if g == 0 else 1.0 + g, "seed_barrier": 0.1},
    )
    out = report.report(str(clean), quiet=True)
    acc = out["legends"]["accuracy_vs_lr.png"]
    assert "at chance (test < 20%), at its value" in acc
    assert not {"sigmoid", "diverged (bottom edge)", "failed job (top edge)"} & set(acc)
    assert "sharpness ≤ 0 (bottom edge)" in out["legends"]["sharpness_vs_lr.png"]
    assert "at chance (test < 20%)" in out["legends"]["cost_spread.png"]
    md = (clean / "report.md").read_text()
    assert "left out: 1 at chance; 1 with sharpness ≤ 0 as ▽ on the bottom edge" in md
    assert all(f"**[{p}]({p})**: " in md for p in out["pngs"])


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


# Expected values, computed independently in float64: a NumPy forward pass and cost, the straight
# paths and their barriers by hand, and the dense Hessian by `jax.hessian` under `jax.enable_x64`.
# analyze_group computes in float32 (eps = 1.2e-7): a cost over 50 examples × 3 outputs (terms
# >= 0) rounds to <~ 60·eps ≈ 7e-6 relative, so costs are compared at rel 1e-4 and barriers (the
# difference of two costs) at abs 2e-4 × the largest cost on the path. A Hessian-vector product
# over 107 parameters and 50 examples rounds to <~ 160·eps ≈ 2e-5 of the spectral radius, and so
# do the Ritz values that Lanczos reads off them: abs 1e-4 × max |λ|.
SUBSET_ROWS = np.sort(np.random.default_rng(0).choice(64, 50, replace=False))  # the subset analyze_group draws


def np_forward(params, x, activation):
    """Hidden pre-activations (one array per hidden layer) and the sigmoid outputs, in float64."""
    a, pre = np.asarray(x, np.float64), []
    for W, b in params[:-1]:
        z = a @ np.asarray(W, np.float64).T + np.asarray(b, np.float64)
        pre.append(z)
        a = 1 / (1 + np.exp(-z)) if activation == "sigmoid" else np.maximum(z, 0)
    W, b = params[-1]
    return pre, 1 / (1 + np.exp(-(a @ np.asarray(W, np.float64).T + np.asarray(b, np.float64))))


def np_cost(params, x, y, activation):
    return float(np.mean(np.sum((np_forward(params, x, activation)[1] - y) ** 2, axis=-1)))


def np_path(params_a, params_b, x, y, activation, n=11):
    """The costs at (1−α)·a + α·b for n values of α from 0 to 1."""
    mix = lambda t: [
        tuple((1 - t) * np.asarray(pa, np.float64) + t * np.asarray(pb, np.float64) for pa, pb in zip(la, lb))
        for la, lb in zip(params_a, params_b)
    ]
    return np.array([np_cost(mix(t), x, y, activation) for t in np.linspace(0, 1, n)])


@functools.partial(jax.jit, static_argnames="activation")
def _hessian(params, x, y, activation):
    flat_P, unravel = ravel_pytree(params)
    return jax.hessian(lambda f_P: cost.network_cost(unravel(f_P), x, y, activation))(flat_P)


def eigenvalues64(params, x, y, activation):
    """The Hessian's spectrum, ascending, computed in float64."""
    with jax.enable_x64(True):
        as64 = lambda a: jnp.asarray(a, jnp.float64)
        H = np.asarray(_hessian(jax.tree.map(as64, params), as64(x), as64(y), activation))
    assert H.dtype == np.float64
    return np.linalg.eigvalsh(H)


def np_stuck(params, x, activation, min_fraction=0.99):
    """(fraction of hidden units stuck, fraction of (unit, example) pairs stuck, pairs within rounding of the line)."""
    pre, _ = np_forward(params, x, activation)
    if activation == "sigmoid":  # saturated: σ(z) < 0.01 or > 0.99, i.e. |z| > log(99)
        stuck = [np.abs(z) > np.log(99) for z in pre]
        near = sum(int(np.sum(np.abs(np.abs(z) - np.log(99)) < 1e-4)) for z in pre)
    else:  # dead: relu(z) == 0, i.e. z <= 0
        stuck = [z <= 0 for z in pre]
        near = sum(int(np.sum(np.abs(z) < 1e-4)) for z in pre)
    units = sum(int(np.sum(s.mean(axis=0) >= min_fraction)) for s in stuck) / sum(s.shape[1] for s in stuck)
    pairs = sum(int(s.sum()) for s in stuck) / sum(s.size for s in stuck)
    return units, pairs, near


def group_with_humps(activation):
    """`tiny_group` made to have cost barriers: network 2 is network 0 with its first hidden layer's
    units permuted (the same function: equal costs at both ends, and a hump between them), network
    0 starts from another permutation of itself, and the targets are network 0's outputs plus
    noise, so that both paths run between low costs over higher ones."""
    init, final, x, _ = tiny_group(activation)
    init, final = [[(np.array(W), np.array(b)) for W, b in p] for p in (init, final)]

    def put_permuted(params, g, perm):
        (W1, b1), (W2, b2), *rest = [(W[0], b[0]) for W, b in final]
        for (W, b), (W_new, b_new) in zip(params, [(W1[perm], b1[perm]), (W2[:, perm], b2), *rest]):
            W[g], b[g] = W_new, b_new

    put_permuted(final, 2, [1, 2, 3, 4, 5, 0])
    put_permuted(init, 0, [5, 4, 3, 2, 1, 0])
    noise = np.random.default_rng(1).normal(size=(x.shape[0], final[-1][0].shape[1]))
    y = np.clip(np_forward([(W[0], b[0]) for W, b in final], x, activation)[1] + 0.05 * noise, 0, 1).astype(np.float32)
    as_jax = lambda p: [(jnp.asarray(W, jnp.float32), jnp.asarray(b, jnp.float32)) for W, b in p]
    return as_jax(init), as_jax(final), x, y


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_analyze_group_on_a_tiny_net(activation):
    init, final, x, y = group_with_humps(activation)
    members = [
        {"seed": 0, "learning_rate": 0.5},
        {"seed": 1, "learning_rate": 0.5, "diverged": True},
        {"seed": 2, "learning_rate": 0.5},
        {"seed": 0, "learning_rate": 2.0},
    ]
    out = landscape.analyze_group(init, final, members, x, y, activation, "quadratic", jax.random.key(0), n_examples=50, lanczos_steps=200)
    assert len(out) == 4
    assert out[1] == {"skipped": "diverged"}
    kind = "saturated" if activation == "sigmoid" else "dead"
    net = lambda p, g: [(W[g], b[g]) for W, b in p]
    xs, ys = x[SUBSET_ROWS], y[SUBSET_ROWS]
    n_units = sum(W.shape[1] for W, _ in final[:-1])
    n_pairs = n_units * len(SUBSET_ROWS)
    for g in (0, 2, 3):
        m = out[g]
        # Lanczos with more steps than the 107 parameters: both ends of the spectrum, exactly.
        eig = eigenvalues64(net(final, g), xs, ys, activation)
        scale = np.abs(eig).max()
        assert m["sharpness"] == pytest.approx(eig[-1], abs=1e-4 * scale)
        assert m["min_eigenvalue"] == pytest.approx(eig[0], abs=1e-4 * scale)
        assert m["sharpness_lr"] == pytest.approx(m["sharpness"] * members[g]["learning_rate"], rel=1e-12)
        units, pairs, near = np_stuck(net(final, g), xs, activation)
        assert m[f"{kind}_units"] == pytest.approx(units, abs=near / n_units + 1e-12)
        assert m[f"{kind}_pairs"] == pytest.approx(pairs, abs=near / n_pairs + 1e-12)
        path = np_path(net(init, g), net(final, g), xs, ys, activation)
        assert m["init_barrier"] == pytest.approx(path.max() - max(path[0], path[-1]), abs=2e-4 * path.max())
        assert m["cost_subset"] == pytest.approx(path[-1], rel=1e-4)
    # The expected values of different networks differ by far more than the tolerances: a swapped
    # network would show.
    assert abs(out[0]["cost_subset"] - out[3]["cost_subset"]) > 1e-2 * out[3]["cost_subset"]
    assert abs(out[0]["sharpness"] - out[3]["sharpness"]) > 1e-2 * out[3]["sharpness"]
    init_path = np_path(net(init, 0), net(final, 0), xs, ys, activation)
    assert out[0]["init_barrier"] > 1e-2 * init_path.max()  # a real hump, found
    # Seed barriers pair the survivors of lr 0.5 (seeds 0 and 2); lr 2.0 has one network: none.
    assert out[0]["seed_barrier_to"] == 2 and out[2]["seed_barrier_to"] == 0
    assert out[0]["seed_barrier"] == out[2]["seed_barrier"]
    path = np_path(net(final, 0), net(final, 2), xs, ys, activation)
    t = np.linspace(0, 1, 11)
    above_line = path - ((1 - t) * path[0] + t * path[-1])
    assert above_line.max() > 1e-2 * path.max()  # a real hump
    assert out[0]["seed_barrier"] == pytest.approx(above_line.max(), abs=2e-4 * path.max())
    assert "seed_barrier" not in out[3]


def test_analyze_group_sharpness_is_the_top_eigenvalue_with_few_steps():
    # 20 Lanczos steps on 107 parameters: the top Ritz value is already close to the top eigenvalue.
    init, final, x, y = tiny_group("sigmoid", G=1)
    out = landscape.analyze_group(init, final, [{"seed": 0, "learning_rate": 1.0}], x, y, "sigmoid", n_examples=50, lanczos_steps=20)
    eig = eigenvalues64([(W[0], b[0]) for W, b in final], x[SUBSET_ROWS], y[SUBSET_ROWS], "sigmoid")
    assert out[0]["sharpness"] == pytest.approx(eig[-1], rel=0.02)
    assert out[0]["sharpness"] <= eig[-1] + 1e-4 * np.abs(eig).max()  # Ritz values lie inside the spectrum


def test_analyze_group_barrier_is_zero_when_final_equals_init():
    init, _, x, y = tiny_group("sigmoid")
    # As above, four networks of which three are analyzed: the programs of the sigmoid case, compiled already.
    members = [{"seed": g, "learning_rate": 1.0, "diverged": g == 1} for g in range(4)]
    out = landscape.analyze_group(init, init, members, x, y, "sigmoid", n_examples=50, lanczos_steps=200)
    # (1−α)·p + α·p is p to within 2 ulp: the path's costs agree to a few eps. abs 1e-5 × the cost.
    assert out[0]["init_barrier"] == pytest.approx(0.0, abs=1e-5 * out[0]["cost_subset"])
    assert out[0]["cost_subset"] == pytest.approx(
        np_cost([(W[0], b[0]) for W, b in init], x[SUBSET_ROWS], y[SUBSET_ROWS], "sigmoid"), rel=1e-4
    )
