"""Saving and loading parameter pytrees with orbax-checkpoint."""

from __future__ import annotations

import json
import os

import jax
import orbax.checkpoint as ocp

from mlpjax import model
from mlpjax.quiet import quiet  # orbax logs every step of a save at INFO through absl


def save_params(path: str, params: model.Params) -> None:
    """Write `params` (a list of `(W, b)` tuples, any leading axes) to the folder `path`; atomic."""
    with quiet(), ocp.StandardCheckpointer() as ckpt:
        ckpt.save(os.path.abspath(path), params, force=True)


def load_params(path: str) -> model.Params:
    """Read back what `save_params` wrote, as the same list of `(W, b)` tuples."""
    with quiet(), ocp.StandardCheckpointer() as ckpt:
        path = os.path.abspath(path)
        # Onto this process's first device, whatever devices saved it (a run spread over 4 GPUs, read on a laptop).
        device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        saved = ckpt.metadata(path)
        saved = getattr(saved, "item_metadata", saved)
        saved = getattr(saved, "tree", saved)
        target = jax.tree.map(
            lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), saved, is_leaf=lambda m: hasattr(m, "shape")
        )
        tree = ckpt.restore(path, target)
    return [(jax.numpy.asarray(W), jax.numpy.asarray(b)) for W, b in tree]


def network(params: model.Params, g: int) -> model.Params:
    """Network `g` of a group's stacked parameters (leading axis G)."""
    return [(W[g], b[g]) for W, b in params]


def save_state(directory: str, epoch: int, state, identity: dict) -> None:
    """Save the whole training state after `epoch`, atomically; keeps only the latest.

    `identity` (the run's configuration) is stored beside it, so a resume can refuse a
    checkpoint written by another configuration.
    """
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    _write_json_atomic(os.path.join(directory, "identity.json"), identity)
    options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False)
    with quiet(), ocp.CheckpointManager(directory, options=options) as manager:
        manager.save(epoch, args=ocp.args.StandardSave(state))
        manager.wait_until_finished()


def restore_state(directory: str, abstract_state, identity: dict):
    """`(epoch, state)` from the latest checkpoint in `directory`, or None if there is none.

    Raises `CheckpointMismatch` if it was written by a run of another configuration.
    """
    directory = os.path.abspath(directory)
    if not os.path.isdir(directory):
        return None
    with quiet(), ocp.CheckpointManager(directory) as manager:
        epoch = manager.latest_step()
        if epoch is None:
            return None
        with open(os.path.join(directory, "identity.json")) as f:
            saved = json.load(f)
        if saved != identity:
            diff = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
            raise CheckpointMismatch(
                f"{directory} holds a checkpoint of another configuration ({', '.join(diff)} differ); use another output dir"
            )
        return epoch, manager.restore(epoch, args=ocp.args.StandardRestore(abstract_state))


class CheckpointMismatch(Exception):
    """A checkpoint in the output dir belongs to another configuration; one-line message."""


def _write_json_atomic(path: str, obj) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
