"""Saving and loading parameter pytrees with orbax-checkpoint."""

from __future__ import annotations

import contextlib
import logging
import os

import jax
import orbax.checkpoint as ocp

from mlpjax import model


@contextlib.contextmanager
def _quiet():
    """Orbax logs every step of a save at INFO through absl; keep only warnings."""
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        absl_logger.setLevel(level)


def save_params(path: str, params: model.Params) -> None:
    """Write `params` (a list of `(W, b)` tuples, any leading axes) to the folder `path`; atomic."""
    with _quiet(), ocp.StandardCheckpointer() as ckpt:
        ckpt.save(os.path.abspath(path), params, force=True)


def load_params(path: str) -> model.Params:
    """Read back what `save_params` wrote, as the same list of `(W, b)` tuples."""
    with _quiet(), ocp.StandardCheckpointer() as ckpt:
        tree = ckpt.restore(os.path.abspath(path))
    return [(jax.numpy.asarray(W), jax.numpy.asarray(b)) for W, b in tree]


def network(params: model.Params, g: int) -> model.Params:
    """Network `g` of a group's stacked parameters (leading axis G)."""
    return [(W[g], b[g]) for W, b in params]
