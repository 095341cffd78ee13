"""What a run trains, resolved from its config once: the shape of the networks and the list of them.

`train.train` reads only a `Plan`; the DictConfig is not looked at again after `make_plan`.
"""

from __future__ import annotations

import dataclasses
import os

import jax
from omegaconf import DictConfig

from mlpjax import config, fit, model


@dataclasses.dataclass(frozen=True)
class Network:
    """One network of a run: where its parameters start and how fast it learns."""

    seed: int  # its initial parameters are `model.init_params(jax.random.key(seed))`
    learning_rate: float  # η before the schedule


@dataclasses.dataclass(frozen=True)
class Plan:
    """A run: networks of one shape (`spec`), trained together for `epochs` epochs."""

    spec: fit.Spec  # layer sizes, activation, cost, batch size, momentum: fixes the program
    init: str  # the initialization scheme (model.INITS)
    networks: tuple[Network, ...]  # learning rate major, seed minor
    epochs: int
    schedule: str  # the learning rate over the epochs (fit.SCHEDULES)
    shuffle: str  # "shared": one data order for all networks, drawn from `data_seed`; "per_model": each its own seed's
    data_seed: int
    max_group: int  # most networks in one compiled program; 0: as many as memory allows
    checkpoint_every: int  # epochs between checkpoints
    validation: int  # the last N training images, held out
    polish: int  # most L-BFGS steps after SGD (0: none)
    polish_tol: float  # the polish stops at |∇C| <= polish_tol
    analyze: bool  # the minima analysis after training
    identity: dict  # config.run_identity: what a checkpoint or summary must match to be this run's

    @property
    def post(self) -> dict:
        """What is done after SGD; a complete run with other post settings is finished again from its last checkpoint."""
        return {"analyze": self.analyze, "polish": self.polish, "polish_tol": self.polish_tol}

    @property
    def shared_order(self) -> bool:
        return self.shuffle == "shared"

    def order_seeds(self, networks: list[Network]) -> list[int]:
        """The seeds of the data orders of `networks`: one shared seed, or one per network."""
        return [self.data_seed] if self.shared_order else [n.seed for n in networks]


def make_plan(cfg: DictConfig, n_inputs: int, n_images: int) -> Plan:
    """The plan of a validated config, for `n_images` training images of `n_inputs` pixels
    (of which the last `data.validation` are held out)."""
    validation = config.validation(cfg, n_images)
    n_train = n_images - validation
    seeds = [cfg.seed + i for i in range(cfg.train.seeds)]
    spec = fit.Spec(
        sizes=(n_inputs, *cfg.model.hidden, 10),
        activation=cfg.model.activation,
        cost=cfg.model.cost,
        batch_size=config.batch_size(cfg, n_train),
        n_train=n_train,
        momentum=float(cfg.optim.momentum),
        diverge_norm=float(cfg.train.diverge_norm),
    )
    return Plan(
        spec=spec,
        init=cfg.model.init,
        networks=tuple(Network(s, lr) for lr in config.learning_rates(cfg.optim.lr) for s in seeds),
        epochs=cfg.train.epochs,
        schedule=cfg.optim.schedule,
        shuffle=cfg.train.shuffle,
        data_seed=cfg.seed,
        max_group=cfg.train.max_group,
        checkpoint_every=cfg.train.checkpoint_every,
        validation=validation,
        polish=cfg.train.polish,
        polish_tol=float(cfg.train.polish_tol),
        analyze=cfg.train.analyze,
        identity=config.run_identity(cfg),
    )


def chunk_size(plan: Plan, data_bytes: int) -> int:
    """Networks per compiled program: as many as half the device memory left after the data
    holds (or `plan.max_group`), rounded up to a multiple of the number of devices."""
    spec, G = plan.spec, len(plan.networks)
    P = model.count_for_sizes(list(spec.sizes))
    units = sum(spec.sizes[1:])
    # float32 parameters, gradients, optimizer state and update; activations of a batch and of an evaluation chunk.
    per_model = 4 * (4 * P + 3 * spec.batch_size * units + 3 * fit.EVAL_CHUNK * units)
    if not plan.shared_order and not spec.full_batch:
        per_model += 4 * spec.batch_size * spec.sizes[0]  # each network gathers its own mini-batch
    stats = jax.devices()[0].memory_stats() or {}
    total = stats.get("bytes_limit") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    chunk = min(G, max(1, int((total - data_bytes) * 0.5) // per_model), plan.max_group or G)
    n_dev = jax.device_count()
    if n_dev > 1 and G > 1:
        chunk = -(-chunk // n_dev) * n_dev
    return chunk


def chunks(plan: Plan, data_bytes: int) -> list[list[Network]]:
    """The networks cut into equal chunks, one compiled program each; the last is padded with
    copies of the last network, so that every chunk has one shape and compiles once."""
    size = chunk_size(plan, data_bytes)
    n = -(-len(plan.networks) // size)
    padded = list(plan.networks) + [plan.networks[-1]] * (n * size - len(plan.networks))
    return [padded[c * size : (c + 1) * size] for c in range(n)]
