"""The geometry around trained networks: permutation alignment, connecting curves, pictures of the surface
and the Hessian's whole spectrum.

Pure functions of parameters (lists of `(W_OxI, b_O)`, as in `model`) and data:

  weight_matching / permute   hidden units of B reordered to match A's, B's function unchanged
                              (Ainsworth, Hayase & Srinivasa 2023, "Git Re-Basin")
  fit_bezier / bezier         a quadratic Bézier curve between two points whose middle point is trained
                              to lower the mean cost along it (Garipov et al. 2018)
  filter_normalized / surface the cost on a plane through a point, spanned by two random directions
                              scaled filter by filter to the parameters' norms (Li et al. 2018)
  hessian_eigenvalues / slq   every eigenvalue of the Hessian (float64 `eigh`), and the spectral density
                              by stochastic Lanczos quadrature (Ghorbani, Krishnan & Xiao 2019)

Their commands over saved runs are `python -m mlpjax.landscape {align,curve,lines,surface,spectrum}`
(`mlpjax/landscape/commands.py`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.optimize import linear_sum_assignment

from mlpjax import cost as cost_lib
from mlpjax import model
from mlpjax.landscape import critical, curvature

# --------------------------------------------------------------------------- permutation alignment


def permute(params: model.Params, perms: list[np.ndarray]) -> model.Params:
    """`params` with the units of hidden layer l reordered: new unit i is old unit `perms[l][i]`.

    The rows of W and b of layer l move, and so do the columns of layer l+1's W, so the
    network computes the same function. `perms` has one index array per hidden layer.
    """
    if len(perms) != len(params) - 1:
        raise ValueError(f"{len(perms)} permutations for {len(params) - 1} hidden layers")
    out, prev = [], None
    for l, (W_OxI, b_O) in enumerate(params):
        if prev is not None:
            W_OxI = W_OxI[:, prev]
        if l < len(perms):
            prev = np.asarray(perms[l])
            W_OxI, b_O = W_OxI[prev], b_O[prev]
        out.append((W_OxI, b_O))
    return out


def weight_matching(params_a: model.Params, params_b: model.Params, max_rounds: int = 100, seed: int = 0) -> tuple[list[np.ndarray], int]:
    """The permutations of B's hidden units that best match A's weights: `(perms, rounds)`.

    Maximizes Σ_l ⟨W_l^A, P_l W_l^B P_(l−1)ᵀ⟩ + ⟨b_l^A, P_l b_l^B⟩ (weight matching, Ainsworth et al.
    2023, Algorithm 1) by coordinate ascent: one hidden layer at a time, in an order drawn by
    `seed`, solve the linear assignment (`scipy.optimize.linear_sum_assignment`) of its units given
    the others, until a whole round changes nothing or `max_rounds` rounds. float64 throughout.
    `permute(params_b, perms)` is B aligned to A.
    """
    A = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params_a]
    B = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params_b]
    if [W.shape for W, _ in A] != [W.shape for W, _ in B]:
        raise ValueError(f"networks of different shapes: {[W.shape for W, _ in A]} and {[W.shape for W, _ in B]}")
    L = len(A) - 1
    perms = [np.arange(A[l][0].shape[0]) for l in range(L)]
    rng = np.random.default_rng(seed)
    rounds, changed = 0, True
    while changed and rounds < max_rounds:
        rounds, changed = rounds + 1, False
        for l in rng.permutation(L):
            # S_HxH[i, j]: how much B's unit j looks like A's unit i, its neighbours' units held fixed.
            W_in = B[l][0] if l == 0 else B[l][0][:, perms[l - 1]]
            W_out = B[l + 1][0] if l + 1 == L else B[l + 1][0][perms[l + 1]]
            S_HxH = A[l][0] @ W_in.T + np.outer(A[l][1], B[l][1]) + A[l + 1][0].T @ W_out
            _, best = linear_sum_assignment(S_HxH, maximize=True)
            if not np.array_equal(best, perms[l]):
                perms[l], changed = best, True
    return perms, rounds


def aligned(params_a: model.Params, params_b: model.Params) -> model.Params:
    """B with its hidden units permuted to match A's (`weight_matching`, then `permute`)."""
    return permute(params_b, weight_matching(params_a, params_b)[0])


# --------------------------------------------------------------------------- curves


def bezier(a, theta, b, t):
    """The quadratic Bézier curve `(1−t)²·a + 2t(1−t)·θ + t²·b` at t (pytrees of the same shape)."""
    return jax.tree.map(lambda a_, m_, b_: (1 - t) ** 2 * a_ + 2 * t * (1 - t) * m_ + t**2 * b_, a, theta, b)


@functools.partial(jax.jit, static_argnames=("loss", "steps", "samples"))
def fit_bezier(loss: Callable, a, b, key: jax.Array, data: tuple = (), theta0=None, steps: int = 2000, lr: float = 0.01, samples: int = 4):
    """The middle point θ of a Bézier curve from `a` to `b` trained to lower `E_t loss(φ(t))`, t ~ U(0, 1).

    `loss(params, key, *data)` is a scalar (`key` may draw a mini-batch from `data`). Each of
    `steps` Adam steps (learning rate `lr`) averages `samples` draws of t (Garipov et al. 2018).
    θ starts at `theta0` (default the midpoint (a+b)/2, where the curve is the straight line).
    Returns `(theta, losses_S)`, the mean loss of each step. One compiled program.
    """
    opt = optax.adam(lr)
    theta = jax.tree.map(lambda a_, b_: (a_ + b_) / 2, a, b) if theta0 is None else theta0

    def step(carry, key):
        theta, state = carry
        key_t, key_loss = jax.random.split(key)
        t_T = jax.random.uniform(key_t, (samples,))

        def mean_loss(theta):
            on_curve = lambda t, k: loss(bezier(a, theta, b, t), k, *data)
            return jnp.mean(jax.vmap(on_curve)(t_T, jax.random.split(key_loss, samples)))

        value, grad = jax.value_and_grad(mean_loss)(theta)
        updates, state = opt.update(grad, state, theta)
        return (optax.apply_updates(theta, updates), state), value

    (theta, _), losses_S = jax.lax.scan(step, (theta, opt.init(theta)), jax.random.split(key, steps))
    return theta, losses_S


@functools.partial(jax.jit, static_argnames=("activation", "cost"))
def curve_costs(a, theta, b, x_NxD, y_NxK, ts_T, activation: str, cost: str, l2=0.0) -> jax.Array:
    """The cost (with `(l2/2)‖θ‖²`) on `(x_NxD, y_NxK)` at each t of `ts_T` on the Bézier curve a → θ → b; shape (T,)."""
    return jax.lax.map(lambda t: cost_lib.network_cost(bezier(a, theta, b, t), x_NxD, y_NxK, activation, cost, l2), ts_T)


@functools.cache  # the same function for the same settings: `fit_bezier` compiles once for them
def minibatch_cost(activation: str, cost: str, batch: int, l2: float = 0.0) -> Callable:
    """`loss(params, key, x_NxD, y_NxK)`: the cost (with `(l2/2)‖θ‖²`) on `batch` rows drawn with replacement by `key`."""

    def loss(params, key, x_NxD, y_NxK):
        rows_B = jax.random.randint(key, (batch,), 0, x_NxD.shape[0])
        return cost_lib.network_cost(params, x_NxD[rows_B], y_NxK[rows_B], activation, cost, l2)

    return loss


# --------------------------------------------------------------------------- surfaces


def filter_normalized(direction: model.Params, params: model.Params) -> model.Params:
    """`direction` with each filter (a row of W: the weights into one neuron) scaled to the norm of
    that row of `params`, and bias directions zero (Li et al. 2018, who leave biases out).

    A direction drawn this way moves every neuron by the same fraction of its own weights, so
    a plot is unchanged when a neuron's weights are rescaled (e.g. ReLU's W_l·c, W_(l+1)/c).
    """
    out = []
    for (dW_OxI, _), (W_OxI, b_O) in zip(direction, params):
        scale_O = jnp.linalg.norm(W_OxI, axis=1) / jnp.maximum(jnp.linalg.norm(dW_OxI, axis=1), 1e-30)
        out.append((dW_OxI * scale_O[:, None], jnp.zeros_like(b_O)))
    return out


def random_direction(key: jax.Array, params: model.Params) -> model.Params:
    """A Gaussian direction shaped like `params`, `filter_normalized` to it."""
    keys = jax.random.split(key, len(params))
    raw = [(jax.random.normal(k, W.shape, jnp.float32), jnp.zeros_like(b)) for k, (W, b) in zip(keys, params)]
    return filter_normalized(raw, params)


@functools.partial(jax.jit, static_argnames=("activation", "cost"))
def surface(params, d1, d2, x_NxD, y_NxK, alphas_A, betas_B, activation: str, cost: str, l2=0.0) -> jax.Array:
    """`C(params + α·d1 + β·d2)` for every α of `alphas_A` and β of `betas_B`; shape (A, B)."""

    def at(alpha, beta):
        p = jax.tree.map(lambda w, u, v: w + alpha * u + beta * v, params, d1, d2)
        return cost_lib.network_cost(p, x_NxD, y_NxK, activation, cost, l2)

    # One row of the grid at a time: memory of B forward passes, not A·B.
    return jax.lax.map(lambda alpha: jax.vmap(lambda beta: at(alpha, beta))(betas_B), alphas_A)


# --------------------------------------------------------------------------- spectra


@functools.partial(jax.jit, static_argnames=("activation", "cost", "chunk"))
def _hessian_f32(params, x_NxD, y_NxK, activation: str, cost: str, chunk: int, l2=0.0):
    flat_P, cost_fn = curvature.flat_cost(params, x_NxD, y_NxK, activation, cost, l2)
    P = flat_P.size
    column = lambda i: curvature.hvp(cost_fn, flat_P, jax.nn.one_hot(i, P, dtype=flat_P.dtype))
    # `chunk` Hessian-vector products per batch: memory chunk·N·(hidden units), not P·N·(hidden units).
    return jax.lax.map(column, jnp.arange(P), batch_size=chunk)


def hessian_eigenvalues(params: model.Params, x_NxD, y_NxK, activation: str, cost: str, chunk: int = 64, l2: float = 0.0) -> np.ndarray:
    """Every eigenvalue (ascending, float64) of the P×P Hessian of the cost on `(x_NxD, y_NxK)`.

    The Hessian is built column by column from Hessian-vector products (float32, `chunk` at a
    time), symmetrized in float64, and diagonalized by `numpy.linalg.eigvalsh`. Memory 2·P²·8
    bytes: 2.7 GB for 784-16-16-10 (P = 13,002).
    """
    H_PxP = np.asarray(_hessian_f32(params, jnp.asarray(x_NxD), jnp.asarray(y_NxK), activation, cost, chunk, float(l2)), np.float64)
    H_PxP += H_PxP.T
    H_PxP *= 0.5
    return np.linalg.eigvalsh(H_PxP)


@functools.partial(jax.jit, static_argnames=("activation", "cost", "steps"))
def _lanczos_from(params, v0_VxP, x_NxD, y_NxK, activation, cost, steps, l2=0.0):
    one = lambda v0_P: curvature.lanczos_tridiagonal(params, x_NxD, y_NxK, v0_P, activation, cost, steps, l2)
    return jax.vmap(one)(v0_VxP)


def slq(params: model.Params, x_NxD, y_NxK, activation: str, cost: str, key: jax.Array, steps: int = 80, vectors: int = 8, l2: float = 0.0):
    """Stochastic Lanczos quadrature: `(nodes, weights)`, one array per start vector.

    From each of `vectors` random ±1 start vectors v, `steps` Lanczos steps give the tridiagonal T;
    its eigenvalues are the nodes and the squared first components of its eigenvectors the weights
    (they sum to 1). Σ_k w_k f(θ_k) is the Gauss quadrature of vᵀf(H)v/vᵀv, exact for polynomials f
    of degree < 2·steps; its mean over v estimates tr f(H)/P. The spectral density is
    `density(nodes, weights, grid, sigma)`. Memory `vectors`·`steps`·P.
    """
    P = model.param_count(params)
    steps = min(steps, P)
    v0_VxP = jax.random.rademacher(key, (vectors, P), jnp.float32)
    a_VxS, b_VxS = jax.device_get(_lanczos_from(params, v0_VxP, jnp.asarray(x_NxD), jnp.asarray(y_NxK), activation, cost, steps, float(l2)))
    nodes, weights = [], []
    for a_S, b_S in zip(a_VxS, b_VxS):
        theta_K, U_KxK = np.linalg.eigh(curvature.tridiagonal(a_S, b_S))
        nodes.append(theta_K)
        weights.append(U_KxK[0] ** 2)
    return nodes, weights


def density(nodes: list[np.ndarray], weights: list[np.ndarray], grid_G: np.ndarray, sigma: float) -> np.ndarray:
    """The spectral density on `grid_G`: the quadrature's point masses, each a Gaussian of width
    `sigma`, averaged over start vectors. It integrates to 1 (over a grid wide enough)."""
    d_G = np.zeros_like(grid_G, np.float64)
    for theta_K, w_K in zip(nodes, weights):
        d_G += (w_K[None, :] * np.exp(-0.5 * ((grid_G[:, None] - theta_K[None, :]) / sigma) ** 2)).sum(axis=1)
    return d_G / (len(nodes) * sigma * np.sqrt(2 * np.pi))


def outliers(eigenvalues: np.ndarray, look: int = 50) -> int:
    """How many of the largest eigenvalues stand above the widest relative gap among the top `look`
    positive ones: the k that maximizes λ_(k)/λ_(k+1), λ_(1) the largest."""
    top = np.sort(eigenvalues[eigenvalues > 0])[::-1][: look + 1]
    if top.size < 2:
        return int(top.size)
    return int(np.argmax(top[:-1] / top[1:])) + 1


# --------------------------------------------------------------------------- distinct minima


def distinct_minima(thetas: list[np.ndarray], distances: list[float], problem: critical.Problem) -> dict:
    """Which of the minima `thetas` (flat float64) are the same minimum up to a permutation of hidden units.

    B is aligned to A by weight matching (`weight_matching`); they are the same when
    ‖θ_A − P θ_B‖ ≤ 100·(d_A + d_B) + 1e-9·‖θ_A‖, d the Newton distances (‖∇f‖/|λ|_min) that locate
    each minimum. Returns `{"count", "groups" (lists of indices), "relative_distances" (‖θ_A − Pθ_B‖/‖θ_A‖,
    a matrix), "tolerances"}`. Permutations are the only symmetry undone (with λ > 0 the sign flip of a
    sigmoid unit changes ‖θ‖, so it is no symmetry of f).
    """
    n = len(thetas)
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    rel = np.zeros((n, n))
    tol = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            A, B = critical.unravel(problem, thetas[i]), critical.unravel(problem, thetas[j])
            perms, _ = weight_matching(A, B)
            B_aligned = critical.flatten(permute(B, perms))
            d = float(np.linalg.norm(thetas[i] - B_aligned))
            rel[i, j] = rel[j, i] = d / float(np.linalg.norm(thetas[i]))
            tol[i, j] = tol[j, i] = 100 * (distances[i] + distances[j]) + 1e-9 * float(np.linalg.norm(thetas[i]))
            if d <= tol[i, j]:
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return {"count": len(groups), "groups": list(groups.values()), "relative_distances": rel.tolist(), "tolerances": tol.tolist()}
