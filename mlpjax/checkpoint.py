"""Parameter pytrees (NumPy .npz folders) and whole training states (orbax-checkpoint): saving and loading."""

from __future__ import annotations

import json
import os
import shutil
import sys
import zlib

import jax
import numpy as np
import orbax.checkpoint as ocp

from mlpjax import model
from mlpjax.quiet import quiet  # orbax logs every step of a save at INFO through absl

PARAMS_FILE = "params.npz"  # in a params folder: W0, b0, W1, b1, … with their dtypes


def save_params(path: str, params: model.Params) -> None:
    """Write `params` (a list of `(W, b)` tuples, any leading axes) into the folder `path` as PARAMS_FILE;
    atomic: written and fsync'd in a folder beside it, then swapped in. NumPy, not orbax: a sweep writes one
    such folder per job, and orbax's machinery cost 24 ms each on 2 cores (benchmarks/grouped_sweep.py)."""
    path = os.path.abspath(path)
    tmp, old = f"{path}.tmp-{os.getpid()}", f"{path}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    arrays = {f"{name}{i}": np.asarray(a) for i, (W, b) in enumerate(params) for name, a in (("W", W), ("b", b))}
    with open(os.path.join(tmp, PARAMS_FILE), "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    if os.path.exists(path):
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def load_params(path: str) -> model.Params:
    """Read back what `save_params` wrote (or an orbax folder, as runs before PARAMS_FILE saved them), as the
    same list of `(W, b)` tuples on this process's first device; float64 stays float64 under `jax.enable_x64`."""
    path = os.path.abspath(path)
    if os.path.exists(os.path.join(path, PARAMS_FILE)):
        with np.load(os.path.join(path, PARAMS_FILE)) as z:
            return [(jax.numpy.asarray(z[f"W{i}"]), jax.numpy.asarray(z[f"b{i}"])) for i in range(len(z.files) // 2)]
    with quiet(), ocp.StandardCheckpointer() as ckpt:
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


KEEP = 2  # checkpoints kept: a damaged latest one costs `train.checkpoint_every` epochs, not the run


def save_state(directory: str, epoch: int, state, identity: dict) -> None:
    """Save the whole training state after `epoch`, atomically; keeps the latest KEEP.

    `identity` (the run's configuration) is stored beside it, so a resume can refuse a
    checkpoint written by another configuration; `checksums.json` holds a CRC-32 of each
    kept state's arrays, so a resume can tell a damaged one from a good one.
    """
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    _write_json_atomic(os.path.join(directory, "identity.json"), identity)
    options = ocp.CheckpointManagerOptions(max_to_keep=KEEP, enable_async_checkpointing=False)
    with quiet(), ocp.CheckpointManager(directory, options=options) as manager:
        manager.save(epoch, args=ocp.args.StandardSave(state))
        manager.wait_until_finished()
        kept = set(manager.all_steps())
    sums = {k: v for k, v in _read_checksums(directory).items() if int(k) in kept}
    _write_json_atomic(os.path.join(directory, "checksums.json"), sums | {str(epoch): checksum(state)})


def checksum(state) -> int:
    """CRC-32 of every array of `state`, in tree order."""
    crc = 0
    for leaf in jax.tree.leaves(jax.device_get(state)):
        crc = zlib.crc32(np.ascontiguousarray(leaf).tobytes(), crc)
    return crc


def _read_checksums(directory: str) -> dict:
    try:
        with open(os.path.join(directory, "checksums.json")) as f:
            sums = json.load(f)
        return sums if isinstance(sums, dict) else {}
    except (OSError, ValueError):
        return {}


def restore_state(directory: str, abstract_state, identity: dict):
    """`(epoch, state)` from the latest readable checkpoint in `directory`, or None if there is none.

    A checkpoint that cannot be read, or whose arrays do not match their checksum, is passed
    over with one line on stderr for the one before. Raises `CheckpointMismatch` if they were
    written by a run of another configuration, `CheckpointDamaged` if none can be read.
    """
    directory = os.path.abspath(directory)
    if not os.path.isdir(directory):
        return None
    with quiet(), ocp.CheckpointManager(directory) as manager:
        epochs = sorted(manager.all_steps(), reverse=True)
        if not epochs:
            return None
        identity_path = os.path.join(directory, "identity.json")
        try:
            with open(identity_path) as f:
                saved = json.load(f)
        except (OSError, ValueError) as e:
            raise CheckpointDamaged(f"{identity_path}: cannot read ({_first_line(e)}); delete {directory} to train from scratch") from None
        if saved != identity:
            diff = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k)) if isinstance(saved, dict) else ["all"]
            raise CheckpointMismatch(
                f"{directory} holds a checkpoint of another configuration ({', '.join(diff)} differ); use another output dir"
            )
        sums = _read_checksums(directory)
        problems = []
        for epoch in epochs:
            try:
                state = manager.restore(epoch, args=ocp.args.StandardRestore(abstract_state))
                problem = None if sums.get(str(epoch)) in (None, checksum(state)) else "its arrays do not match their checksum"
            except Exception as e:  # orbax and tensorstore raise many kinds on damaged files
                problem = _first_line(e)
            if problem is None:
                return epoch, state
            problems.append(f"epoch {epoch}: {problem}")
            print(
                f"warning: the checkpoint of epoch {epoch} in {directory} is damaged ({problem}); trying an earlier one",
                file=sys.stderr,
                flush=True,
            )
            # Gone, so that the epoch is saved again when training reaches it (orbax skips a step it already has).
            manager.delete(epoch)
    raise CheckpointDamaged(
        f"{directory}: no checkpoint can be read ({'; '.join(problems)}); if its files are damaged, delete it to train from scratch"
    )


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


class CheckpointDamaged(Exception):
    """No checkpoint in the output dir can be read; one-line message."""


class CheckpointMismatch(Exception):
    """A checkpoint in the output dir belongs to another configuration; one-line message."""


def _write_json_atomic(path: str, obj) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
