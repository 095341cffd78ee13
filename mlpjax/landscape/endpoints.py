"""Where a group of trained networks ended: sharpness, stuck units, barriers to the initialization and
between seeds (`analyze_group`, what `train.analyze` adds to summary.json), and the spread of costs.

These are measured at SGD's end points (or the polish's), which are not verified critical points;
`landscape.critical` finds and verifies those.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from mlpjax import checkpoint, model
from mlpjax.landscape.curvature import _extreme_ritz_values, _skip_reasons
from mlpjax.landscape.paths import _interpolate, barrier


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
                      the network's initialization to its end point, `n_alphas` points
      seed_barrier    `barrier` against the straight line between the endpoint costs, from
                      this end point to the next seed's among the surviving networks of the same
                      learning rate (cyclically: the last seed pairs with the first; absent if
                      it is alone); `seed_barrier_to` names that seed
      cost_subset     the cost at the end point on the subset
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
