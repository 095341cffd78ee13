"""Paths between parameters: the cost along a straight line, and the barrier on a path.

Pure functions of parameters (lists of `(W_OxI, b_O)`, as in `model`) and data; costs are
`cost.network_cost` (the mean over the given examples, plus the run's `(l2/2)‖θ‖²`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mlpjax import cost as cost_lib
from mlpjax import model


@functools.partial(jax.jit, static_argnames=("activation", "cost"))
def _interpolate(params_a, params_b, x_NxD, y_NxK, alphas_A, activation, cost, l2=0.0):
    def cost_at(alpha):
        # (1−α)·a + α·b, not a + α·(b−a): the endpoints are then a and b bit for bit.
        params = jax.tree.map(lambda a, b: (1 - alpha) * a + alpha * b, params_a, params_b)
        return cost_lib.network_cost(params, x_NxD, y_NxK, activation, cost, l2)

    return jax.vmap(cost_at)(alphas_A)


def interpolate(
    params_a: model.Params,
    params_b: model.Params,
    x_NxD: jax.Array,
    y_NxK: jax.Array,
    activation: str = "sigmoid",
    cost: str = "quadratic",
    alphas_A: jax.Array | np.ndarray | None = None,
    l2: float = 0.0,
) -> jax.Array:
    """Cost `C((1−α)·a + α·b)` (with `(l2/2)‖θ‖²`) on `(x_NxD, y_NxK)` for each α of `alphas_A`; shape (A,).

    `alphas_A` defaults to 21 points from 0 to 1; values outside [0, 1] extrapolate.
    Use it from an initialization to its trained network (Goodfellow, Vinyals & Saxe 2015)
    or between the minima two seeds reached (linear mode connectivity).
    """
    alphas_A = jnp.linspace(0.0, 1.0, 21) if alphas_A is None else jnp.asarray(alphas_A, jnp.float32)
    return _interpolate(params_a, params_b, jnp.asarray(x_NxD), jnp.asarray(y_NxK), alphas_A, activation, cost, float(l2))


def barrier(costs_A: jax.Array | np.ndarray, alphas_A: jax.Array | np.ndarray | None = None) -> float:
    """Height of the cost barrier on a path whose first and last costs are its endpoints.

    Without `alphas_A`: `max_α C(α) − max(C(first), C(last))`, the rise above the higher
    endpoint (the "saddle" height of Draxler et al. 2018 measured from the worse minimum).
    It is ≥ 0, and 0 exactly when no point of the path is worse than both endpoints.
    With `alphas_A` (increasing, same length): `max_α [C(α) − ((1−t)·C(first) + t·C(last))]`,
    `t = (α − α_first)/(α_last − α_first)`: the rise above the straight line between the
    endpoint costs (Frankle et al. 2020). Also ≥ 0, since the endpoints contribute 0.
    """
    costs_A = np.asarray(costs_A, np.float64)
    if costs_A.ndim != 1 or costs_A.size < 2:
        raise ValueError(f"costs_A must be a 1-D array of at least 2 costs, got shape {costs_A.shape}")
    if alphas_A is None:
        return float(costs_A.max() - max(costs_A[0], costs_A[-1]))
    alphas_A = np.asarray(alphas_A, np.float64)
    if alphas_A.shape != costs_A.shape:
        raise ValueError(f"alphas_A has shape {alphas_A.shape}, costs_A {costs_A.shape}")
    t_A = (alphas_A - alphas_A[0]) / (alphas_A[-1] - alphas_A[0])
    return float(np.max(costs_A - ((1 - t_A) * costs_A[0] + t_A * costs_A[-1])))
