"""Curvature of the cost at a network: Hessian-vector products, the dense Hessian, power iteration
and Lanczos (float32), for one network or a stacked group of them.

The parameters are flattened by `ravel_pytree` (`flat_cost`); nothing P×P is formed except by
`hessian`. Float64 versions for verified critical points are in `landscape.critical`.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from mlpjax import checkpoint, model
from mlpjax import cost as cost_lib


def flat_cost(params, x_NxD, y_NxK, activation, cost, l2=0.0):
    """The parameters as one vector of P numbers, and the cost (with `(l2/2)‖θ‖²`) as a function of such a vector."""
    flat_P, unravel = ravel_pytree(params)
    return flat_P, lambda f_P: cost_lib.network_cost(unravel(f_P), x_NxD, y_NxK, activation, cost, l2)


def hvp(cost_fn, flat_P, v_P):
    # Forward-over-reverse: one jvp through the gradient, about the cost of two gradients.
    return jax.jvp(jax.grad(cost_fn), (flat_P,), (v_P,))[1]


def hessian(params: model.Params, x_NxD, y_NxK, activation: str = "sigmoid", cost: str = "quadratic", l2: float = 0.0) -> np.ndarray:
    """The full P×P Hessian of the cost over the flattened parameters (`ravel_pytree` order).

    Memory P²: for small networks and for checking the iterative methods below.
    """
    flat_P, cost_fn = flat_cost(params, jnp.asarray(x_NxD), jnp.asarray(y_NxK), activation, cost, l2)
    return np.asarray(jax.jit(jax.hessian(cost_fn))(flat_P))


class Sharpness(NamedTuple):
    eigenvalue: float  # the Hessian eigenvalue of largest magnitude (signed), cost units per parameter²
    vector_P: np.ndarray  # its unit eigenvector over the flattened parameters (`ravel_pytree` order)
    iterations: int  # Hessian-vector products taken
    converged: bool  # the relative change of the eigenvalue estimate fell to `tol`
    residual: float  # ‖Hv − λv‖ / |λ| of the returned pair: 0 for an exact eigenpair


@functools.partial(jax.jit, static_argnames=("activation", "cost", "iters"))
def _power_iteration(params, x_NxD, y_NxK, v0_P, tol, activation, cost, iters, l2=0.0):
    flat_P, cost_fn = flat_cost(params, x_NxD, y_NxK, activation, cost, l2)

    def step(state):
        # v: the unit vector this step's λ belongs to; w: the next one, Hv/‖Hv‖.
        i, _, v_P, lam, _, _ = state
        Hv_P = hvp(cost_fn, flat_P, v_P)
        lam_new = v_P @ Hv_P  # Rayleigh quotient
        residual = jnp.linalg.norm(Hv_P - lam_new * v_P) / jnp.abs(lam_new)
        done = jnp.abs(lam_new - lam) <= tol * jnp.abs(lam_new)
        return i + 1, v_P, Hv_P / jnp.linalg.norm(Hv_P), lam_new, residual, done

    def keep_going(state):
        i, *_, done = state
        return (i < iters) & ~done

    v_P = v0_P / jnp.linalg.norm(v0_P)
    inf = jnp.array(jnp.inf, flat_P.dtype)
    i, v_P, _, lam, residual, done = jax.lax.while_loop(keep_going, step, (0, v_P, v_P, inf, inf, False))
    return lam, v_P, i, done, residual


def _start_vector(params: model.Params, key: jax.Array | None) -> jax.Array:
    """A random start vector v0_P over the flattened parameters, drawn with `key` (default `jax.random.key(0)`)."""
    key = jax.random.key(0) if key is None else key
    return jax.random.normal(key, (model.param_count(params),), jnp.float32)


def sharpness(
    params: model.Params,
    x_NxD,
    y_NxK,
    activation: str = "sigmoid",
    cost: str = "quadratic",
    key: jax.Array | None = None,
    iters: int = 200,
    tol: float = 1e-5,
    l2: float = 0.0,
) -> Sharpness:
    """The largest-magnitude eigenvalue of the cost's Hessian at `params`, by power iteration.

    Each iteration is one Hessian-vector product (`jax.jvp` of `jax.grad` over the parameters
    flattened by `ravel_pytree`); nothing P×P is formed. Stops after `iters` products or when
    the Rayleigh quotient changes by at most `tol` relative. Power iteration converges to the
    eigenvalue of largest |λ|: at a minimum that is the largest eigenvalue, the sharpness of
    Keskar et al. 2017; near a saddle it may be a negative one (the sign is kept). It is slow
    when the two largest |λ| are close; `lanczos` gives both ends of the spectrum.
    `key` draws the start vector (default `jax.random.key(0)`).
    """
    v0_P = _start_vector(params, key)
    lam, v_P, i, done, residual = _power_iteration(
        params, jnp.asarray(x_NxD), jnp.asarray(y_NxK), v0_P, tol, activation, cost, iters, float(l2)
    )
    return Sharpness(float(lam), np.asarray(v_P), int(i), bool(done), float(residual))


def lanczos_tridiagonal(params, x_NxD, y_NxK, v0_P, activation, cost, steps, l2=0.0):
    """`steps` Lanczos steps on the cost's Hessian at `params` from v0_P (`lanczos_steps`): a_S, b_S."""
    flat_P, cost_fn = flat_cost(params, x_NxD, y_NxK, activation, cost, l2)
    return lanczos_steps(lambda v_P: hvp(cost_fn, flat_P, v_P), v0_P, steps)


def lanczos_steps(H, v0_P, steps: int):
    """`steps` Lanczos steps of the symmetric map `H` (P-vector → P-vector) from v0_P, in v0_P's dtype:
    the diagonal a_S and off-diagonal b_S of the tridiagonal T.

    b_S[j] is the norm of step j's new direction; b_S[-1] lies outside T. The basis V_(S+1)xP
    is reorthogonalized against every vector so far, twice: one pass leaves float32 round-off
    behind, and without it the extreme Ritz values come back as spurious copies.
    """

    def step(j, carry):
        V_SxP, a_S, b_S = carry
        w_P = H(V_SxP[j])
        a_S = a_S.at[j].set(V_SxP[j] @ w_P)
        for _ in range(2):  # the rows not yet filled are 0 and subtract nothing
            w_P = w_P - V_SxP.T @ (V_SxP @ w_P)
        beta = jnp.linalg.norm(w_P)
        V_SxP = V_SxP.at[j + 1].set(jnp.where(beta > 0, w_P / jnp.where(beta > 0, beta, 1.0), 0.0))
        return V_SxP, a_S, b_S.at[j].set(beta)

    dtype = v0_P.dtype
    V_SxP = jnp.zeros((steps + 1, v0_P.size), dtype).at[0].set(v0_P / jnp.linalg.norm(v0_P))
    _, a_S, b_S = jax.lax.fori_loop(0, steps, step, (V_SxP, jnp.zeros(steps, dtype), jnp.zeros(steps, dtype)))
    return a_S, b_S


@functools.partial(jax.jit, static_argnames=("activation", "cost", "steps"))
def _lanczos_group(params_C, v0_CxP, x_NxD, y_NxK, activation, cost, steps, l2=0.0):
    """`lanczos_tridiagonal` of C networks at once (stacked parameters, leading axis C): a_CxS, b_CxS."""
    one = lambda params, v0_P: lanczos_tridiagonal(params, x_NxD, y_NxK, v0_P, activation, cost, steps, l2)
    return jax.vmap(one)(params_C, v0_CxP)


def tridiagonal(a_S, b_S) -> np.ndarray:
    """The Lanczos tridiagonal T_KxK (float64) of `lanczos_tridiagonal`'s a_S, b_S; cut where the Krylov space closed.

    A new direction of norm ≤ 1e-6·max|a| means the space so far is invariant: its values are
    exact, and what follows was built from round-off.
    """
    a_S, b_S = np.asarray(a_S, np.float64), np.asarray(b_S, np.float64)
    closed = np.nonzero(b_S[:-1] <= 1e-6 * max(np.abs(a_S).max(), 1e-30))[0]
    k = int(closed[0]) + 1 if closed.size else a_S.size
    return np.diag(a_S[:k]) + np.diag(b_S[: k - 1], 1) + np.diag(b_S[: k - 1], -1)


def _ritz_values(a_S, b_S) -> np.ndarray:
    """The eigenvalues (ascending, float64) of the Lanczos tridiagonal."""
    return np.linalg.eigvalsh(tridiagonal(a_S, b_S))


def lanczos(
    params: model.Params,
    x_NxD,
    y_NxK,
    activation: str = "sigmoid",
    cost: str = "quadratic",
    key: jax.Array | None = None,
    steps: int = 30,
    l2: float = 0.0,
) -> np.ndarray:
    """Ritz values (ascending) of the cost's Hessian after `steps` Lanczos steps.

    Full reorthogonalization keeps the basis orthogonal, so the extreme Ritz values approach
    the Hessian's smallest and largest eigenvalues from inside (λ_min ≤ first, last ≤ λ_max)
    and are exact once `steps` reaches P. Fewer than `steps` values come back if the Krylov
    space closes early (it then is an invariant subspace and its values are exact). Memory
    `steps`·P. `key` draws the start vector (default `jax.random.key(0)`).
    """
    steps = min(steps, model.param_count(params))
    params_1 = jax.tree.map(lambda a: jnp.asarray(a)[None], params)
    v0_1xP = _start_vector(params, key)[None]
    a_1xS, b_1xS = _lanczos_group(params_1, v0_1xP, jnp.asarray(x_NxD), jnp.asarray(y_NxK), activation, cost, steps, float(l2))
    return _ritz_values(a_1xS[0], b_1xS[0])


def extreme_eigenvalues(
    params_G: model.Params,
    x_NxD,
    y_NxK,
    activation: str,
    cost: str,
    key: jax.Array,
    steps: int = 30,
    chunk: int = 8,
    l2: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """`(top_G, bottom_G)`: the largest and smallest Ritz values of each of G networks' Hessians
    (stacked parameters, leading axis G) after `steps` Lanczos steps, `chunk` networks per program.

    They lie inside the spectrum: λ_max ≥ top, λ_min ≤ bottom. Networks with non-finite
    parameters get NaN. `key` draws one start vector per network.
    """
    G = jax.tree.leaves(params_G)[0].shape[0]
    v0_GxP = jax.random.normal(key, (G, model.param_count(checkpoint.network(params_G, 0))), jnp.float32)
    todo = [g for g, reason in enumerate(_skip_reasons(params_G, [{}] * G)) if reason is None]
    ritz = _extreme_ritz_values(params_G, v0_GxP, todo, jnp.asarray(x_NxD), jnp.asarray(y_NxK), activation, cost, steps, chunk, l2)
    top_G = np.array([ritz[g][0] if g in ritz else np.nan for g in range(G)])
    bottom_G = np.array([ritz[g][1] if g in ritz else np.nan for g in range(G)])
    return top_G, bottom_G


@jax.jit
def _finite_G(params: model.Params) -> jax.Array:
    """Per network of the stacked `params` (leading axis G): is every weight and bias finite. Shape (G,).

    One program per group shape (op by op, every layer's shape compiled its own), and only G booleans
    leave the device."""
    G = params[0][0].shape[0]
    return functools.reduce(jnp.logical_and, [jnp.isfinite(a.reshape(G, -1)).all(axis=1) for layer in params for a in layer])


def _skip_reasons(params: model.Params, members: list[dict]) -> list[str | None]:
    """Per network of the stacked `params`: why it is not analyzed, or None."""
    finite_G = np.asarray(_finite_G(params))
    return ["diverged" if m.get("diverged") else None if finite_G[g] else "non-finite parameters" for g, m in enumerate(members)]


def _extreme_ritz_values(params, v0_GxP, todo, x_NxD, y_NxK, activation, cost, steps, chunk, l2=0.0) -> dict[int, tuple[float, float]]:
    """{g: (largest, smallest Ritz value)} for the networks `todo` of the stacked `params`."""
    S = max(1, min(steps, v0_GxP.shape[1]))
    C = max(1, min(chunk, len(todo)))
    ritz = {}
    for start in range(0, len(todo), C):
        gs = todo[start : start + C]
        idx = np.array(gs + [gs[-1]] * (C - len(gs)))  # the last chunk padded: one compilation
        params_C = jax.tree.map(lambda a, idx=idx: a[idx], params)
        a_CxS, b_CxS = jax.device_get(_lanczos_group(params_C, v0_GxP[idx], x_NxD, y_NxK, activation, cost, S, float(l2)))
        for c, g in enumerate(gs):
            eig = _ritz_values(a_CxS[c], b_CxS[c])
            ritz[g] = (float(eig[-1]) + 0.0, float(eig[0]) + 0.0)  # + 0.0: no -0.0 from a flat cost
    return ritz
