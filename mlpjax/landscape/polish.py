"""The float32 polish of SGD's end points with full-batch L-BFGS, and a first look at the point.

SGD after a few epochs stops near, not at, a stationary point: its gradient on the whole
training set is small but not zero, and the Hessian there often has negative eigenvalues.
`polish` runs L-BFGS on the full-batch cost (`cost.network_cost` over the training set, with
the run's L2 term) until ‖∇C‖ falls below a tolerance; `stationarity` measures ‖∇C‖ and both
ends of the Hessian's spectrum (30 float32 Lanczos steps); `kind` names what was seen:
`candidate` (small gradient, no negative curvature seen), `negative-curvature`, `descending`.
None of these is a verified critical point: in float32, with a tolerance of 1e-3 and a
Lanczos estimate, nothing here can tell a minimum from a slow slope. The verdicts
`minimum` and `saddle` come only from `python -m mlpjax.landscape critical` (mlpjax/landscape/critical.py).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlpjax import cost as cost_lib
from mlpjax import model
from mlpjax.landscape import curvature


@functools.partial(jax.jit, static_argnames=("activation", "cost"))
def _polish_group(params_G, x_NxD, y_NxK, tol, max_steps, l2, activation: str, cost: str):
    def one(params):
        fn = lambda p: cost_lib.network_cost(p, x_NxD, y_NxK, activation, cost, l2)
        opt = optax.lbfgs()  # zoom line search (strong Wolfe): each step lowers the cost
        value_and_grad = optax.value_and_grad_from_state(fn)

        def keep_going(carry):
            _, _, k, gnorm, _, _ = carry
            return (k < max_steps) & (gnorm > tol)

        def step(carry):
            p, state, k, _, best_p, best_gnorm = carry
            value, grad = value_and_grad(p, state=state)
            updates, state = opt.update(grad, state, p, value=value, grad=grad, value_fn=fn)
            p = optax.apply_updates(p, updates)
            # The line search stored ∇C at the new point in the state: no extra gradient.
            gnorm = optax.tree.norm(optax.tree.get(state, "grad"))
            # Each step lowers the cost but not always ‖∇C‖: keep the iterate closest to stationary.
            better = gnorm < best_gnorm
            best_p = jax.tree.map(lambda new, old: jnp.where(better, new, old), p, best_p)
            return p, state, k + 1, gnorm, best_p, jnp.minimum(gnorm, best_gnorm)

        gnorm0 = optax.tree.norm(jax.grad(fn)(params))
        carry = (params, opt.init(params), 0, gnorm0, params, gnorm0)
        _, _, k, _, best_p, best_gnorm = jax.lax.while_loop(keep_going, step, carry)
        return best_p, k, best_gnorm

    # One network after another, not vmap: under vmap every step (and every line search) would run
    # until the slowest network is done, and a network already stationary (e.g. collapsed, ‖∇C‖ ≈ 0)
    # makes each zoom line search take its 20 evaluations. The matmuls over N examples are large
    # enough on their own.
    return jax.lax.map(one, params_G)


def polish(
    params_G: model.Params, x_NxD, y_NxK, activation: str, cost: str, max_steps: int, tol: float, l2: float = 0.0
) -> tuple[model.Params, np.ndarray, np.ndarray]:
    """Full-batch L-BFGS on G networks (stacked, leading axis G) until ‖∇C‖ ≤ `tol` or `max_steps`.

    Returns, per network, the iterate with the smallest ‖∇C‖ (the start included, so ‖∇C‖ never
    grows; every iterate's cost is at most the start's), the steps taken `steps_G`, and that
    iterate's ‖∇C‖ `grad_norm_G`.
    The cost is the mean over all N examples of `(x_NxD, y_NxK)`, plus `(l2/2)‖θ‖²`.
    """
    # tol, max_steps and l2 are traced: other values do not recompile.
    params_G, steps_G, gnorm_G = _polish_group(
        params_G, jnp.asarray(x_NxD), jnp.asarray(y_NxK), float(tol), int(max_steps), float(l2), activation, cost
    )
    return params_G, np.asarray(steps_G), np.asarray(gnorm_G)


@functools.partial(jax.jit, static_argnames=("activation", "cost"))
def _grad_norms(params_G, x_NxD, y_NxK, l2, activation: str, cost: str):
    grad = jax.grad(lambda p: cost_lib.network_cost(p, x_NxD, y_NxK, activation, cost, l2))
    return jax.vmap(lambda p: optax.tree.norm(grad(p)))(params_G)


def stationarity(
    params_G: model.Params, x_NxD, y_NxK, activation: str, cost: str, key: jax.Array, lanczos_steps: int = 30, l2: float = 0.0
) -> list[dict]:
    """`{"grad_norm", "lambda_max", "lambda_min"}` of each of G networks (stacked, leading axis G).

    ‖∇C‖ and the extreme Hessian eigenvalues of the cost over all N examples of `(x_NxD, y_NxK)`;
    the eigenvalues are the extreme Ritz values after `lanczos_steps` Lanczos steps
    (`curvature.extreme_eigenvalues`), which lie inside the spectrum: the true λ_min is at most,
    the true λ_max at least, what is reported.
    """
    x_NxD, y_NxK = jnp.asarray(x_NxD), jnp.asarray(y_NxK)
    gnorm_G = np.asarray(_grad_norms(params_G, x_NxD, y_NxK, float(l2), activation, cost))
    top_G, bottom_G = curvature.extreme_eigenvalues(params_G, x_NxD, y_NxK, activation, cost, key, lanczos_steps, l2=l2)
    return [{"grad_norm": float(g), "lambda_max": float(t), "lambda_min": float(b)} for g, t, b in zip(gnorm_G, top_G, bottom_G)]


# Names of what the float32 look sees; deliberately not "minimum" or "saddle" (see the module docstring).
CANDIDATE, NEGATIVE, DESCENDING = "candidate", "negative-curvature", "descending"


def kind(point: dict, tol: float) -> str:
    """`candidate` if ‖∇C‖ ≤ tol and the smallest Ritz value ≥ −tol·λ_max (no negative curvature seen);
    `negative-curvature` if ‖∇C‖ ≤ tol but some curvature is negative beyond that; `descending` if
    ‖∇C‖ > tol. A candidate is not a verified minimum: `python -m mlpjax.landscape critical` decides."""
    if not point["grad_norm"] <= tol:  # NaN counts as descending, never as a candidate
        return DESCENDING
    return CANDIDATE if point["lambda_min"] >= -tol * point["lambda_max"] else NEGATIVE
