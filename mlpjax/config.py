"""The typed configuration schema and the validation of every user-facing option.

Hydra composes `conf/config.yaml` on top of `Config` (registered as `base_config`).
Options that take one of several shapes (`optim.lr`: a number or a list; `data.batch_size`:
an integer or `full`) are typed `Any` for OmegaConf and checked here, so that every bad
value ends in one line: `error: KEY=VALUE: WHAT IS ALLOWED`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from typing import Any, Optional

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf

from mlpjax import cost, fit, model

SHUFFLES = ("shared", "per_model")


@dataclasses.dataclass
class ModelConfig:
    hidden: list[int] = dataclasses.field(default_factory=lambda: [16, 16])
    activation: str = "sigmoid"
    init: str = "lecun"
    cost: str = "quadratic"
    l2: float = 0.0  # λ of the (λ/2)‖θ‖² added to the cost everywhere: training, polish, critical points, analyses


@dataclasses.dataclass
class OptimConfig:
    lr: Any = 1.0  # a number, or a list of numbers trained together as one group
    momentum: float = 0.0
    schedule: str = "cosine"  # learning rate over the epochs: constant, or cosine decay to 0


@dataclasses.dataclass
class DataConfig:
    batch_size: Any = 32  # an integer, or "full" for full-batch gradient descent
    idx_dir: Optional[str] = None  # folder with the four IDX files; None: tfds download
    data_dir: str = "~/tensorflow_datasets"  # where tfds keeps the prepared dataset
    validation: int = 0  # the last N training images, held out from training
    train_images: int = 0  # train on the first N of the rest; 0: all of them


@dataclasses.dataclass
class TrainConfig:
    epochs: int = 40
    seeds: int = 1  # networks per learning rate: seeds seed, seed+1, …, seed+seeds-1
    shuffle: str = "shared"  # one data order for the whole group, or one per network
    max_group: int = 0  # most networks compiled into one program; 0: as many as memory allows
    diverge_norm: float = 1e4  # a network whose parameter norm passes this is marked diverged
    checkpoint_every: int = 5  # epochs between saves of the whole training state
    analyze: bool = False  # after training: the minima (landscape.endpoints.analyze_group) into summary.json
    polish: int = 0  # after SGD: up to N steps of full-batch L-BFGS (landscape.polish)
    polish_tol: float = 1e-3  # the polish stops at |∇C| <= polish_tol
    objective: str = "validation_cost"  # what a job returns to a sweeper: the mean of this over its networks


@dataclasses.dataclass
class Config:
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    seed: int = 0


def register() -> None:
    ConfigStore.instance().store(name="base_config", node=Config)


CONF_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conf")


def compose(overrides: list[str] = ()) -> DictConfig:
    """The config `python -m mlpjax.train OVERRIDES…` would run (without its `hydra` node),
    e.g. `compose(["model.activation=relu"])`, for notebooks and tests."""
    register()
    with hydra.initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return hydra.compose("config", overrides=list(overrides))


class ConfigError(Exception):
    """A user's configuration mistake; the message is one line."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    """A finite int or float (not a bool): 1e309 reads as inf, which no option accepts."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _choice(allowed: tuple[str, ...]) -> Callable[[Any], Optional[str]]:
    return lambda v: None if v in allowed else f"one of {', '.join(allowed)}"


def _int_at_least(low: int) -> Callable[[Any], Optional[str]]:
    return lambda v: None if _is_int(v) and v >= low else f"an integer >= {low}"


def _check_hidden(v: Any) -> Optional[str]:
    ok = isinstance(v, (list, tuple, ListConfig)) and all(_is_int(h) and h >= 1 for h in v)
    return None if ok else "a list of layer sizes, each an integer >= 1, e.g. [16,16] or []"


def _check_lr(v: Any) -> Optional[str]:
    values = list(v) if isinstance(v, (list, tuple, ListConfig)) else [v]
    ok = len(values) > 0 and all(_is_number(x) and x > 0 for x in values)
    return None if ok else "a number > 0 and finite, or a non-empty list of them, e.g. 3.0 or [0.1,1,3]"


def _check_momentum(v: Any) -> Optional[str]:
    return None if _is_number(v) and 0 <= v < 1 else "a number in [0, 1)"


def _check_batch_size(v: Any) -> Optional[str]:
    return None if v == "full" or (_is_int(v) and v >= 1) else "an integer >= 1, or full"


def _check_idx_dir(v: Any) -> Optional[str]:
    if v is None:
        return None
    if not isinstance(v, str) or not os.path.isdir(os.path.expanduser(v)):
        return "an existing folder holding the four MNIST IDX files (or null to download through tfds)"
    return None


def _check_str(v: Any) -> Optional[str]:
    return None if isinstance(v, str) and v else "a path"


# Every user-facing key and its check; a check returns None or what is allowed.
CHECKS: dict[str, Callable[[Any], Optional[str]]] = {
    "model.hidden": _check_hidden,
    "model.activation": _choice(tuple(model.ACTIVATIONS)),
    "model.init": _choice(model.INITS),
    "model.cost": _choice(cost.COSTS),
    "model.l2": lambda v: None if _is_number(v) and v >= 0 else "a number >= 0 and finite (λ of (λ/2)‖θ‖²; 0: no regularizer)",
    "optim.lr": _check_lr,
    "optim.momentum": _check_momentum,
    "optim.schedule": _choice(fit.SCHEDULES),
    "data.batch_size": _check_batch_size,
    "data.idx_dir": _check_idx_dir,
    "data.data_dir": _check_str,
    "data.validation": _int_at_least(0),
    "data.train_images": _int_at_least(0),
    "train.epochs": _int_at_least(1),
    "train.seeds": _int_at_least(1),
    "train.shuffle": _choice(SHUFFLES),
    "train.max_group": _int_at_least(0),
    "train.diverge_norm": lambda v: None if _is_number(v) and v > 0 else "a number > 0 and finite",
    "train.checkpoint_every": _int_at_least(1),
    "train.analyze": lambda v: None if isinstance(v, bool) else "true or false",
    "train.polish": _int_at_least(0),
    "train.polish_tol": lambda v: None if _is_number(v) and v > 0 else "a number > 0 and finite",
    "train.objective": _choice(("validation_accuracy", "validation_cost", "train_cost", "train_accuracy")),
    "seed": _int_at_least(0),
}


def check(key: str, value: Any) -> None:
    """Raise ConfigError if `value` is not allowed for `key` (or `key` is unknown)."""
    if key not in CHECKS:
        raise ConfigError(f"unknown key {key!r}; known keys: {', '.join(CHECKS)}")
    allowed = CHECKS[key](value)
    if allowed is not None:
        shown = OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
        raise ConfigError(f"{key}={shown!r}: must be {allowed}")


def _select(cfg: DictConfig, key: str) -> Any:
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=True)
    except Exception as e:  # an interpolation that cannot resolve, e.g. a missing env var
        raise ConfigError(f"{key}: {type(e).__name__}: {str(e).splitlines()[0]}") from None


def validate(cfg: DictConfig) -> None:
    """Check every user-facing option of a composed config; raise ConfigError on the first bad one."""
    for key in CHECKS:
        check(key, _select(cfg, key))


def learning_rates(lr: Any) -> list[float]:
    """The value of `optim.lr` (a number or a list of numbers) as a list of floats."""
    return [float(x) for x in lr] if isinstance(lr, (list, tuple, ListConfig)) else [float(lr)]


# Settings that change nothing SGD learns: where data is kept, how often it is saved, what is
# done with the result afterwards (analyzed, polished: `after_sgd`).
AFTER_SGD = ("train.analyze", "train.polish", "train.polish_tol", "train.objective")
NOT_LEARNED = ("data.data_dir", "train.checkpoint_every", *AFTER_SGD)


def after_sgd(cfg: DictConfig) -> dict:
    """What a run does with its networks after SGD: `{"analyze", "polish", "polish_tol"}`. A complete
    run whose settings here differ is finished again from the checkpoint of its last epoch."""
    return {"analyze": bool(cfg.train.analyze), "polish": int(cfg.train.polish), "polish_tol": float(cfg.train.polish_tol)}


# How a sweeper should read each objective (hydra.sweeper.direction for Optuna and the like).
OBJECTIVE_DIRECTION = {
    "validation_accuracy": "maximize",
    "train_accuracy": "maximize",
    "validation_cost": "minimize",
    "train_cost": "minimize",
}


# A run's identity: the settings a checkpoint must share to be resumed. `train.epochs` is left
# out, so that a longer run continues a shorter one; `train.max_group` stays (it shapes the state).
NOT_RUN_IDENTITY = (*NOT_LEARNED, "train.epochs")
# A configuration (one row of the report): what the networks of a run share, whatever their seeds
# and however the work was split; the data folder's path may differ between machines.
NOT_CONFIGURATION = (*NOT_LEARNED, "seed", "train.seeds", "train.max_group", "data.idx_dir")


def flatten(d: dict, prefix: str = "") -> dict:
    """{"model": {"hidden": [16]}} → {"model.hidden": [16]}."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def run_identity(cfg: DictConfig) -> dict:
    """The settings that make two runs the same run: flat `{"model.hidden": [16, 16], …}`."""
    flat = flatten(OmegaConf.to_container(cfg, resolve=True))
    # λ = 0 and all training images are what runs did before these keys existed: their checkpoints and summaries still match.
    for key in ("model.l2", "data.train_images"):
        if flat.get(key) == 0:
            del flat[key]
    return {k: v for k, v in flat.items() if k not in NOT_RUN_IDENTITY}


def validation(cfg: DictConfig, n_images: int) -> int:
    """The number of training images held out for validation, checked against the `n_images` there are."""
    n = cfg.data.validation
    if n >= n_images:
        raise ConfigError(
            f"data.validation={n!r}: must be an integer in 0..{n_images - 1} (training images held out; there are {n_images})"
        )
    return int(n)


def train_images(cfg: DictConfig, n_images: int, validation: int) -> int:
    """The number of training images SGD sees: the first `data.train_images` of those not held out (0: all)."""
    n, available = cfg.data.train_images, n_images - validation
    if n > available:
        raise ConfigError(
            f"data.train_images={n!r}: must be an integer in 0..{available} (0: all; {n_images} training images, "
            f"{validation} held out for validation)"
        )
    return int(n or available)


def batch_size(cfg: DictConfig, n_train: int) -> int:
    """The mini-batch size in examples; `full` is the whole training set."""
    bs = cfg.data.batch_size
    if bs == "full":
        return n_train
    if bs > n_train:
        raise ConfigError(f"data.batch_size={bs!r}: must be 'full' or an integer in 1..{n_train} (the training set size)")
    return int(bs)
