"""What a run trains, resolved from its config once: the shape of the networks and the list of them.

`train.train` reads only a `Plan`; the DictConfig is not looked at again after `make_plan`.
A set of sweep jobs that compile to one program trains as one plan, their plans `merge`d.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import NamedTuple

import jax
import numpy as np
from omegaconf import DictConfig

from mlpjax import config, fit, model


@dataclasses.dataclass(frozen=True)
class Network:
    """One network of a run: where its parameters start and how fast it learns."""

    seed: int  # its initial parameters are `model.init_params(jax.random.key(seed), sizes, init)`
    learning_rate: float  # η before the schedule
    init: str  # the initialization scheme (model.INITS)
    order_seed: int  # its data order of epoch e is `fit.permutations([order_seed], e, n)`
    momentum: float = 0.0  # SGD's momentum (traced: networks with different momentum share a program)
    schedule: str = "cosine"  # its learning rate over the epochs (fit.SCHEDULES)


@dataclasses.dataclass(frozen=True)
class Plan:
    """A run: networks of one shape (`spec`), trained together for `epochs` epochs."""

    spec: fit.Spec  # layer sizes, activation, cost, batch size, whether there is momentum: fixes the program
    networks: tuple[Network, ...]  # learning rate major, seed minor
    epochs: int
    shuffle: str  # "shared": one data order for all networks, drawn from `data_seed`; "per_model": each its own seed's
    data_seed: int  # the run's `seed`: its shared data order, and the random probes of the minima analysis
    max_group: int  # most networks in one compiled program; 0: as many as memory allows
    checkpoint_every: int  # epochs between checkpoints
    validation: int  # the last N training images, held out
    n_train: int  # SGD's images: the first n_train of the training split
    post: dict  # config.after_sgd: the polish (most L-BFGS steps, 0: none; its tolerance) and the analysis
    identity: dict  # config.run_identity: what a checkpoint or summary must match to be this run's

    @property
    def polish(self) -> int:
        return self.post["polish"]

    @property
    def polish_tol(self) -> float:
        return self.post["polish_tol"]

    @property
    def analyze(self) -> bool:
        return self.post["analyze"]

    def order_seeds(self, networks: list[Network]) -> list[int]:
        """The seeds of the data orders of `networks`, each once, in the order first met: the one shared
        seed, or each network's own."""
        return list(dict.fromkeys(n.order_seed for n in networks))


def make_plan(cfg: DictConfig, n_inputs: int, n_images: int) -> Plan:
    """The plan of a validated config, for `n_images` training images of `n_inputs` pixels
    (of which the last `data.validation` are held out)."""
    validation = config.validation(cfg, n_images)
    n_train = config.train_images(cfg, n_images, validation)
    seeds = [cfg.seed + i for i in range(cfg.train.seeds)]
    order_seed = lambda s: cfg.seed if cfg.train.shuffle == "shared" else s
    spec = fit.Spec(
        sizes=(n_inputs, *cfg.model.hidden, 10),
        activation=cfg.model.activation,
        cost=cfg.model.cost,
        batch_size=config.batch_size(cfg, n_train),
        n_train=n_train,
        momentum=float(cfg.optim.momentum),
        diverge_norm=float(cfg.train.diverge_norm),
        l2=float(cfg.model.l2),
    )
    return Plan(
        spec=spec,
        networks=tuple(
            Network(s, lr, cfg.model.init, order_seed(s), float(cfg.optim.momentum), cfg.optim.schedule)
            for lr in config.learning_rates(cfg.optim.lr)
            for s in seeds
        ),
        epochs=cfg.train.epochs,
        shuffle=cfg.train.shuffle,
        data_seed=cfg.seed,
        max_group=cfg.train.max_group,
        checkpoint_every=cfg.train.checkpoint_every,
        validation=validation,
        n_train=n_train,
        post=config.after_sgd(cfg),
        identity=config.run_identity(cfg),
    )


def merge(plans: list[Plan], identity: dict) -> Plan:
    """One plan for the networks of `plans` (plans of one program: same spec but momentum, same epochs and data),
    in their order. The post-processing fields are the first plan's and unused: each job finishes its
    own networks with its own plan (`train.finish_job`)."""
    if len(plans) == 1:
        return plans[0]
    networks = tuple(n for p in plans for n in p.networks)
    # One optimizer state for all: with a momentum trace if any network has momentum (0 in it is plain SGD).
    spec = dataclasses.replace(plans[0].spec, momentum=max(p.spec.momentum for p in plans))
    return dataclasses.replace(plans[0], spec=spec, networks=networks, identity=identity)


class Program(NamedTuple):
    """The networks of one compiled program, as indices into `Plan.networks`, laid out order-major:
    `orders` runs of equal length, the networks of a run sharing one data order. Padding repeats an index."""

    index: tuple[int, ...]
    orders: int

    def order_seeds(self, networks: tuple[Network, ...]) -> list[int]:
        """The seed of each run's data order."""
        return [networks[i].order_seed for i in self.index[:: len(self.index) // self.orders]]


def chunk_size(plan: Plan, data_bytes: int) -> int:
    """Networks per compiled program: as many as half the device memory left after the data
    holds (or `plan.max_group`), rounded up to a multiple of the number of devices."""
    spec, G = plan.spec, len(plan.networks)
    P = model.count_for_sizes(list(spec.sizes))
    units = sum(spec.sizes[1:])
    # float32 parameters, gradients, optimizer state and update; activations of a batch and of an evaluation chunk.
    per_model = 4 * (4 * P + 3 * spec.batch_size * units + 3 * fit.EVAL_CHUNK * units)
    if len(plan.order_seeds(plan.networks)) > 1 and not spec.full_batch:
        per_model += 4 * spec.batch_size * spec.sizes[0]  # at most one gathered mini-batch per network
    stats = jax.devices()[0].memory_stats() or {}
    total = stats.get("bytes_limit") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    chunk = min(G, max(1, int((total - data_bytes) * 0.5) // per_model), plan.max_group or G)
    n_dev = jax.device_count()
    if n_dev > 1 and G > 1:
        chunk = -(-chunk // n_dev) * n_dev
    return chunk


def chunks(plan: Plan, data_bytes: int) -> list[Program]:
    """The networks cut into programs of equal shape, so that each shape compiles once.

    Networks are gathered into runs that share a data order (one mini-batch gather per run).
    Runs longer than a program are cut into programs of one order each, the last piece padded
    with its last network; shorter runs are padded to the longest with copies of their last
    network and packed, as many as fit, into programs of several orders, the last program
    padded with copies of its last run."""
    size = chunk_size(plan, data_bytes)
    runs = [[i for i, n in enumerate(plan.networks) if n.order_seed == s] for s in plan.order_seeds(plan.networks)]
    M = max(len(r) for r in runs)
    if M >= size or len(runs) == 1:
        pieces = [r[c : c + size] for r in runs for c in range(0, len(r), size)]
        return [Program(tuple(p + [p[-1]] * (size - len(p))), 1) for p in pieces]
    runs = [r + [r[-1]] * (M - len(r)) for r in runs]
    n = -(-len(runs) // (size // M))
    per_program = -(-len(runs) // n)  # as even as possible: the least padding
    n_dev = jax.device_count()
    step = n_dev // math.gcd(M, n_dev)  # a program splits evenly over the devices
    per_program = -(-per_program // step) * step
    runs += [runs[-1]] * (-(-len(runs) // per_program) * per_program - len(runs))
    return [Program(tuple(i for r in runs[c : c + per_program] for i in r), per_program) for c in range(0, len(runs), per_program)]


def positions(programs: list[Program], n_networks: int) -> np.ndarray:
    """Where each network's result is in the programs' outputs concatenated: its first slot, shape (G,)."""
    first: dict[int, int] = {}
    for pos, i in enumerate(i for p in programs for i in p.index):
        first.setdefault(i, pos)
    return np.array([first[g] for g in range(n_networks)])
