"""Training: one compiled epoch of mini-batch SGD, vmapped over a group of G networks.

A group is G networks of the same shape that differ in what does not change array
shapes (seed, learning rate). Their parameters are stacked on a leading axis G, and one
jitted program runs an epoch of all of them: `lax.scan` over the mini-batches of the
training set, which stays on the device. Learning rates are traced values (Optax's
`inject_hyperparams`), so a new learning rate never recompiles.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlpjax import cost, model


@dataclasses.dataclass(frozen=True)
class Spec:
    """What fixes the compiled program: the network's shape, nonlinearity, cost and batching."""

    sizes: tuple[int, ...]
    activation: str
    cost: str
    batch_size: int  # examples per mini-batch; the training set size for full-batch GD
    n_train: int
    momentum: float = 0.0  # > 0: the optimizer keeps a momentum trace; each network's own value is traced
    diverge_norm: float = 1e4  # a parameter norm above this counts as diverged
    l2: float = 0.0  # λ of the (λ/2)‖θ‖² in the cost SGD descends (`cost.network_cost`)

    @property
    def steps_per_epoch(self) -> int:
        # The last partial mini-batch is dropped; reshuffling every epoch means each
        # example is still seen in almost every epoch.
        return self.n_train // self.batch_size

    @property
    def full_batch(self) -> bool:
        return self.batch_size == self.n_train


class Group(NamedTuple):
    """The state of G networks; every leaf has a leading axis G."""

    params: model.Params
    opt_state: optax.OptState
    alive_G: jax.Array  # bool: False once a network diverged; it then stops updating


def optimizer(momentum: float) -> optax.GradientTransformation:
    """SGD whose learning rate and momentum live in the optimizer state (traced, per network). Momentum 0:
    no trace at all; a network with momentum 0 in a program with a trace updates by g + 0·trace = g."""
    return optax.inject_hyperparams(optax.sgd)(learning_rate=0.0, momentum=momentum or None)


def init_group(spec: Spec, init: str | Sequence[str], seeds_G: np.ndarray, lrs_G: np.ndarray, momenta_G: np.ndarray | None = None) -> Group:
    """G fresh networks: network g starts from `init_params(key(seeds_G[g]), sizes, init)` (or `init[g]`,
    one scheme per network) with learning rate `lrs_G[g]` and momentum `momenta_G[g]` (default: `spec.momentum`)."""
    inits_G = [init] * len(seeds_G) if isinstance(init, str) else list(init)
    # Network by network, with the one program `init_params` compiles for this shape (so a network
    # rebuilt from its seed is the same bits): a draw vmapped over the group compiled again for every
    # group size, 1-3 s each on a CPU.
    nets = [model.init_params(jax.random.key(np.uint32(s)), spec.sizes, name) for s, name in zip(seeds_G, inits_G)]
    # device_put, not jnp.asarray: in this JAX, jnp.asarray of a NumPy array compiles a program per shape.
    params = jax.tree.map(lambda *xs: jax.device_put(np.stack(xs)), *nets)
    opt_state = jax.vmap(optimizer(spec.momentum).init)(params)
    if spec.momentum and momenta_G is not None:
        hyperparams = opt_state.hyperparams | {"momentum": jnp.asarray(momenta_G, jnp.float32)}
        opt_state = opt_state._replace(hyperparams=hyperparams)
    return set_learning_rates(Group(params, opt_state, jnp.ones(len(seeds_G), bool)), lrs_G)


def _train_epoch_one(params, opt_state, x_NxD, y_NxK, perm_N, spec: Spec):
    """One epoch of one network. Returns (params, opt_state, mean mini-batch cost, mean |∇C|)."""
    opt = optimizer(spec.momentum)
    grad_fn = jax.value_and_grad(cost.network_cost)

    def step(carry, idx_B):
        params, opt_state = carry
        if spec.full_batch:
            x_BxD, y_BxK = x_NxD, y_NxK
        else:
            x_BxD, y_BxK = x_NxD[idx_B], y_NxK[idx_B]
        c, grads = grad_fn(params, x_BxD, y_BxK, spec.activation, spec.cost, spec.l2)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), (c, optax.tree.norm(grads))

    S, B = spec.steps_per_epoch, spec.batch_size
    idx_SxB = perm_N[: S * B].reshape(S, B)
    (params, opt_state), (c_S, gnorm_S) = jax.lax.scan(step, (params, opt_state), idx_SxB)
    return params, opt_state, jnp.mean(c_S), jnp.mean(gnorm_S)


@functools.partial(jax.jit, static_argnames=("spec",), donate_argnums=(0,))
def train_epoch(group: Group, x_NxD, y_NxK, perm, spec: Spec):
    """One epoch of every network in the group, as one compiled program.

    `perm` is the data order: `perm_N` for all networks, or `perm_OxN`, O orders for networks laid
    out order-major (the first G/O networks see order 0, the next G/O order 1, …; O = 1: one shared
    order, O = G: one per network). A network whose epoch ends with a non-finite cost, or
    with a parameter norm that is not finite or above `spec.diverge_norm`, is marked
    diverged and keeps the parameters it had before that epoch.
    Returns the new group and per-network `walk_cost_G` (mean mini-batch cost over the
    epoch), `grad_norm_G` (mean |∇C| per step) and `param_norm_G`.
    """
    G = group.alive_G.shape[0]
    perm_OxN = perm.reshape(-1, perm.shape[-1])
    O = perm_OxN.shape[0]
    if G == 1:
        # One network: run it unbatched, since a batch axis of size 1 slows the CPU's matmuls.
        squeeze = lambda t: jax.tree.map(lambda a: a[0], t)
        out = _train_epoch_one(squeeze(group.params), squeeze(group.opt_state), x_NxD, y_NxK, perm_OxN[0], spec)
        params, opt_state, walk_G, gnorm_G = jax.tree.map(lambda a: a[None], out)
    elif O == 1 or O == G:
        epoch = jax.vmap(_train_epoch_one, in_axes=(0, 0, None, None, None if O == 1 else 0, None))
        params, opt_state, walk_G, gnorm_G = epoch(group.params, group.opt_state, x_NxD, y_NxK, perm_OxN[0] if O == 1 else perm_OxN, spec)
    else:
        # O orders x M networks: each order's mini-batch is gathered once and shared by its M networks.
        nest = lambda t: jax.tree.map(lambda a: a.reshape(O, G // O, *a.shape[1:]), t)
        per_order = jax.vmap(_train_epoch_one, in_axes=(0, 0, None, None, None, None))
        epoch = jax.vmap(per_order, in_axes=(0, 0, None, None, 0, None))
        out = epoch(nest(group.params), nest(group.opt_state), x_NxD, y_NxK, perm_OxN, spec)
        params, opt_state, walk_G, gnorm_G = jax.tree.map(lambda a: a.reshape(G, *a.shape[2:]), out)
    # The quadratic cost of sigmoid outputs is bounded (<= 10), so a blow-up shows in the norm.
    norm_G = _norms(params)
    alive_G = group.alive_G & jnp.isfinite(walk_G) & (norm_G <= spec.diverge_norm)
    keep = lambda new, old: jnp.where(alive_G.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
    params = jax.tree.map(keep, params, group.params)
    opt_state = jax.tree.map(keep, opt_state, group.opt_state)
    metrics = {"walk_cost": walk_G, "grad_norm": gnorm_G, "param_norm": _norms(params)}
    return Group(params, opt_state, alive_G), metrics


def shard(group: Group) -> Group:
    """Spread the group's networks over all devices (axis G split evenly); a no-op on one device.

    `jit` then runs each device's networks there; the data, passed unsharded, is replicated.
    """
    if jax.device_count() == 1 or group.alive_G.shape[0] == 1:
        return group
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("g",))
    return jax.device_put(group, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("g")))


def _norms(params) -> jax.Array:
    """Per-network L2 norm of all parameters, shape (G,)."""
    return jnp.sqrt(sum(jnp.sum(p.reshape(p.shape[0], -1) ** 2, axis=1) for p in jax.tree.leaves(params)))


# Examples per evaluation chunk: bounds the activations held at once to G x EVAL_CHUNK x units.
EVAL_CHUNK = 2000


@functools.partial(jax.jit, static_argnames=("activation", "cost_name", "chunk"))
def evaluate(params, x_NxD, y_NxK, labels_N, activation: str, cost_name: str, chunk: int = EVAL_CHUNK):
    """Cost and accuracy of every network on a whole data set, in chunks of `chunk` examples.

    Returns `cost_G` (the network's cost: the average over all N examples) and `accuracy_G`.
    """
    N = x_NxD.shape[0]
    n_chunks = -(-N // chunk)
    pad = n_chunks * chunk - N
    # Padded rows get weight 0, so every example counts once whatever N is.
    w_N = jnp.concatenate([jnp.ones(N), jnp.zeros(pad)]).reshape(n_chunks, chunk)
    x_CxMxD = jnp.pad(x_NxD, ((0, pad), (0, 0))).reshape(n_chunks, chunk, -1)
    y_CxMxK = jnp.pad(y_NxK, ((0, pad), (0, 0))).reshape(n_chunks, chunk, -1)
    l_CxM = jnp.pad(labels_N, (0, pad)).reshape(n_chunks, chunk)
    output = cost.OUTPUT_FOR_COST[cost_name]
    per_example = cost.PER_EXAMPLE[cost_name]

    def one_network(p):
        def chunk_sums(args):
            x_MxD, y_MxK, l_M, w_M = args
            out_MxK = model.forward(p, x_MxD, activation, output)
            return jnp.sum(w_M * per_example(out_MxK, y_MxK)), jnp.sum(w_M * (jnp.argmax(out_MxK, -1) == l_M))

        c_C, hits_C = jax.lax.map(chunk_sums, (x_CxMxD, y_CxMxK, l_CxM, w_N))
        return jnp.sum(c_C) / N, jnp.sum(hits_C) / N

    return jax.vmap(one_network)(params)


SCHEDULES = ("constant", "cosine")


def lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    """Multiplier of the learning rate during `epoch` (1-based) of `epochs`.

    `cosine` decays from 1 in the first epoch towards 0 (half a cosine, one value per epoch).
    """
    if schedule == "constant":
        return 1.0
    return 0.5 * (1 + np.cos(np.pi * (epoch - 1) / epochs))


def set_learning_rates(group: Group, lrs_G: np.ndarray) -> Group:
    """A new group whose networks have learning rates `lrs_G` (G,); traced values, so nothing recompiles."""
    hyperparams = group.opt_state.hyperparams | {"learning_rate": jnp.asarray(lrs_G, jnp.float32)}
    return group._replace(opt_state=group.opt_state._replace(hyperparams=hyperparams))


def permutations(seeds: list[int], epoch: int, n: int) -> np.ndarray:
    """Data order of one epoch: a permutation of range(n) for each seed, shape (len(seeds), n).

    Drawn on the host from a NumPy generator seeded by (seed, epoch): a function of those two
    numbers alone, so a resumed or regrouped run sees exactly the same order.
    """
    return np.stack([np.random.default_rng([s, epoch]).permutation(n).astype(np.int32) for s in seeds])
