"""Train the network(s) a Hydra config describes: `python -m mlpjax.train [key=value …]`.

One run trains a group of networks of one shape — every combination of `train.seeds`
seeds and the learning rates in `optim.lr` — as one compiled, vmapped program per epoch.
It writes into Hydra's output dir:
  .hydra/config.yaml  the resolved config
  metrics.jsonl       one line per epoch; per-network lists ordered like summary's `models`
  summary.json        param_count, epochs, wall_seconds, epoch_seconds, models[…], environment
  params/             the trained parameters (params.npz), leading axis G: `checkpoint.load_params`
  checkpoint/         the whole training state every `train.checkpoint_every` epochs

Re-running the same command into the same output dir resumes from the last checkpoint,
or does nothing if the run is complete. A run stops early once every network has diverged.
In a sweep under the grouped launcher (mlpjax/sweep.py) the jobs of one program train together
(`train_jobs`), each writing the files above but `checkpoint/`, which is the set's.
The defaults are in conf/; what they reach, and how fast, is measured in the README.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import hydra
import jax
import jax.numpy as jnp
import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from mlpjax import checkpoint, cli, config, data, fit, lock, model, provenance, rundir
from mlpjax.landscape import endpoints, polish
from mlpjax.plan import Network, Plan, Program, chunks, make_plan, merge, positions

config.register()

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train(cfg: DictConfig, out_dir: str) -> dict:
    """Run the whole training that `cfg` describes; returns the summary also written to `out_dir`."""
    t_start = time.perf_counter()
    config.validate(cfg)
    done = completed_summary(out_dir, cfg)
    if done is not None:
        return done
    mnist = data.load_mnist(cfg.data.idx_dir, os.path.expanduser(cfg.data.data_dir))
    plan = make_plan(cfg, n_inputs=mnist.x_train_NxD.shape[1], n_images=mnist.x_train_NxD.shape[0])
    trained = train_jobs([plan], [out_dir], mnist, plan.identity, os.path.join(out_dir, "checkpoint"))
    return finish_job(trained, 0, out_dir, t_start)


class Trained(NamedTuple):
    """What SGD left of the jobs trained together: the networks of every job, in the jobs' order."""

    plans: list[Plan]  # each job's own plan
    params: model.Params  # every job's networks, stacked on a leading axis
    histories: list[list[dict]]  # each job's metrics lines, epoch 1 to the last run
    start_epoch: int  # the epoch the training resumed from (0: from scratch)
    arrays: DeviceData


def train_jobs(plans: list[Plan], out_dirs: list[str | None], mnist: data.Mnist, identity: dict, ckpt_dir: str) -> Trained:
    """Train the networks of `plans` (one program's: see `plan.merge`) together, each job's metrics
    into its own `out_dirs[j]/metrics.jsonl` (None: a job complete already, its files left alone), the
    whole state into `ckpt_dir` under `identity`."""
    # --- data and plan: the config is resolved once; from here on only the plan is read.
    plan = merge(plans, identity)
    arrays = DeviceData.of(mnist, plan.validation, plan.n_train)
    programs = chunks(plan, arrays.nbytes)
    print(header(plan, programs))
    held_out = f"; the last {plan.validation:,} training images held out for validation" if plan.validation else ""
    subset = f"; SGD on the first {plan.n_train:,}" if plan.n_train < mnist.x_train_NxD.shape[0] - plan.validation else ""
    print(f"data: {mnist.source}{held_out}{subset}")

    # --- state: fresh networks, or the last checkpoint of this same run.
    groups, start_epoch = init_or_resume(plan, programs, ckpt_dir)
    for d in filter(None, out_dirs):
        os.makedirs(d, exist_ok=True)  # a set's later jobs get their dir from Hydra only when they finish
    metrics_paths = [d and os.path.join(d, "metrics.jsonl") for d in out_dirs]
    histories = [metrics_up_to(path, start_epoch) if path else [] for path in metrics_paths]
    first = np.cumsum([0] + [len(p.networks) for p in plans])  # job j's networks: first[j] .. first[j+1]-1

    # --- the epochs
    for epoch in range(start_epoch + 1, plan.epochs + 1):
        t0 = time.perf_counter()
        groups, step_metrics = train_epoch(plan, programs, groups, arrays, epoch)
        seconds = time.perf_counter() - t0
        ev = epoch_metrics(plan, programs, groups, step_metrics, arrays)
        # The first epoch of a process includes compilation; epoch_seconds leaves it out.
        record = {"epoch": epoch, "epoch_seconds": round(seconds, 4), "compiled": epoch == start_epoch + 1}
        stop = bool(ev["diverged"].all())
        saving = epoch % plan.checkpoint_every == 0 or epoch == plan.epochs or stop
        for j, (path, history) in enumerate(zip(metrics_paths, histories)):
            if path is None:
                continue
            history.append(record | {k: v[first[j] : first[j + 1]].tolist() for k, v in ev.items()})
            # fsync'd before the checkpoint that vouches for it; later lines are cut on resume (metrics_up_to).
            append_line(path, history[-1], sync=saving)
        print(progress_line(epoch, plan.epochs, ev, seconds), flush=True)
        if saving:
            checkpoint.save_state(ckpt_dir, epoch, groups, plan.identity)
        if stop:
            print(f"every network has diverged: stopping after epoch {epoch} of {plan.epochs}", flush=True)
            break
    return Trained(plans, stack_networks(plan, programs, [g.params for g in groups]), histories, start_epoch, arrays)


def finish_job(trained: Trained, j: int, out_dir: str, t_start: float) -> dict:
    """Job `j`'s results into `out_dir`: its parameters, the post-processing of its own plan (polish,
    analysis) on its own networks, and summary.json, written last. Returns the summary."""
    plan = trained.plans[j]
    first = sum(len(p.networks) for p in trained.plans[:j])
    params = jax.tree.map(lambda a: a[first : first + len(plan.networks)], trained.params)
    checkpoint.save_params(os.path.join(out_dir, "params"), params)
    summary = summarize(plan, trained.histories[j], trained.start_epoch)
    if plan.polish:
        t_polish = time.perf_counter()
        params = polish_and_check(plan, params, summary["models"], trained.arrays)
        checkpoint.save_params(os.path.join(out_dir, "params_polished"), params)
        summary["polish_seconds"] = round(time.perf_counter() - t_polish, 3)
    if plan.analyze:
        t_analyze = time.perf_counter()
        analyze_minima(plan, params, summary["models"], trained.arrays)  # at the polished points, if polished
        summary["analyze_seconds"] = round(time.perf_counter() - t_analyze, 3)
    summary["wall_seconds"] = round(time.perf_counter() - t_start, 3)
    write_json_atomic(os.path.join(out_dir, "summary.json"), summary)  # a summary on disk means a complete run
    return summary


# --------------------------------------------------------------------------- the steps of a run


def completed_summary(out_dir: str, cfg: DictConfig) -> dict | None:
    """The summary of this same run if `out_dir` holds a complete one (and says so), else None."""
    done = summary_if_complete(out_dir, cfg)
    if done is not None:
        print(f"complete already: {os.path.join(out_dir, 'summary.json')} (delete it to train again)")
    return done


def summary_if_complete(out_dir: str, cfg: DictConfig) -> dict | None:
    """The summary of this same run if `out_dir` holds a complete one, else None."""
    path = os.path.join(out_dir, "summary.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            done = json.load(f)
        if not isinstance(done, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        print(f"warning: {path} is damaged ({type(e).__name__}: {e}); finishing the run again from its last checkpoint", file=sys.stderr)
        return None
    if done.get("identity") != config.run_identity(cfg) or done.get("epochs") != cfg.train.epochs:
        return None
    if done.get("post") != config.after_sgd(cfg):
        return None  # the checkpoint of the last epoch is there: only the post-processing runs again
    return done


class Split(NamedTuple):
    """One split of MNIST on the device: pixels in [0, 1], one-hot targets, labels."""

    x_NxD: jax.Array
    y_NxK: jax.Array
    labels_N: jax.Array

    @classmethod
    def of(cls, x_NxD: np.ndarray, labels_N: np.ndarray) -> Split:
        # A copy on the device (jnp.asarray): device_put may share the NumPy arrays' memory on a CPU.
        labels_N = jnp.asarray(labels_N)
        return cls(jnp.asarray(x_NxD), jax.nn.one_hot(labels_N, 10), labels_N)


class DeviceData(NamedTuple):
    """MNIST on the device, where it stays: `train` (the first `n_train` training images),
    `validation` (the last N, None when N = 0) and `test`."""

    train: Split
    validation: Split | None
    test: Split

    @classmethod
    def of(cls, mnist: data.Mnist, validation: int, n_train: int) -> DeviceData:
        n = mnist.x_train_NxD.shape[0] - validation
        x_NxD, labels_N = mnist.x_train_NxD, mnist.labels_train_N
        held_out = Split.of(x_NxD[n:], labels_N[n:]) if validation else None
        return cls(Split.of(x_NxD[:n_train], labels_N[:n_train]), held_out, Split.of(mnist.x_test_NxD, mnist.labels_test_N))

    @property
    def nbytes(self) -> int:
        return sum(s.x_NxD.nbytes for s in self.splits().values())

    def splits(self) -> dict[str, Split]:
        """Every split the metrics report, by name: train, validation (if held out), test."""
        return {name: s for name, s in zip(self._fields, self) if s is not None}


def header(plan: Plan, programs: list[Program]) -> str:
    """The first line a run prints: what it trains, and where."""
    spec, G = plan.spec, len(plan.networks)
    n_seeds, n_lrs = len({n.seed for n in plan.networks}), len({n.learning_rate for n in plan.networks})
    P = model.count_for_sizes(list(spec.sizes))
    return (
        f"mlpjax: {'-'.join(map(str, spec.sizes))} {spec.activation} network, {P:,} parameters, {spec.cost} cost"
        + (f" + (λ/2)|θ|², λ = {spec.l2:g}, " if spec.l2 else ", ")
        + f"{G} network(s) ({n_seeds} seed(s) x {n_lrs} learning rate(s)), "
        f"mini-batch {'full' if spec.full_batch else spec.batch_size}, {plan.epochs} epochs on {jax.devices()[0].platform}"
        + (f", in {len(programs)} programs of {len(programs[0].index)} networks (memory)" if len(programs) > 1 else "")
        + (f", spread over {jax.device_count()} devices" if jax.device_count() > 1 and G > 1 else "")
    )


def init_groups(plan: Plan, programs: list[Program]) -> list[fit.Group]:
    """Fresh networks, one group per program, spread over the devices."""
    return [fit.shard(init_networks(plan.spec, [plan.networks[i] for i in p.index])) for p in programs]


def init_networks(spec: fit.Spec, networks: list[Network]) -> fit.Group:
    """`networks` as they start, each with its own seed, scheme, learning rate and momentum."""
    each = lambda key: np.array([getattr(n, key) for n in networks])
    return fit.init_group(spec, [n.init for n in networks], each("seed"), each("learning_rate"), each("momentum"))


def init_or_resume(plan: Plan, programs: list[Program], ckpt_dir: str) -> tuple[list[fit.Group], int]:
    """`(groups, epochs done)`: from this run's last checkpoint if there is one, else fresh."""
    groups = init_groups(plan, programs)
    restored = checkpoint.restore_state(ckpt_dir, groups, plan.identity)
    if restored is None:
        return groups, 0
    epoch, groups = restored
    print(f"resuming from epoch {epoch}")
    return [fit.Group(*g) for g in groups], epoch


def metrics_up_to(path: str, epoch: int) -> list[dict]:
    """The metrics of epochs 1..`epoch` of an earlier, interrupted run; the file is cut back to them."""
    history = rundir.read_metrics(path)[:epoch]
    if len(history) != epoch or any(r["epoch"] != e for e, r in enumerate(history, 1)):
        raise checkpoint.CheckpointMismatch(f"{path} holds {len(history)} epochs, the checkpoint {epoch}; use another output dir")
    with open(path + ".tmp", "w") as f:  # drop epochs past the checkpoint
        f.writelines(json.dumps(r) + "\n" for r in history)
    os.replace(path + ".tmp", path)
    return history


def train_epoch(plan: Plan, programs: list[Program], groups: list[fit.Group], arrays: DeviceData, epoch: int):
    """One epoch of every program; returns the new groups and each program's step metrics."""
    new_groups, step_metrics = [], []
    for p, group in zip(programs, groups):
        nets = [plan.networks[i] for i in p.index]  # each its own schedule
        group = fit.set_learning_rates(group, np.array([fit.lr_factor(n.schedule, epoch, plan.epochs) * n.learning_rate for n in nets]))
        perm_OxN = jax.device_put(fit.permutations(p.order_seeds(plan.networks), epoch, plan.spec.n_train))
        group, m = fit.train_epoch(group, arrays.train.x_NxD, arrays.train.y_NxK, perm_OxN, plan.spec)
        new_groups.append(group)
        step_metrics.append(m)
    jax.block_until_ready(new_groups)
    return new_groups, step_metrics


def epoch_metrics(
    plan: Plan, programs: list[Program], groups: list[fit.Group], step_metrics: list[dict], arrays: DeviceData
) -> dict[str, np.ndarray]:
    """Per-network numbers after an epoch, each of shape (G,): cost and accuracy on every split,
    the epoch's walk cost, mean |∇C| and parameter norm, and whether the network has diverged."""
    where_G = positions(programs, len(plan.networks))
    cat = lambda xs: np.concatenate([np.asarray(x) for x in xs])[where_G]  # in the plan's order, padding dropped
    out = {}
    for name, (x_NxD, y_NxK, labels_N) in arrays.splits().items():  # train, validation, test
        costs, accs = zip(*[fit.evaluate(g.params, x_NxD, y_NxK, labels_N, plan.spec.activation, plan.spec.cost) for g in groups])
        out[f"{name}_cost"], out[f"{name}_accuracy"] = cat(costs), cat(accs)
    out |= {k: cat([m[k] for m in step_metrics]) for k in step_metrics[0]}
    out["diverged"] = ~cat([g.alive_G for g in groups])
    return out


def append_line(path: str, record: dict, sync: bool = True) -> None:
    """Append one JSON line to the file `path`; with `sync`, force the file to disk."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        if sync:
            f.flush()
            os.fsync(f.fileno())


def stack_networks(plan: Plan, programs: list[Program], params_per_program: list[model.Params]) -> model.Params:
    """The programs' parameters as one stack with leading axis G, in the plan's order, padding dropped."""
    where_G = positions(programs, len(plan.networks))
    return jax.tree.map(lambda *xs: jnp.concatenate(xs)[where_G], *params_per_program)


def summarize(plan: Plan, history: list[dict], start_epoch: int) -> dict:
    """summary.json's content (all but wall_seconds) from the metrics of every epoch run."""
    spec, last = plan.spec, history[-1]
    timed = [r["epoch_seconds"] for r in history if not r["compiled"]] or [r["epoch_seconds"] for r in history]
    return {
        "param_count": model.count_for_sizes(list(spec.sizes)),
        "sizes": list(spec.sizes),
        "activation": spec.activation,
        "cost": spec.cost,
        "l2": spec.l2,  # the cost SGD descended is C + (l2/2)|θ|²; the *_cost numbers below are C alone
        "batch_size": "full" if spec.full_batch else spec.batch_size,
        "epochs": plan.epochs,
        "epochs_run": last["epoch"],
        "validation": plan.validation,
        "train_images": plan.n_train,
        "networks": len(plan.networks),
        "epoch_seconds": round(statistics.median(timed), 4),
        "resumed_from_epoch": start_epoch or None,
        "models": [
            {
                "seed": n.seed,
                "learning_rate": n.learning_rate,
                **{k: last[k][g] for k in SPLIT_METRICS if k in last},
                "diverged": last["diverged"][g],
                "diverged_epoch": next((r["epoch"] for r in history if r["diverged"][g]), None),
            }
            for g, n in enumerate(plan.networks)
        ],
        "identity": plan.identity,
        "post": plan.post,
        "environment": provenance.record(REPO_DIR),
    }


# What summary.json's `models` copy from the last metrics line; validation_* only when held out.
SPLIT_METRICS = ("test_accuracy", "test_cost", "validation_accuracy", "validation_cost", "train_cost", "train_accuracy")


def polish_and_check(plan: Plan, params: model.Params, models: list[dict], arrays: DeviceData) -> model.Params:
    """Polish every surviving network with full-batch L-BFGS (`landscape.polish`); record in each entry
    of `models` its `stationary` point after SGD and after the polish. Returns the polished parameters."""
    x_NxD, y_NxK, act, cst, key = (
        arrays.train.x_NxD,
        arrays.train.y_NxK,
        plan.spec.activation,
        plan.spec.cost,
        jax.random.key(plan.data_seed),
    )
    l2 = plan.spec.l2
    before = polish.stationarity(params, x_NxD, y_NxK, act, cst, key, l2=l2)
    polished, steps_G, _ = polish.polish(params, x_NxD, y_NxK, act, cst, plan.polish, plan.polish_tol, l2=l2)
    after = polish.stationarity(polished, x_NxD, y_NxK, act, cst, key, l2=l2)
    costs = {name: fit.evaluate(polished, s.x_NxD, s.y_NxK, s.labels_N, act, cst) for name, s in arrays.splits().items()}
    for g, m in enumerate(models):
        if m["diverged"]:
            continue  # its parameters are those from before it diverged: not a result
        m["stationary"] = {"sgd": before[g], "polished": after[g] | {"steps": int(steps_G[g])}}
        for name, (cost_G, acc_G) in costs.items():
            m["stationary"]["polished"] |= {f"{name}_cost": float(cost_G[g]), f"{name}_accuracy": float(acc_G[g])}
    return polished


def analyze_minima(plan: Plan, params: model.Params, models: list[dict], arrays: DeviceData) -> None:
    """Add each network's minima analysis (`landscape.endpoints.analyze_group`) to its entry of `models`."""
    init = init_networks(plan.spec, list(plan.networks))
    minima_G = endpoints.analyze_group(
        init.params,
        params,
        models,
        arrays.train.x_NxD,
        arrays.train.y_NxK,
        plan.spec.activation,
        plan.spec.cost,
        jax.random.key(plan.data_seed),
        l2=plan.spec.l2,
    )
    for m, mi in zip(models, minima_G):
        m["minima"] = mi


def write_json_atomic(path: str, obj: dict) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(path + ".tmp", path)


def progress_line(epoch: int, epochs: int, ev: dict, seconds: float) -> str:
    """One readable line per epoch: the network's numbers, or the group's spread."""
    head = f"epoch {epoch:>{len(str(epochs))}}/{epochs}"
    if len(ev["test_accuracy"]) == 1:
        val = f"  validation accuracy {100 * ev['validation_accuracy'][0]:.2f}%" if "validation_accuracy" in ev else ""
        return (
            f"{head}  train cost {ev['train_cost'][0]:.4f}  test cost {ev['test_cost'][0]:.4f}{val}  "
            f"test accuracy {100 * ev['test_accuracy'][0]:.2f}%  |grad| {ev['grad_norm'][0]:.3f}  ({seconds:.2f} s)"
            + ("  DIVERGED" if ev["diverged"][0] else "")
        )
    ok = ~ev["diverged"]
    if not ok.any():
        return f"{head}  {len(ok)} networks, every one diverged  ({seconds:.2f} s)"
    acc = 100 * ev["test_accuracy"][ok]
    val = f"validation accuracy median {100 * np.median(ev['validation_accuracy'][ok]):.2f}%  " if "validation_accuracy" in ev else ""
    return (
        f"{head}  {len(ok)} networks  {val}test accuracy best {acc.max():.2f}% median {np.median(acc):.2f}% "
        f"worst {acc.min():.2f}%  train cost median {np.median(ev['train_cost'][ok]):.4f}  "
        f"diverged {int((~ok).sum())}  ({seconds:.2f} s)"
    )


# Mistakes and damage a user can act on: one line, exit code 2. OSError: a full disk, a folder that cannot be written.
USER_ERRORS = (config.ConfigError, data.DataError, checkpoint.CheckpointMismatch, checkpoint.CheckpointDamaged, OSError)


@hydra.main(config_path=os.path.join(os.path.dirname(os.path.abspath(__file__)), "conf"), config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> float | None:
    return run_task(cfg, train)


def run_task(cfg: DictConfig, work: Callable[[DictConfig, str], dict]) -> float | None:
    """One Hydra job: `work(cfg, output dir)` gives its summary; a failure, or networks that all
    diverged, ends as one line on stderr (and, in a sweep, error.txt in the job's dir). Returns the
    job's `train.objective` for a sweeper (`objective`), None when the job failed."""
    hc = HydraConfig.get()
    out_dir = hc.runtime.output_dir
    with _holding(out_dir):
        return _run_locked(cfg, work, hc, out_dir)


@contextlib.contextmanager
def _holding(directory: str):
    """`lock.hold(directory)`; another process holding it (or, inside, a set's checkpoint) ends this one:
    one line, exit code 2, nothing written (a sweep: the same sweep run twice)."""
    try:
        with lock.hold(directory):
            yield
    except lock.DirInUse as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)


def _run_locked(cfg: DictConfig, work: Callable[[DictConfig, str], dict], hc, out_dir: str) -> float | None:
    multirun = hc.mode == RunMode.MULTIRUN
    if os.path.exists(os.path.join(out_dir, "error.txt")):
        os.remove(os.path.join(out_dir, "error.txt"))  # from an earlier attempt at this job
    try:
        summary = work(cfg, out_dir)
    except lock.DirInUse:
        raise
    except Exception as e:
        if not multirun and not isinstance(e, USER_ERRORS):
            raise  # a bug: the traceback is the useful report
        message = f"{type(e).__name__}: {e}" if not isinstance(e, USER_ERRORS) else str(e)
        if isinstance(e, OSError):  # e.g. a full disk: every checkpoint is written atomically, so the last one is whole
            message = f"cannot write {e.filename or out_dir}: {e.strerror or e}; the last checkpoint is intact: run the same command again once fixed"
        # In a sweep the job ends here and the next one starts; the report lists this one.
        with contextlib.suppress(OSError):  # a full disk takes this file too; the line below still says why
            with open(os.path.join(out_dir, "error.txt"), "w") as f:
                f.write(message.splitlines()[0] + "\n")
        prefix = f"error (job {hc.job.num}: {' '.join(hc.overrides.task)}): " if multirun else "error: "
        print(prefix + message.splitlines()[0], file=sys.stderr, flush=True)
        if multirun:
            return None
        sys.exit(2)
    if all(m["diverged"] for m in summary["models"]):
        print(
            "error: every network diverged (cost or parameters not finite, or norm past train.diverge_norm); try a smaller optim.lr",
            file=sys.stderr,
        )
        if not multirun:
            sys.exit(1)
    value = objective(summary, cfg.train.objective)
    if _sweeper_reads_objective(hc):
        key, direction = cfg.train.objective, str(OmegaConf.select(hc, "sweeper.direction", default="") or "").lower()
        wanted, problem = config.OBJECTIVE_DIRECTION[key], None
        if direction in ("minimize", "maximize") and direction != wanted:  # the worst trial would come back as the best
            problem = f"train.objective={key} is to be {wanted}d, and hydra.sweeper.direction={direction}: set hydra.sweeper.direction={wanted} (or another train.objective)"
        elif value is None:
            problem = (
                f"train.objective={key} is not in this job's summary (it needs data.validation > 0, a held-out split); "
                "hold one out, e.g. data.validation=10000, or use train.objective=train_cost"
            )
        if problem:
            print(f"error: {problem}", file=sys.stderr, flush=True)
            sys.exit(2)
    return value


def objective(summary: dict, key: str) -> float | None:
    """The mean of `key` (e.g. validation_accuracy) over the networks that did not diverge; NaN if every one
    diverged (a sweeper counts the trial as failed); None if the networks have no such number."""
    models = summary["models"]
    if not all(key in m for m in models):
        return None
    values = [float(m[key]) for m in models if not m["diverged"]]
    return statistics.fmean(values) if values else float("nan")


def _sweeper_reads_objective(hc) -> bool:
    """Whether the sweep's sweeper uses what the jobs return (Optuna, Ax, Nevergrad…; Hydra's basic one does not)."""
    target = str(OmegaConf.select(hc, "sweeper._target_", default="") or "")
    return hc.mode == RunMode.MULTIRUN and not target.endswith("BasicSweeper")


def main() -> None:
    cli.preflight(sys.argv[1:])
    run_dir = cli.explicit_run_dir(sys.argv[1:])
    if run_dir is None:
        _hydra_main()
        return
    with _holding(run_dir):  # before Hydra writes .hydra/ into it, so a second process changes nothing there
        _hydra_main()


if __name__ == "__main__":
    # Run the copy imported as `mlpjax.train`, not `__main__`, so that launchers which
    # pickle the task function (joblib, submitit) find it by name in their workers.
    from mlpjax.train import main as _main

    _main()
