"""A Hydra sweep trained in sets: the jobs that compile to one program train as one group.

The grouped launcher (hydra_plugins/mlpjax_grouped_launcher) composes every job's config and
hands the jobs here. Jobs whose settings differ only in what each network has of its own
(`PER_NETWORK`: traced values, not the program's shape) or in what is done after SGD
(`AFTER_SGD`) form a set. A set's networks train together through `train.train_jobs`, as one
plan, in one process, with the data loaded once per process; then every job goes through
Hydra's `run_job` as under the basic launcher, and its task writes that job's own outputs
(`train.finish_job`). A set's checkpoint is SWEEP_DIR/.sets/HASH, HASH of its jobs' identities.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf

from mlpjax import config, data, lock, model, train
from mlpjax.plan import make_plan

# Settings each network of a set may have its own: traced values (η, its schedule, momentum) or initial parameters.
PER_NETWORK = ("seed", "train.seeds", "optim.lr", "model.init", "optim.momentum", "optim.schedule")
# Settings of what each job does with its own networks after SGD.
AFTER_SGD = config.AFTER_SGD


@dataclasses.dataclass
class Job:
    """One job of a sweep, composed as the basic launcher would."""

    num: int  # hydra.job.num
    overrides: list[str]
    config: DictConfig  # the job's whole config, `hydra` node included, for `run_job`
    out_dir: str  # absolute: hydra.sweep.dir/hydra.sweep.subdir
    task: DictConfig | None  # the job's own settings, resolved and valid; None when they are not


def set_key(task: DictConfig) -> str:
    """What jobs must share to train as one program: every setting but `PER_NETWORK` and `AFTER_SGD`."""
    flat = config.flatten(OmegaConf.to_container(task, resolve=True))
    return json.dumps({k: v for k, v in flat.items() if k not in PER_NETWORK + AFTER_SGD}, sort_keys=True)


def group(jobs: list[Job]) -> list[list[Job]]:
    """The valid jobs in sets of one `set_key`, each set in job order, the sets in the order of their first job."""
    sets: dict[str, list[Job]] = {}
    for job in jobs:
        if job.task is not None:
            sets.setdefault(set_key(job.task), []).append(job)
    return list(sets.values())


def pending(jobs: list[Job]) -> list[Job]:
    """The jobs without a complete summary.json of their own configuration."""
    return [j for j in jobs if train.summary_if_complete(j.out_dir, j.task) is None]


def set_identity(jobs: list[Job], sweep_dir: str) -> dict:
    """What a set's checkpoint must match: each job's run identity, by its dir in the sweep."""
    return {os.path.relpath(j.out_dir, sweep_dir): config.run_identity(j.task) for j in jobs}


def set_dir(sweep_dir: str, identity: dict) -> str:
    """The folder of a set's checkpoint, named by a hash of its identity."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return os.path.join(sweep_dir, ".sets", digest)


@functools.lru_cache(maxsize=2)
def _mnist(idx_dir: str | None, data_dir: str) -> data.Mnist:
    return data.load_mnist(idx_dir, data_dir)


def networks(task: DictConfig) -> int:
    """How many networks a job trains: seeds x learning rates."""
    return task.train.seeds * len(config.learning_rates(task.optim.lr))


class SetRun:
    """One set: its pending jobs train together once, when the first of them asks for its results."""

    def __init__(self, jobs: list[Job], sweep_dir: str):
        self.jobs, self.sweep_dir = jobs, sweep_dir
        self.todo = pending(jobs)
        self.t_start = time.perf_counter()
        self.result: train.Trained | None = None
        self.error: Exception | None = None

    def work(self, cfg: DictConfig, out_dir: str) -> dict:
        """`train.run_task`'s work for one job of the set: its summary, the set trained first if need be."""
        done = train.completed_summary(out_dir, cfg)
        if done is not None:
            return done
        trained = self.trained()
        return train.finish_job(trained, [j.out_dir for j in self.jobs].index(out_dir), out_dir, self.t_start)

    def trained(self) -> train.Trained:
        """The set's networks after SGD; a failure is raised again for each job that asks."""
        if self.error is not None:
            raise self.error
        if self.result is None:
            self.t_start = time.perf_counter()
            try:
                self.result = self._train()
            except Exception as e:
                self.error = e
                raise
        return self.result

    def _train(self) -> train.Trained:
        """Every job's networks (the set's checkpoint is of all of them), the metrics of the pending jobs
        only: a set that finished some of its jobs resumes from its last checkpoint and finishes the rest."""
        task = self.todo[0].task
        mnist = _mnist(task.data.idx_dir, os.path.expanduser(task.data.data_dir))
        n_images, n_inputs = mnist.x_train_NxD.shape
        plans = [make_plan(j.task, n_inputs=n_inputs, n_images=n_images) for j in self.jobs]
        identity = set_identity(self.jobs, self.sweep_dir)
        pending_dirs = {j.out_dir for j in self.todo}
        out_dirs = [j.out_dir if j.out_dir in pending_dirs else None for j in self.jobs]
        with lock.hold(set_dir(self.sweep_dir, identity)):  # the set's checkpoint: one process at a time
            return train.train_jobs(plans, out_dirs, mnist, identity, set_dir(self.sweep_dir, identity))

    def epochs_done(self) -> str:
        if self.result is None:
            return "failed" if self.error is not None else "complete already"
        trained = next(h for h in self.result.histories if h)  # a job complete already has none
        return f"{trained[-1]['epoch']}/{self.todo[0].task.train.epochs} epochs"


def _work_units(jobs: list[Job]) -> float:
    """A set's work for the time estimate: network-epochs weighted by parameter count (MNIST's 784 inputs, 10 outputs)."""
    return sum(networks(j.task) * j.task.train.epochs * model.count_for_sizes([784, *j.task.model.hidden, 10]) for j in jobs)


def _nums(jobs: list[Job]) -> str:
    """Job numbers, short: #0-3,7, or #0-33 step 3, or the first ones and how many."""
    nums = [j.num for j in jobs]
    steps = {b - a for a, b in zip(nums, nums[1:])}
    if len(nums) > 2 and len(steps) == 1 and steps != {1}:
        return f"#{nums[0]}-{nums[-1]} step {steps.pop()}"
    parts: list[list[int]] = []
    for n in nums:
        if parts and parts[-1][1] == n - 1:
            parts[-1][1] = n
        else:
            parts.append([n, n])
    shown = ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in parts[:6])
    return "#" + shown + (f",… ({len(nums)} jobs)" if len(parts) > 6 else "")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class Progress:
    """One line as each set starts and ends: set k of n, its networks and jobs, epochs, the time left."""

    def __init__(self, sets: list[list[Job]], first: int = 0, total: int | None = None):
        self.units = [_work_units(pending(s)) for s in sets]
        self.first, self.total = first, total or len(sets)
        self.n_jobs = sum(len(s) for s in sets)
        self.jobs_done, self.units_trained, self.seconds_trained = 0, 0.0, 0.0

    def _sweep(self, k: int) -> str:
        left = sum(self.units[k:])
        if not left:
            estimate = "nothing left"
        elif not self.units_trained:
            estimate = "time left unknown yet"
        else:  # at the pace of the sets trained so far
            estimate = f"about {_duration(self.seconds_trained / self.units_trained * left)} left"
        return f"sweep: {self.jobs_done}/{self.n_jobs} jobs done, {estimate}"

    def _set(self, k: int, run: SetRun) -> str:
        n_networks = sum(networks(j.task) for j in run.jobs)
        return f"set {self.first + k + 1}/{self.total}: {n_networks} networks of {len(run.jobs)} jobs ({_nums(run.jobs)}, {len(run.todo)} to train)"

    def start(self, k: int, run: SetRun) -> str:
        return f"{self._set(k, run)}; {self._sweep(k)}"

    def end(self, k: int, run: SetRun) -> str:
        seconds = time.perf_counter() - run.t_start
        self.jobs_done += len(run.jobs)
        if run.result is not None:
            self.units_trained += self.units[k]
            self.seconds_trained += seconds
        return f"{self._set(k, run)} done: {run.epochs_done()} in {_duration(seconds)}; {self._sweep(k + 1)}"


def dry_run_lines(sets: list[list[Job]], jobs: list[Job]) -> list[str]:
    """What `hydra.launcher.dry_run=true` prints: each set (shape, batch, networks, jobs, epochs, and the
    jobs complete already), the jobs that train alone (settings that do not validate), and a total."""
    lines, keys = [], [json.loads(set_key(s[0].task)) for s in sets]
    shown = ("model.hidden", "model.activation", "data.batch_size")
    varied = [k for k in keys[0] if k not in shown and len({json.dumps(d.get(k)) for d in keys}) > 1] if keys else []
    for k, s in enumerate(sets):
        t, todo = s[0].task, pending(s)
        todo_dirs = {p.out_dir for p in todo}
        done = [j for j in s if j.out_dir not in todo_dirs]
        other = "".join(f", {key} {keys[k].get(key)}" for key in varied)  # what else tells this set from the others
        lines.append(
            f"set {k + 1} of {len(sets)}: hidden {list(t.model.hidden)} {t.model.activation}, batch {t.data.batch_size}{other}, "
            f"{sum(networks(j.task) for j in todo)} networks to train in {len(todo)} of its {len(s)} jobs ({_nums(s)}), "
            f"{t.train.epochs} epochs; complete already: {_nums(done) if done else 'none'}"
        )
    alone = [j for j in jobs if j.task is None]
    if alone:
        lines.append(f"alone (settings that do not validate; each job says why when it runs): {_nums(alone)}")
    n_todo = sum(len(pending(s)) for s in sets)
    lines.append(
        f"dry run: {len(jobs)} jobs, {len(sets)} set(s), {n_todo} job(s) to train; nothing trained (no time estimate without training)"
    )
    return lines


def run_sets(sets: list[list[Job]], sweep_dir: str, run_job: Callable, first: int = 0, total: int | None = None) -> dict:
    """Train the sets one after another; `run_job(job, task_function)` runs each job through Hydra.
    Returns each job's `JobReturn` by job number."""
    progress, returns = Progress(sets, first, total), {}
    for k, jobs in enumerate(sets):
        run = SetRun(jobs, sweep_dir)
        print(progress.start(k, run), flush=True)
        for job in jobs:
            returns[job.num] = run_job(job, functools.partial(train.run_task, work=run.work))
        print(progress.end(k, run), flush=True)
    return returns
