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
from hydra.core.utils import JobReturn, JobRuntime, JobStatus, _flush_loggers, configure_log, env_override, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

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
        """One job as Hydra's `run_job` runs it (its dir, .hydra/ files, job logging, env_set, chdir,
        callbacks, the JobReturn) without the four copies of the config `run_job` makes: each job's
        config is its own here (`_ComposedOnce` hands every job a fresh one), so it is used in place.
        On 2 cores this is 40 ms a job less (benchmarks/grouped_sweep.py)."""
        config, callbacks = job.config, self.hydra_context.callbacks
        old_cwd, orig_hydra_cfg = os.getcwd(), HydraConfig.instance().cfg
        output_dir = os.path.abspath(os.path.join(str(config.hydra.sweep.dir), str(config.hydra.sweep.subdir)))
        with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
            config.hydra.runtime.output_dir = output_dir
        OmegaConf.set_readonly(config.hydra, True)
        HydraConfig.instance().cfg = config  # HydraConfig.get() is its `hydra` node, as after set_config
        chdir = bool(config.hydra.job.chdir)
        try:
            task_cfg = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])  # unresolved, as run_job's
            OmegaConf.set_struct(task_cfg, True)
            ret = JobReturn(overrides=OmegaConf.to_container(config.hydra.overrides.task), cfg=task_cfg)
            ret.hydra_cfg = OmegaConf.masked_copy(config, "hydra")
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            if chdir:
                os.chdir(output_dir)
            ret.working_dir = output_dir if chdir else os.getcwd()
            configure_log(config.hydra.job_logging, config.hydra.verbose)
            if config.hydra.output_subdir is not None:
                out = Path(output_dir) / str(config.hydra.output_subdir)
                out.mkdir(parents=True, exist_ok=True)
                (out / "config.yaml").write_text(OmegaConf.to_yaml(task_cfg), encoding="utf-8")
                (out / "hydra.yaml").write_text(OmegaConf.to_yaml(ret.hydra_cfg), encoding="utf-8")
                (out / "overrides.yaml").write_text(OmegaConf.to_yaml(config.hydra.overrides.task), encoding="utf-8")
            with env_override(OmegaConf.to_container(config.hydra.job.env_set)):
                callbacks.on_job_start(config=config, task_function=task_function)
                try:
                    ret.return_value, ret.status = task_function(task_cfg), JobStatus.COMPLETED
                except Exception as e:
                    ret.return_value, ret.status = e, JobStatus.FAILED
            ret.task_name = JobRuntime.instance().get("name")
            _flush_loggers()
            callbacks.on_job_end(config=config, job_return=ret)
            return ret
        finally:
            HydraConfig.instance().cfg = orig_hydra_cfg
            if chdir:
                os.chdir(old_cwd)
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)

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
    """Hydra's config loader, composing each sweep job's config once and most of them not at all.

    - A job whose overrides differ from an earlier job's only in plain values (`key=value` of a key that
      is not a config group, not under `hydra.`, a value that is not a dict) gets that job's composed
      config with the values set as Hydra sets overrides (`OmegaConf.update(..., merge=True)`) and its
      `hydra.overrides.task` and `hydra.job.override_dirname` rewritten: the defaults list, the slow part
      of composing (0.15 s a job on 2 cores), is the same. Anything else, or a value the schema refuses,
      is composed by Hydra, which raises its own error.
    - The config composed for the sweeper's validation of a batch is handed to the launcher (once, then
      forgotten), instead of being composed again; the sweeper only checks that it composes.
    Every other call goes to Hydra's loader unchanged."""

    def __init__(self, loader) -> None:
        self._loader = loader
        self._composed: dict[tuple[int, tuple[str, ...]], DictConfig] = {}
        self._templates: dict[tuple, DictConfig] = {}

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        key = (id(master_config), tuple(sweep_overrides))
        if key in self._composed:
            return self._composed.pop(key)
        shape, plain, parsed = self._shape(master_config, sweep_overrides)
        cfg = self._derive(master_config, self._templates.get(shape), plain, parsed) if shape is not None else None
        if cfg is None:
            cfg = self._loader.load_sweep_config(master_config, sweep_overrides)
            if shape is not None:
                self._templates[shape] = copy.deepcopy(cfg)
        # The sweeper only checks that the job composes (`Sweeper.validate_batch_is_legal` drops what it
        # gets): the launcher is handed this same config, not a copy (a copy is 10 ms a job).
        self._composed[key] = cfg
        return cfg

    def _shape(self, master_config: DictConfig, overrides: list[str]):
        """(what a template must share: the overrides that are not plain values and the plain keys;
        the plain overrides; every override parsed), or (None, …) when they do not parse."""
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.core.override_parser.types import OverrideType

        try:
            parsed = OverridesParser.create().parse_overrides(list(overrides))
            groups = master_config.hydra.runtime.choices
        except Exception:  # overrides Hydra will refuse, or a master config without a hydra node
            return None, [], []
        is_plain = lambda o: (
            o.type == OverrideType.CHANGE
            and o.package is None
            and not o.is_sweep_override()
            and not o.is_hydra_override()
            and o.key_or_group not in groups
            and not isinstance(o.value(), dict)
        )
        plain = [o for o in parsed if is_plain(o)]
        shape = (id(master_config), tuple(o.input_line for o in parsed if not is_plain(o)), tuple(o.key_or_group for o in plain))
        return shape, plain, parsed

    def _derive(self, master_config: DictConfig, template: DictConfig | None, plain: list, parsed: list) -> DictConfig | None:
        if template is None:
            return None
        from hydra._internal.config_loader_impl import get_overrides_dirname

        cfg = copy.deepcopy(template)
        try:
            for o in plain:
                OmegaConf.update(cfg, o.key_or_group, o.value(), merge=True)
        except Exception:  # a value the schema refuses: Hydra composes the job and says why
            return None
        app = [o for o in parsed if not o.is_hydra_override()]
        dirname = cfg.hydra.job.config.override_dirname
        with open_dict(cfg.hydra):
            cfg.hydra.overrides.task = [o.input_line for o in app]
            cfg.hydra.job.override_dirname = get_overrides_dirname(
                overrides=app, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys
            )
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
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
