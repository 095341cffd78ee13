"""The cost landscape around trained networks: paths between parameters, curvature, saturation.

    python -m mlpjax.landscape {align,curve,lines,surface,spectrum} RUN_DIR [RUN_B] [--networks I,J] --out DIR
    python -m mlpjax.landscape critical RUN [RUN …] [--networks I,J|all] [--examples N] --out DIR

runs the geometry of saved networks (`mlpjax/geometry.py`, commands in `mlpjax/geometry_cli.py`), and
finds and verifies critical points (`mlpjax/critical.py`, command in `mlpjax/critical_cli.py`).

Pure functions of parameters (a list of `(W_OxI, b_O)` tuples, as in `model`) and data, so
they apply to any saved run: `checkpoint.network(checkpoint.load_params(run/"params"), g)`.
Costs are `cost.network_cost`: the mean over the given examples of the per-example cost.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from mlpjax import checkpoint, model
from mlpjax import cost as cost_lib

# --------------------------------------------------------------------------- paths


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


# --------------------------------------------------------------------------- curvature


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
    """`steps` Lanczos steps from v0_P: the diagonal a_S and off-diagonal b_S of the tridiagonal T.

    b_S[j] is the norm of step j's new direction; b_S[-1] lies outside T. The basis V_(S+1)xP
    is reorthogonalized against every vector so far, twice: one pass leaves float32 round-off
    behind, and without it the extreme Ritz values come back as spurious copies.
    """
    flat_P, cost_fn = flat_cost(params, x_NxD, y_NxK, activation, cost, l2)

    def step(j, carry):
        V_SxP, a_S, b_S = carry
        w_P = hvp(cost_fn, flat_P, V_SxP[j])
        a_S = a_S.at[j].set(V_SxP[j] @ w_P)
        for _ in range(2):  # the rows not yet filled are 0 and subtract nothing
            w_P = w_P - V_SxP.T @ (V_SxP @ w_P)
        beta = jnp.linalg.norm(w_P)
        V_SxP = V_SxP.at[j + 1].set(jnp.where(beta > 0, w_P / jnp.where(beta > 0, beta, 1.0), 0.0))
        return V_SxP, a_S, b_S.at[j].set(beta)

    V_SxP = jnp.zeros((steps + 1, flat_P.size), jnp.float32).at[0].set(v0_P / jnp.linalg.norm(v0_P))
    _, a_S, b_S = jax.lax.fori_loop(0, steps, step, (V_SxP, jnp.zeros(steps), jnp.zeros(steps)))
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


# --------------------------------------------------------------------------- units


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


def unit_saturation(
    params: model.Params,
    x_NxD,
    activation: str = "sigmoid",
    low: float = 0.01,
    high: float = 0.99,
    min_fraction: float = 0.99,
) -> dict:
    """How many hidden units are stuck, per hidden layer (first to last) and over all of them.

    sigmoid: a (unit, example) pair is saturated when the activation is `< low` or `> high`
    (there σ' < 0.01, so the unit passes almost no gradient; Glorot & Bengio 2010 watch
    the same two ends). A unit is saturated when it is saturated on at least `min_fraction`
    of the examples, either end counting.
    relu: a pair is dead when the activation is exactly 0; a unit is dead when it is 0 on
    every example of `x_NxD` (then no gradient reaches its incoming weights).
    Returns `{"kind": "saturated"|"dead", "units_per_layer": [fraction of the layer's units],
    "units": fraction of all hidden units, "pairs_per_layer": [fraction of the layer's
    (unit, example) pairs], "pairs": fraction of all pairs, "layer_sizes": [H per layer]}`.
    """
    hidden = jax.jit(model.hidden_activations, static_argnames="activation")(params, jnp.asarray(x_NxD), activation)
    if activation == "sigmoid":
        kind = "saturated"
        stuck = [np.asarray((a_NxH < low) | (a_NxH > high)) for a_NxH in hidden]
        unit_stuck = [s_NxH.mean(axis=0) >= min_fraction for s_NxH in stuck]
    elif activation == "relu":
        kind = "dead"
        stuck = [np.asarray(a_NxH == 0) for a_NxH in hidden]
        unit_stuck = [s_NxH.all(axis=0) for s_NxH in stuck]
    else:
        raise ValueError(f"unknown activation {activation!r}; allowed: {', '.join(model.ACTIVATIONS)}")
    sizes = [s.shape[1] for s in stuck]
    n_units, n_pairs = sum(sizes), sum(s.size for s in stuck)
    return {
        "kind": kind,
        "units_per_layer": [float(u.mean()) for u in unit_stuck],
        "units": float(sum(u.sum() for u in unit_stuck) / n_units) if n_units else math.nan,
        "pairs_per_layer": [float(s.mean()) for s in stuck],
        "pairs": float(sum(s.sum() for s in stuck) / n_pairs) if n_pairs else math.nan,
        "layer_sizes": sizes,
    }


# --------------------------------------------------------------------------- seeds


def cost_spread(final_costs) -> dict:
    """Spread of the final training costs of networks trained from different seeds.

    Non-finite costs (diverged networks) are left out and counted in `n_nonfinite`.
    `std` is the sample standard deviation (ddof=1; 0.0 for a single network).
    Returns `{"n", "n_nonfinite", "mean", "std", "min", "max", "range"}`; NaNs if none is finite.
    """
    c = np.asarray(final_costs, np.float64).ravel()
    finite = c[np.isfinite(c)]
    out = {"n": int(finite.size), "n_nonfinite": int(c.size - finite.size)}
    if finite.size == 0:
        return out | dict.fromkeys(("mean", "std", "min", "max", "range"), math.nan)
    return out | {
        "mean": float(finite.mean()),
        "std": float(finite.std(ddof=1)) if finite.size > 1 else 0.0,
        "min": float(finite.min()),
        "max": float(finite.max()),
        "range": float(finite.max() - finite.min()),
    }


# --------------------------------------------------------------------------- a trained group


def analyze_group(
    params_init: model.Params,
    params_final: model.Params,
    members: list[dict],
    x_NxD,
    y_NxK,
    activation: str = "sigmoid",
    cost: str = "quadratic",
    key: jax.Array | None = None,
    n_examples: int = 10_000,
    lanczos_steps: int = 20,
    n_alphas: int = 11,
    chunk: int = 8,
    l2: float = 0.0,
) -> list[dict]:
    """The end points a group of G networks reached: one dict per network, in `members` order.

    `params_init`/`params_final`: stacked parameters (leading axis G) at initialization and
    after training; `members[g]` holds `seed` and `learning_rate` (and `diverged`: such
    networks are skipped, as are networks with non-finite parameters; they get
    `{"skipped": reason}`). Everything is measured on one fixed subset of `n_examples` rows of
    `(x_NxD, y_NxK)` (drawn by a NumPy generator seeded 0, the same for every network):
      sharpness       the largest Hessian eigenvalue: the top Ritz value after `lanczos_steps`
                      Lanczos steps (as `lanczos`; from below, within a few % at 20 steps).
                      Not plain power iteration: that finds the eigenvalue of largest |λ|,
                      which short of a minimum (few epochs, large η) is often a negative one
      min_eigenvalue  the smallest Ritz value: < 0 where the point is not yet a minimum
      sharpness_lr    sharpness · learning rate: GD on this cost is stable only below 2
      saturated_units / dead_units   fraction of hidden units stuck (`unit_saturation`)
      saturated_pairs / dead_pairs   fraction of (unit, example) pairs stuck
      init_barrier    `barrier` (rise above the worse endpoint) on the straight path from
                      the network's initialization to its minimum, `n_alphas` points
      seed_barrier    `barrier` against the straight line between the endpoint costs, from
                      this minimum to the next seed's among the surviving networks of the same
                      learning rate (cyclically: the last seed pairs with the first; absent if
                      it is alone); `seed_barrier_to` names that seed
      cost_subset     the cost at the minimum on the subset
    The Lanczos iterations of `chunk` networks run as one compiled, vmapped program (`lanczos`'s,
    basis reorthogonalized twice per step in float32; compiled once per shape). Cost per network:
    `lanczos_steps` Hessian-vector products (about 4 gradients each) on `n_examples`, plus
    2·`n_alphas` forward passes: 784-16-16-10 × 10 networks in a few seconds on a 2-core CPU.
    `key` draws the start vectors.
    """
    key = jax.random.key(0) if key is None else key
    x_NxD, y_NxK = fixed_subset(x_NxD, y_NxK, n_examples)
    alphas_A = jnp.linspace(0.0, 1.0, n_alphas)
    skipped_G = _skip_reasons(params_final, members)
    todo = [g for g, reason in enumerate(skipped_G) if reason is None]

    # Ritz values of every surviving network, `chunk` networks per compiled call.
    P = model.param_count(checkpoint.network(params_final, 0))
    v0_GxP = jax.random.normal(key, (len(members), P), jnp.float32)
    ritz = _extreme_ritz_values(params_final, v0_GxP, todo, x_NxD, y_NxK, activation, cost, lanczos_steps, chunk, l2)

    # Each surviving network's own measurements.
    out: list[dict] = []
    for g, m in enumerate(members):
        if skipped_G[g] is not None:
            out.append({"skipped": skipped_G[g]})
            continue
        init, final = checkpoint.network(params_init, g), checkpoint.network(params_final, g)
        out.append(_end_point(init, final, float(m["learning_rate"]), ritz[g], x_NxD, y_NxK, alphas_A, activation, cost, l2))

    # Minima of the same learning rate, seed to next seed.
    barrier_of: dict[tuple[int, int], float] = {}
    for g, h in _next_seeds(members, todo):
        if (h, g) in barrier_of:  # a pair of two: the same path, walked the other way
            barrier_of[g, h] = barrier_of[h, g]
        else:
            final_g, final_h = checkpoint.network(params_final, g), checkpoint.network(params_final, h)
            path_A = _interpolate(final_g, final_h, x_NxD, y_NxK, alphas_A, activation, cost, float(l2))
            barrier_of[g, h] = barrier(np.asarray(path_A), np.asarray(alphas_A))
        out[g]["seed_barrier"], out[g]["seed_barrier_to"] = barrier_of[g, h], members[h]["seed"]
    return out


def fixed_subset(x_NxD, y_NxK, n_examples: int):
    """The same `n_examples` rows (in order) for every call, drawn by NumPy's generator seeded 0; float32."""
    if x_NxD.shape[0] > n_examples:  # indexing a device array keeps the data on the device
        rows = np.sort(np.random.default_rng(0).choice(x_NxD.shape[0], n_examples, replace=False))
        x_NxD, y_NxK = x_NxD[rows], y_NxK[rows]
    return jnp.asarray(x_NxD, jnp.float32), jnp.asarray(y_NxK, jnp.float32)


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


def _end_point(init, final, lr: float, ritz: tuple[float, float], x_NxD, y_NxK, alphas_A, activation, cost, l2=0.0) -> dict:
    """One network's entry of `analyze_group`, without the seed barrier."""
    top, bottom = ritz
    stuck = unit_saturation(final, x_NxD, activation)
    kind = stuck["kind"]
    path_A = np.asarray(_interpolate(init, final, x_NxD, y_NxK, alphas_A, activation, cost, float(l2)))
    return {
        "sharpness": top,
        "min_eigenvalue": bottom,
        "sharpness_lr": top * lr,
        f"{kind}_units": stuck["units"],
        f"{kind}_pairs": stuck["pairs"],
        "init_barrier": barrier(path_A),
        "cost_subset": float(path_A[-1]),
    }


def _next_seeds(members: list[dict], todo: list[int]) -> list[tuple[int, int]]:
    """(g, h): network h has the next seed after g's among the `todo` networks of g's learning rate, cyclically."""
    by_lr: dict[float, list[int]] = {}
    for g in todo:
        by_lr.setdefault(float(members[g]["learning_rate"]), []).append(g)
    pairs = []
    for gs in by_lr.values():
        gs = sorted(gs, key=lambda g: members[g]["seed"])
        if len(gs) > 1:
            pairs += [(g, gs[(i + 1) % len(gs)]) for i, g in enumerate(gs)]
    return pairs


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["critical"]:
        from mlpjax import critical_cli

        sys.exit(critical_cli.main())
    from mlpjax import geometry_cli

    sys.exit(geometry_cli.main())
