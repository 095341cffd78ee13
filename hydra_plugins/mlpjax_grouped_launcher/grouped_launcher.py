"""The grouped launcher: a sweep's jobs sorted into sets that compile to one program, each set
trained as one group (mlpjax/sweep.py), each job's outputs written through Hydra's `run_job`.

Sets run one after another in this process (`backend=local`), or one submitit job per set
(`submitit_local`, `submitit_slurm`). The task function must be mlpjax.train's; another app's
jobs run one by one, as under the basic launcher. Only Hydra is imported here: Hydra imports
every plugin module at start-up, and mlpjax (JAX) loads only when a sweep is launched.
"""

from __future__ import annotations

import copy
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from .config import BACKENDS

log = logging.getLogger(__name__)


class GroupedLauncher(Launcher):
    def __init__(self, backend: str = "local", dry_run: bool = False, **params: Any) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"hydra.launcher.backend={backend!r}: must be one of {', '.join(BACKENDS)}")
        self.backend, self.dry_run = backend, bool(dry_run)
        self.params = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v for k, v in params.items()}
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function
        # The sweeper shares this context: it composes every job once to validate the batch, then
        # calls `launch`, which needs the same configs (0.14 s each on 2 cores, a third of a 64-job sweep).
        if not isinstance(hydra_context.config_loader, _ComposedOnce):
            hydra_context.config_loader = _ComposedOnce(hydra_context.config_loader)

    # ----------------------------------------------------------------- in the launching process

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = os.path.abspath(str(self.config.hydra.sweep.dir))
        Path(sweep_dir).mkdir(parents=True, exist_ok=True)
        nums = range(initial_job_idx, initial_job_idx + len(job_overrides))
        if getattr(self.task_function, "__module__", None) != "mlpjax.train":  # not mlpjax's jobs: nothing to group
            return [self._run(self._compose(list(o), n, str(n)), self.task_function) for o, n in zip(job_overrides, nums)]

        from mlpjax import sweep

        jobs = [self._compose(list(o), n, str(n)) for o, n in zip(job_overrides, nums)]
        self.hydra_context.config_loader.forget()
        sets = sweep.group(jobs)
        log.info(f"Launching {len(jobs)} jobs in {len(sets)} set(s) of one program each, backend {self.backend}")
        set_of = {j.num: k for k, s in enumerate(sets) for j in s}
        for j in jobs:
            log.info(
                f"\t#{j.num} : {' '.join(filter_overrides(j.overrides))}  ["
                + (f"set {set_of[j.num] + 1}]" if j.num in set_of else "alone]")
            )
        if self.dry_run:
            print("\n".join(sweep.dry_run_lines(sets, jobs)), flush=True)
            sys.exit(0)
        # A job whose settings do not validate runs alone: its task reports why, as under the basic launcher.
        returns = {j.num: self._run(j, self.task_function) for j in jobs if j.task is None}
        if self.backend == "local":
            returns |= sweep.run_sets(sets, sweep_dir, self._run)
        else:
            returns |= self._submit(sets, sweep_dir)
        return [returns[n] for n in nums]

    def _compose(self, overrides: list[str], num: int, job_id: str):
        """The job as the basic launcher composes it, its dir and its settings resolved under its own Hydra config."""
        from mlpjax import config, sweep

        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(cfg):
            cfg.hydra.job.id, cfg.hydra.job.num = job_id, num
        previous = HydraConfig.instance().cfg
        HydraConfig.instance().set_config(cfg)  # ${hydra:job.num} and the like resolve to this job's
        try:
            out_dir = os.path.abspath(os.path.join(str(cfg.hydra.sweep.dir), str(cfg.hydra.sweep.subdir)))
            try:  # the job's own settings, resolved: all but the `hydra` node
                task = OmegaConf.create(
                    {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v for k, v in cfg.items() if k != "hydra"}
                )
                config.validate(task)
            except Exception:  # any failure to resolve or validate: the job's own run reports it
                task = None
        finally:
            HydraConfig.instance().cfg = previous
        return sweep.Job(num, overrides, cfg, out_dir, task)

    def _run(self, job, task_function: TaskFunction) -> JobReturn:
        """One job through Hydra's own `run_job`: .hydra files, callbacks, env_set, chdir."""
        ret = run_job(
            hydra_context=self.hydra_context,
            task_function=task_function,
            config=job.config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return ret

    def _submit(self, sets: list, sweep_dir: str) -> dict[int, JobReturn]:
        """One submitit job per set with pending jobs; sets already complete run here (they only say so)."""
        import submitit

        from mlpjax import sweep

        params = dict(self.params)
        executor = submitit.AutoExecutor(
            folder=params.pop("submitit_folder"),
            cluster=self.backend.removeprefix("submitit_"),
            slurm_max_num_timeout=params.pop("max_num_timeout"),
        )
        generic = {"timeout_min", "cpus_per_task", "gpus_per_node", "tasks_per_node", "mem_gb", "nodes", "name", "stderr_to_stdout"}
        executor.update_parameters(**{k if k in generic else f"slurm_{k}": v for k, v in params.items()})
        todo = [k for k, s in enumerate(sets) if sweep.pending(s)]
        returns = sweep.run_sets([s for k, s in enumerate(sets) if k not in todo], sweep_dir, self._run)
        args = [([(j.overrides, j.num) for j in sets[k]], k, len(sets), Singleton.get_state()) for k in todo]
        submitted = executor.map_array(self, *zip(*args)) if args else []
        for k, job in zip(todo, submitted):
            log.info(f"set {k + 1}/{len(sets)}: submitit job {job.job_id}")
        for k, job in zip(todo, submitted):
            try:
                returns |= job.results()[0]
            except Exception as e:  # the set's process itself failed (killed, out of memory): its jobs say so
                returns |= {
                    j.num: _failed(j, f"set {k + 1} (submitit job {job.job_id}) failed: {str(e).strip().splitlines()[-1]}") for j in sets[k]
                }
        return returns

    # ----------------------------------------------------------------- in a set's submitit job

    def __call__(self, jobs: list[tuple[list[str], int]], k: int, n_sets: int, singleton_state: dict) -> dict[int, JobReturn]:
        import submitit

        from mlpjax import sweep

        Singleton.set_state(singleton_state)
        setup_globals()
        job_id = submitit.JobEnvironment().job_id  # hydra.job.id: the job in the cluster's queue, shared by the set
        composed = [self._compose(overrides, num, job_id) for overrides, num in jobs]
        return sweep.run_sets([composed], os.path.abspath(str(self.config.hydra.sweep.dir)), self._run, first=k, total=n_sets)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Preempted or timed out on SLURM: submit the set again; it resumes from its checkpoint."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


class _ComposedOnce:
    """Hydra's config loader, handing a sweep job's config composed for the sweeper's validation to
    the launcher instead of composing it again. Each config is handed over once (then forgotten), so
    nobody shares a mutable config; every other call goes to Hydra's loader unchanged."""

    def __init__(self, loader) -> None:
        self._loader = loader
        self._composed: dict[tuple[int, tuple[str, ...]], DictConfig] = {}

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        key = (id(master_config), tuple(sweep_overrides))
        if key in self._composed:
            return self._composed.pop(key)
        cfg = self._loader.load_sweep_config(master_config, sweep_overrides)
        self._composed[key] = copy.deepcopy(cfg)
        return cfg

    def forget(self) -> None:
        self._composed.clear()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_loader":  # unpickling (a set's submitit job) asks before _loader is set
            raise AttributeError(name)
        return getattr(self._loader, name)


def _failed(job, message: str) -> JobReturn:
    """The return of a job that never ran: error.txt in its dir and one line on stderr, as a failed job of the basic launcher."""
    os.makedirs(job.out_dir, exist_ok=True)
    with open(os.path.join(job.out_dir, "error.txt"), "w") as f:
        f.write(message + "\n")
    print(f"error (job {job.num}: {' '.join(filter_overrides(job.overrides))}): {message}", file=sys.stderr, flush=True)
    return JobReturn(overrides=job.overrides, cfg=job.task, working_dir=job.out_dir, status=JobStatus.COMPLETED)
