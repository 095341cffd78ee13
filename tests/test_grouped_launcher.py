"""The grouped launcher: a sweep's jobs trained in sets of one program, each job's outputs as the basic launcher writes them."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sweep_dirs
from omegaconf import OmegaConf

from hydra_plugins.mlpjax_grouped_launcher import grouped_launcher
from mlpjax import config, data, fit, report, sweep

N_TRAIN = 10_000  # conftest.SMALL_TRAIN
# A user's sweep config whose learning rates include one that diverges and one no job may have
# (hydra.sweeper.params is not checked before Hydra starts, as the command line is): those jobs fail alone.
BAD_LR_SWEEP = """defaults:
  - config
  - _self_
hydra:
  sweeper:
    params:
      optim.lr: 0.5,[1.0,2.0],1e6,-1
"""
# 8 jobs: 4 learning rates (a group of two, one that diverges, one invalid) x 2 batch sizes (20000 > N_TRAIN:
# a set that fails). One seed: jobs of several seeds in one set are test_grouped_resume's.
SWEEP = ["-cn", "bad_lr_sweep", "seed=3", "data.batch_size=20000,100", "train.epochs=2"]


@pytest.fixture(scope="module")
def grouped_and_basic(train_cli_here, tmp_path_factory):
    """SWEEP under the grouped launcher (the default) and under the basic one: (dir, result) each, and
    the folder of its config ("conf")."""
    conf = tmp_path_factory.mktemp("conf")
    (conf / "bad_lr_sweep.yaml").write_text(BAD_LR_SWEEP)
    runs = {"conf": conf}
    for launcher in ("grouped", "basic"):
        d = tmp_path_factory.mktemp(launcher)
        choice = [] if launcher == "grouped" else ["hydra/launcher=basic"]
        runs[launcher] = (d, sweep_dirs.sweep(train_cli_here, d, "-cd", str(conf), *SWEEP, *choice))
    return runs


def test_jobs_sort_into_sets_of_one_program():
    def job(num, *overrides):
        return sweep.Job(num, list(overrides), None, f"/s/{num}", config.compose(list(overrides)))

    jobs = [
        job(0, "seed=1"),
        job(1, "seed=2", "optim.lr=[0.1,3]", "model.init=he", "train.seeds=2", "train.analyze=true"),
        job(2, "data.batch_size=10"),
        job(3, "optim.momentum=0.9", "optim.schedule=constant"),  # traced per network: the same program
        job(4, "train.epochs=3"),
        job(5, "optim.lr=0.3", "train.polish=5"),
    ]
    jobs.append(sweep.Job(6, ["optim.lr=-1"], None, "/s/6", None))  # did not validate: trains alone
    assert [[j.num for j in s] for s in sweep.group(jobs)] == [[0, 1, 3, 5], [2], [4]]
    assert [sweep.networks(j.task) for j in jobs[:2]] == [1, 4]
    identity = sweep.set_identity(jobs[:2], "/s")
    assert list(identity) == ["0", "1"] and identity["1"]["optim.lr"] == [0.1, 3]
    assert sweep.set_dir("/s", identity) != sweep.set_dir("/s", sweep.set_identity(jobs[:1], "/s"))


def test_a_job_the_sweeper_validated_is_not_composed_again():
    composed = []

    class HydraLoader:
        def load_sweep_config(self, master_config, sweep_overrides):
            composed.append(list(sweep_overrides))
            return OmegaConf.create({"overrides": list(sweep_overrides)})

        def get_sources(self):
            return ["sources"]

    loader, master = grouped_launcher._ComposedOnce(HydraLoader()), OmegaConf.create({})
    validated = loader.load_sweep_config(master, ["seed=1"])  # the sweeper's check of the batch
    launched = loader.load_sweep_config(master, ["seed=1"])  # the launcher's
    assert composed == [["seed=1"]] and launched is validated  # the sweeper drops what it validated
    loader.load_sweep_config(master, ["seed=1"])  # handed over once: composed again
    loader.load_sweep_config(OmegaConf.create({}), ["seed=1"])  # another sweep's master config
    assert len(composed) == 3
    loader.forget()
    loader.load_sweep_config(master, ["seed=1"])
    assert len(composed) == 4 and loader.get_sources() == ["sources"]


def test_a_config_derived_from_a_composed_one_is_the_one_hydra_composes(tmp_path):
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    config.register()
    sweeps = [
        ["seed=0", "optim.lr=0.1"],
        ["seed=1", "optim.lr=0.3"],  # derived from the first
        ["seed=2", "optim.lr=[0.1,1]", "model.hidden=[32]"],
        ["seed=3", "optim.lr=[0.2,1]", "model.hidden=[8,8]"],  # derived from the third
        ["+experiment=sigmoid_vs_relu", "model.l2=1e-3"],
        ["+experiment=sigmoid_vs_relu", "model.l2=0"],  # a group override: derived only from its own kind
        ["seed=5", "optim.lr=0.3", "data.batch_size=full"],
    ]
    with initialize_config_dir(config_dir=config.CONF_DIR, version_base="1.3"):
        hydra_loader = GlobalHydra.instance().config_loader()
        master = hydra_loader.load_configuration("config", [f"hydra.sweep.dir={tmp_path}"], RunMode.MULTIRUN)
        loader = grouped_launcher._ComposedOnce(hydra_loader)
        for overrides in sweeps:
            derived = loader.load_sweep_config(master, overrides)
            loader.forget()
            assert OmegaConf.to_yaml(derived) == OmegaConf.to_yaml(hydra_loader.load_sweep_config(master, overrides)), overrides
        assert len(loader._templates) == 4  # composed by Hydra: the first of each kind
        with pytest.raises(Exception, match="seed"):  # a value the schema refuses: Hydra's own error
            loader.load_sweep_config(master, ["seed=abc", "optim.lr=0.1"])


def test_order_layout_equals_one_order_per_network(train_env):
    mnist = data.load_mnist(train_env["MNIST_IDX_DIR"], train_env["TFDS_DATA_DIR"])
    x, y = jnp.asarray(mnist.x_train_NxD[:2000]), jax.nn.one_hot(mnist.labels_train_N[:2000], 10)
    spec = fit.Spec((784, 16, 10), "sigmoid", "quadratic", 20, 2000)
    seeds, lrs = np.array([3, 3, 4, 4]), np.array([0.5, 3.0, 0.5, 3.0])  # order-major: 2 orders x 2 learning rates
    layout = fit.init_group(spec, ["lecun", "he", "lecun", "he"], seeds, lrs)
    per_network = jax.tree.map(jnp.copy, layout)  # train_epoch donates its group
    for epoch in (1,):
        perm_OxN = jnp.asarray(fit.permutations([3, 4], epoch, 2000))
        layout, m_layout = fit.train_epoch(layout, x, y, perm_OxN, spec)
        per_network, m_each = fit.train_epoch(per_network, x, y, jnp.repeat(perm_OxN, 2, axis=0), spec)
    for a, b in zip(jax.tree.leaves(layout.params), jax.tree.leaves(per_network.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m_layout["walk_cost"], m_each["walk_cost"], rtol=1e-5)
    assert not np.allclose(layout.params[0][0][0], layout.params[0][0][1])  # four different networks


def test_each_job_writes_what_the_basic_launcher_writes(grouped_and_basic):
    (g_dir, g), (b_dir, b) = grouped_and_basic["grouped"], grouped_and_basic["basic"]
    assert g.returncode == 0 and b.returncode == 0, g.stderr + b.stderr
    assert [p.name for p in sweep_dirs.jobs(g_dir)] == [p.name for p in sweep_dirs.jobs(b_dir)] == [str(n) for n in range(8)]
    trained = 0
    for gj, bj in zip(sweep_dirs.jobs(g_dir), sweep_dirs.jobs(b_dir)):
        for name in (".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/hydra.yaml"):
            assert (gj / name).exists(), gj / name
        assert (gj / ".hydra/config.yaml").read_text() == (bj / ".hydra/config.yaml").read_text()
        assert (gj / "error.txt").exists() == (bj / "error.txt").exists()
        gs, bs = sweep_dirs.summary(gj), sweep_dirs.summary(bj)
        assert (gs is None) == (bs is None), gj
        if gs is None:
            assert (gj / "error.txt").read_text() == (bj / "error.txt").read_text()
            continue
        trained += 1
        assert gs.keys() == bs.keys() and gs["identity"] == bs["identity"]
        assert (gj / "params").is_dir() and not (gj / "checkpoint").exists()
        assert [(m["seed"], m["learning_rate"], m["diverged"]) for m in gs["models"]] == [
            (m["seed"], m["learning_rate"], m["diverged"]) for m in bs["models"]
        ]
        if all(m["diverged"] for m in gs["models"]):  # alone it stopped after epoch 1; in its set only the set's end stops it
            assert [m["diverged_epoch"] for m in gs["models"]] == [m["diverged_epoch"] for m in bs["models"]] == [1]
            continue
        for gm, bm in zip(gs["models"], bs["models"]):  # 200 steps: float32 rounding of batched matmuls, no more
            assert gm["train_cost"] == pytest.approx(bm["train_cost"], rel=1e-4)
            assert gm["test_accuracy"] == pytest.approx(bm["test_accuracy"], abs=1e-3)  # 2 of 2,000 digits
        g_lines, b_lines = ((j / "metrics.jsonl").read_text().splitlines() for j in (gj, bj))
        assert len(g_lines) == len(b_lines) == 2
        assert json.loads(g_lines[-1]).keys() == json.loads(b_lines[-1]).keys()
    assert trained == 3
    # The set lines: the failed set first, then the next one, in the same process.
    starts = [l for l in g.stdout.splitlines() if l.startswith("set ") and "done:" not in l]
    ends = [l for l in g.stdout.splitlines() if l.startswith("set ") and "done:" in l]
    assert [l.split(":")[0] for l in starts] == ["set 1/2", "set 2/2"]
    assert "4 networks of 3 jobs (#0-4 step 2, 3 to train) done: failed" in ends[0]
    assert "4 networks of 3 jobs (#1-5 step 2, 3 to train) done: 2/2 epochs" in ends[1] and "sweep: 6/6 jobs done" in ends[1]


def test_invalid_jobs_fail_alone_and_a_failed_set_fails_each_of_its_jobs(grouped_and_basic):
    (g_dir, g), (_, b) = grouped_and_basic["grouped"], grouped_and_basic["basic"]
    errors = [l for l in g.stderr.splitlines() if l.startswith("error (job ")]
    assert len(errors) == b.stderr.count("error (job ") == 5
    invalid = [l for l in errors if "optim.lr=-1: must be a number > 0" in l]
    failed_set = [l for l in errors if "data.batch_size=20000: must be 'full' or an integer in 1..10000" in l]
    assert len(invalid) == 2 and len(failed_set) == 3
    # The job at η = 1e6 diverged, as it does alone; the other networks of its set trained on.
    assert g.stderr.count("error: every network diverged") == b.stderr.count("error: every network diverged") == 1
    for job in sweep_dirs.jobs(g_dir):
        error = (job / "error.txt").read_text() if (job / "error.txt").exists() else ""
        assert (error != "") == (sweep_dirs.summary(job) is None), job


def test_the_same_sweep_again_skips_complete_jobs_and_trains_a_deleted_one(grouped_and_basic, train_cli_here, tmp_path):
    again = tmp_path / "again"
    shutil.copytree(grouped_and_basic["grouped"][0], again)
    done = [j for j in sweep_dirs.jobs(again) if sweep_dirs.summary(j)]
    before = {j: sweep_dirs.summary(j) for j in done}
    stamp = {j: (j / "summary.json").stat().st_mtime_ns for j in done}
    (done[1] / "summary.json").unlink()
    r = sweep_dirs.sweep(train_cli_here, again, "-cd", str(grouped_and_basic["conf"]), *SWEEP)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("complete already") == 2
    assert [(j / "summary.json").stat().st_mtime_ns == stamp[j] for j in done] == [True, False, True]
    # Trained again, now in a set of its own: other batched shapes, the same networks up to float32 rounding.
    assert _same(sweep_dirs.summary(done[1])["models"], before[done[1]]["models"])
    assert r.stderr.count("error (job ") == 5  # the jobs that failed fail again, and say so


def _same(a, b) -> bool:
    """Equal, numbers up to the float32 rounding that separates the launchers (NaN equals NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, (int, float)):
        return (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, rel=1e-3, abs=1e-3)
    return str(a) == str(b)


def test_report_of_a_grouped_sweep_equals_the_basic_sweeps(grouped_and_basic):
    # What report.report writes (report.csv, networks.csv, the figures and report.md) is drawn from these
    # rows and networks; aggregated without the drawing, which takes seconds a report.
    def aggregated(launcher):
        root = str(grouped_and_basic[launcher][0])
        return report.aggregate([report.read_job(d, root) for d in report.find_jobs(root)])

    sweeps = {launcher: aggregated(launcher) for launcher in ("grouped", "basic")}
    assert len(sweeps["grouped"].rows) == len(sweeps["basic"].rows) > 4  # 4 trained configurations, and the failed ones
    assert len(sweeps["grouped"].nets) == len(sweeps["basic"].nets) == 4  # at batch 100: 0.5, [1.0,2.0], the diverged 1e6
    for what in ("rows", "nets"):
        for g, b in zip(getattr(sweeps["grouped"], what), getattr(sweeps["basic"], what)):
            assert g.keys() == b.keys()
            for k in g:
                assert _same(g[k], b[k]), (what, k)


def test_momentum_and_schedule_vary_inside_one_set_as_each_job_alone(train_cli_here, tmp_path):
    # 4 jobs (momentum 0 and 0.9 x constant and cosine η) are one set: one program, one checkpoint.
    args = ["seed=1", "optim.lr=0.5", "optim.momentum=0,0.9", "optim.schedule=constant,cosine", "train.epochs=2"]
    dry = sweep_dirs.sweep(train_cli_here, tmp_path / "dry", *args, "hydra.launcher.dry_run=true")
    assert dry.returncode == 0 and "4 jobs, 1 set(s)" in dry.stdout, dry.stdout
    g = sweep_dirs.sweep(train_cli_here, tmp_path / "grouped", *args)
    b = sweep_dirs.sweep(train_cli_here, tmp_path / "basic", *args, "hydra/launcher=basic")
    assert g.returncode == b.returncode == 0, g.stderr + b.stderr
    assert len(list((tmp_path / "grouped" / ".sets").iterdir())) == 1
    costs = {}
    for name in ("grouped", "basic"):
        costs[name] = [sweep_dirs.summary(j)["models"][0]["train_cost"] for j in sweep_dirs.jobs(tmp_path / name)]
    assert len(set(costs["basic"])) == 4  # momentum and schedule each change the result
    np.testing.assert_allclose(costs["grouped"], costs["basic"], rtol=1e-4)  # float32: other batched shapes, same networks


def test_a_set_that_finished_some_jobs_finishes_the_others_from_its_checkpoint(train_cli_here, tmp_path):
    args = ["seed=0,1", "optim.lr=0.5", "train.epochs=2"]
    first = sweep_dirs.sweep(train_cli_here, tmp_path, *args)
    assert first.returncode == 0, first.stderr
    jobs = sweep_dirs.jobs(tmp_path)
    before = sweep_dirs.summary(jobs[1])
    (jobs[1] / "summary.json").unlink()  # as if the process died while finishing job 1
    again = sweep_dirs.sweep(train_cli_here, tmp_path, *args)
    assert again.returncode == 0, again.stderr
    assert "resuming from epoch 2" in again.stdout and "epoch 1/2" not in again.stdout  # nothing trained again
    assert sweep_dirs.summary(jobs[1])["models"] == before["models"]  # the same checkpoint: the same numbers, exactly
