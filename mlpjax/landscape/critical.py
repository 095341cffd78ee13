"""Critical points of a network's full-batch cost, found in float64: the search.

From a trained network θ₀ (SGD's end point, or the float32 polish's), `find` walks to a point where
the gradient of the run's cost f(θ) = C(θ) + (λ/2)‖θ‖² over N training examples vanishes:

  1. L-BFGS (optax, zoom line search) to get close: cheap steps, each one lowers f;
  2. trust-region Newton with Steihaug–Toint conjugate gradients on Hessian-vector products
     (Nocedal & Wright 2006, Algorithm 7.2): quadratic convergence where the Hessian allows it,
     and a step to the trust region's edge along negative curvature where it does not.

What kind of point it reached, and the evidence, is `landscape.verdict`. Everything runs under
`jax.enable_x64(True)` (float64 on CPU and GPU alike); one network at a time, since each network
needs its own number of steps (vmap would make every network wait for the slowest, as
`polish.polish` notes).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from mlpjax import cost as cost_lib
from mlpjax import model
from mlpjax.landscape import curvature


@dataclasses.dataclass(frozen=True)
class Problem:
    """The cost a critical point is sought for: f(θ) = mean cost on (x_NxD, y_NxK) + (l2/2)‖θ‖²."""

    sizes: tuple[int, ...]
    activation: str
    cost: str
    l2: float


# --------------------------------------------------------------------------- compiled pieces


@functools.cache
def _programs(problem: Problem):
    """The compiled float64 functions of θ_P (flat parameters, `ravel_pytree` order) for `problem`.

    Call them under `jax.enable_x64(True)`. Data, λ and tolerances are traced: one compilation per shape.
    """
    template = [(np.zeros((o, i)), np.zeros(o)) for i, o in zip(problem.sizes[:-1], problem.sizes[1:])]
    _, unravel = ravel_pytree(template)

    def f(theta_P, x_NxD, y_NxK, l2):
        return cost_lib.network_cost(unravel(theta_P), x_NxD, y_NxK, problem.activation, problem.cost, l2)

    grad_f = jax.grad(f)

    def hvp(theta_P, v_P, x_NxD, y_NxK, l2):
        return jax.jvp(lambda t: grad_f(t, x_NxD, y_NxK, l2), (theta_P,), (v_P,))[1]

    @functools.partial(jax.jit, static_argnames="K")
    def lbfgs(theta_P, state, x_NxD, y_NxK, l2, tol, K):
        """Up to K L-BFGS steps, stopping once ‖∇f‖ ≤ tol. Returns θ, state, steps, (K,) histories of ‖∇f‖, f, ‖θ‖."""
        fn = lambda t: f(t, x_NxD, y_NxK, l2)
        opt = optax.lbfgs()
        value_and_grad = optax.value_and_grad_from_state(fn)
        nan_K = jnp.full((K,), jnp.nan)

        def keep_going(c):
            return (c[2] < K) & (c[3] > tol)

        def step(c):
            t, s, k, _, g_K, f_K, n_K = c
            value, grad = value_and_grad(t, state=s)
            updates, s = opt.update(grad, s, t, value=value, grad=grad, value_fn=fn)
            t = t + updates
            gnorm = jnp.linalg.norm(optax.tree.get(s, "grad"))  # the line search left ∇f(t) in the state
            f_new = optax.tree.get(s, "value")
            return t, s, k + 1, gnorm, g_K.at[k].set(gnorm), f_K.at[k].set(f_new), n_K.at[k].set(jnp.linalg.norm(t))

        gnorm0 = jnp.linalg.norm(grad_f(theta_P, x_NxD, y_NxK, l2))
        c = jax.lax.while_loop(keep_going, step, (theta_P, state, 0, gnorm0, nan_K, nan_K, nan_K))
        return c[0], c[1], c[2], c[4], c[5], c[6]

    @jax.jit
    def lbfgs_init(theta_P):
        return optax.lbfgs().init(theta_P)

    @jax.jit
    def newton(theta_P, radius, x_NxD, y_NxK, l2, max_cg):
        """One trust-region Newton step (Steihaug–Toint CG). Returns θ, radius, ‖∇f‖ and f at the new θ,
        CG iterations, whether negative curvature was met, and whether the step was taken."""
        fn = lambda t: f(t, x_NxD, y_NxK, l2)
        H = lambda v: hvp(theta_P, v, x_NxD, y_NxK, l2)
        f0, g_P = jax.value_and_grad(fn)(theta_P)
        gnorm = jnp.linalg.norm(g_P)
        p_P, iters, negative = _steihaug(H, g_P, radius, jnp.minimum(0.5, jnp.sqrt(gnorm)) * gnorm, max_cg)
        model_decrease = -(g_P @ p_P + 0.5 * p_P @ H(p_P))
        f1, g1_P = jax.value_and_grad(fn)(theta_P + p_P)
        g1norm = jnp.linalg.norm(g1_P)
        rho = (f0 - f1) / model_decrease
        # Below ~1e-13·|f| the decrease in f is rounding: judge the step by the gradient instead.
        tiny = model_decrease <= 1e-13 * jnp.abs(f0)
        rho = jnp.where(tiny, jnp.where(g1norm < gnorm, 1.0, 0.0), rho)
        pnorm = jnp.linalg.norm(p_P)
        radius = jnp.where(rho < 0.25, 0.25 * pnorm, jnp.where((rho > 0.75) & (pnorm >= 0.99 * radius), 2 * radius, radius))
        take = (rho > 1e-4) & jnp.isfinite(f1)
        theta_P = jnp.where(take, theta_P + p_P, theta_P)
        return theta_P, radius, jnp.where(take, g1norm, gnorm), jnp.where(take, f1, f0), iters, negative, take

    @jax.jit
    def value_grad(theta_P, x_NxD, y_NxK, l2):
        return jax.value_and_grad(f)(theta_P, x_NxD, y_NxK, l2)

    @jax.jit
    def hvp_jit(theta_P, v_P, x_NxD, y_NxK, l2):
        return hvp(theta_P, v_P, x_NxD, y_NxK, l2)

    @functools.partial(jax.jit, static_argnames="steps")
    def lanczos(theta_P, v0_P, x_NxD, y_NxK, l2, steps):
        """`steps` Lanczos steps (`curvature.lanczos_steps`, float64): a_S, b_S."""
        return curvature.lanczos_steps(lambda v: hvp(theta_P, v, x_NxD, y_NxK, l2), v0_P, steps)

    return dict(
        unravel=unravel,
        lbfgs=lbfgs,
        lbfgs_init=lbfgs_init,
        newton=newton,
        value_grad=value_grad,
        hvp=hvp_jit,
        hessian=functools.partial(_hessian, problem),
        lanczos=lanczos,
    )


@functools.partial(jax.jit, static_argnums=0)
def _hessian_sum_NxU(problem: Problem, theta_P, x_NxD, y_NxK):
    """Σ over the examples of the blocks of `_hessian`, for one chunk of examples: (first-first
    H1x(D+1)xH1x(D+1), first-rest H1x(D+1)xR, rest-rest RxR), unscaled."""
    D, H1 = problem.sizes[0], problem.sizes[1]
    W1 = theta_P[: H1 * D].reshape(H1, D)
    b1, rest_R = theta_P[H1 * D : H1 * (D + 1)], theta_P[H1 * (D + 1) :]
    _, unravel_rest = ravel_pytree([(np.zeros((o, i)), np.zeros(o)) for i, o in zip(problem.sizes[1:-1], problem.sizes[2:])])
    output = cost_lib.OUTPUT_FOR_COST[problem.cost]

    def loss(u_U, y_K):  # one example's cost as a function of its first-layer input z1 and the other layers
        z_H, rest = u_U[:H1], unravel_rest(u_U[H1:])
        if not rest:  # no hidden layer: z1 is the output layer's input
            return cost_lib.PER_EXAMPLE[problem.cost](model.OUTPUTS[output](z_H), y_K)
        a_H = model.ACTIVATIONS[problem.activation](z_H)
        return cost_lib.PER_EXAMPLE[problem.cost](model.forward(rest, a_H[None], problem.activation, output)[0], y_K)

    z_NxH = x_NxD @ W1.T + b1
    G_NxUxU = jax.vmap(jax.hessian(loss))(jnp.concatenate([z_NxH, jnp.broadcast_to(rest_R, (z_NxH.shape[0], rest_R.shape[0]))], 1), y_NxK)
    xt_NxA = jnp.concatenate([x_NxD, jnp.ones_like(x_NxD[:, :1])], 1)  # z1 = [W1 | b1] [x; 1]
    Ghh_NxHxH, Ghr_NxHxR = G_NxUxU[:, :H1, :H1], G_NxUxU[:, :H1, H1:]
    first = jnp.einsum("na,nhkb->hakb", xt_NxA, Ghh_NxHxH[..., None] * xt_NxA[:, None, None, :])
    return first, jnp.einsum("na,nhr->har", xt_NxA, Ghr_NxHxR), G_NxUxU[:, H1:, H1:].sum(0)


def _hessian(problem: Problem, theta_P, x_NxD, y_NxK, l2, chunk: int = 250) -> np.ndarray:
    """The Hessian H_PxP of f at `theta_P` (float64, NumPy), from each example's Hessian in the first
    layer's pre-activations z1 and the other layers' parameters (U = H1 + R numbers, R = P − H1(D+1)).

    Since z1 = W1 x + b1 is linear in (W1, b1), ∂²ℓ/∂W1[h,a]∂W1[k,b] = ∂²ℓ/∂z1_h∂z1_k · x_a x_b exactly, and
    likewise for the other blocks: H needs N small (U x U) Hessians and three sums over the examples,
    about D·H1 times fewer operations than P Hessian-vector products (784-16-16-10 on 2,000 examples:
    seconds instead of minutes). Examples are summed `chunk` at a time (memory chunk·H1²·(D+1))."""
    D, H1 = problem.sizes[0], problem.sizes[1]
    A, N = D + 1, x_NxD.shape[0]
    sums = [_hessian_sum_NxU(problem, theta_P, x_NxD[i : i + chunk], y_NxK[i : i + chunk]) for i in range(0, N, chunk)]
    first, cross, rest = (np.asarray(sum(s[k] for s in sums)) for k in range(3))
    R = rest.shape[0]
    H = np.empty((H1 * A + R, H1 * A + R))
    H[: H1 * A, : H1 * A] = first.reshape(H1 * A, H1 * A)
    H[: H1 * A, H1 * A :] = cross.reshape(H1 * A, R)
    H[H1 * A :, : H1 * A] = H[: H1 * A, H1 * A :].T
    H[H1 * A :, H1 * A :] = rest
    # From the order [W1 | b1] row by row to ravel_pytree's: W1 (row-major), then b1, then the rest.
    order = np.concatenate([(np.arange(H1)[:, None] * A + np.arange(D)).ravel(), np.arange(H1) * A + D, H1 * A + np.arange(R)])
    H = H[np.ix_(order, order)]
    H /= N
    H[np.diag_indices_from(H)] += float(l2)
    return H


def _steihaug(H, g_P, radius, tol, max_iters):
    """Steihaug–Toint CG for min_p g·p + ½ pᵀHp, ‖p‖ ≤ radius: `(p_P, iterations, negative curvature met)`.

    Stops when the residual ‖Hp + g‖ ≤ tol, at the boundary, or along a direction of
    non-positive curvature (followed to the boundary), or after `max_iters` iterations.
    """

    def to_boundary(z_P, d_P):
        # τ ≥ 0 with ‖z + τd‖ = radius.
        a, b, c = d_P @ d_P, 2 * (z_P @ d_P), z_P @ z_P - radius**2
        return z_P + (-b + jnp.sqrt(jnp.maximum(b * b - 4 * a * c, 0.0))) / (2 * a) * d_P

    def keep_going(c):
        return (~c[4]) & (c[3] < max_iters)

    def body(c):
        z_P, r_P, d_P, j, _, negative = c
        Hd_P = H(d_P)
        dHd = d_P @ Hd_P
        rr = r_P @ r_P
        alpha = rr / jnp.where(dHd > 0, dHd, 1.0)
        z_new = z_P + alpha * d_P
        curved_down = dHd <= 0
        outside = jnp.linalg.norm(z_new) >= radius
        r_new = r_P + alpha * Hd_P
        converged = jnp.linalg.norm(r_new) <= tol
        edge = to_boundary(z_P, d_P)
        z_out = jnp.where(curved_down | outside, edge, z_new)
        d_new = -r_new + (r_new @ r_new) / rr * d_P
        done = curved_down | outside | converged
        return z_out, r_new, d_new, j + 1, done, negative | curved_down

    z0 = jnp.zeros_like(g_P)
    start_done = jnp.linalg.norm(g_P) <= tol
    z_P, _, _, j, _, negative = jax.lax.while_loop(keep_going, body, (z0, g_P, -g_P, 0, start_done, False))
    return z_P, j, negative


# --------------------------------------------------------------------------- the search


class Path(NamedTuple):
    """What `find` did: θ at the end and, per step, ‖∇f‖, f, ‖θ‖ and which method took it."""

    theta_P: np.ndarray
    grad_norm_S: np.ndarray
    cost_S: np.ndarray
    norm_S: np.ndarray
    method_S: np.ndarray  # 0: L-BFGS, 1: Newton
    lbfgs_steps: int
    newton_steps: int
    cg_iterations: int
    seconds: float
    stopped: str  # why the search ended


def find(
    problem: Problem,
    theta0_P: np.ndarray,
    x_NxD,
    y_NxK,
    tol: float = 1e-10,
    budget: float = 300.0,
    switch: float = 1e-6,
    lbfgs_steps: int = 20_000,
    newton_steps: int = 200,
    max_cg: int = 5_000,
    chunk: int = 500,
    log=None,
) -> Path:
    """Walk from `theta0_P` towards a critical point of `problem`'s cost on `(x_NxD, y_NxK)`, in float64.

    L-BFGS until ‖∇f‖ ≤ `switch` (or `lbfgs_steps`, or it stalls), then trust-region Newton–CG until
    ‖∇f‖ ≤ `tol`, `newton_steps`, or no step is taken 10 times in a row; the whole search stops after
    `budget` seconds (checked between compiled chunks of `chunk` L-BFGS steps or one Newton step).
    `log(line)`, if given, hears where the search is every 10 s or so.
    """
    last_said = [time.perf_counter()]

    def say(stage: str, hist: dict) -> None:
        if log is not None and time.perf_counter() - last_said[0] >= 10:
            last_said[0] = time.perf_counter()
            log(f"    {stage} step {len(hist['g']) - 1}: ‖∇f‖ {hist['g'][-1]:.3g}, f {hist['f'][-1]:.8g}, ‖θ‖ {hist['n'][-1]:.4g}")

    with jax.enable_x64(True):
        prog = _programs(problem)
        x_NxD, y_NxK = jnp.asarray(x_NxD, jnp.float64), jnp.asarray(y_NxK, jnp.float64)
        l2 = jnp.float64(problem.l2)
        theta_P = jnp.asarray(theta0_P, jnp.float64)
        t0 = time.perf_counter()
        f0, g0 = prog["value_grad"](theta_P, x_NxD, y_NxK, l2)
        hist = {"g": [float(jnp.linalg.norm(g0))], "f": [float(f0)], "n": [float(jnp.linalg.norm(theta_P))], "m": [0]}
        stopped = ""
        # 1. L-BFGS
        state, n_lbfgs = prog["lbfgs_init"](theta_P), 0
        while hist["g"][-1] > max(tol, switch) and n_lbfgs < lbfgs_steps:
            if time.perf_counter() - t0 > budget:
                stopped = "budget spent in L-BFGS"
                break
            K = min(chunk, lbfgs_steps - n_lbfgs)
            theta_P, state, k, g_K, f_K, n_K = prog["lbfgs"](theta_P, state, x_NxD, y_NxK, l2, max(tol, switch), K)
            k = int(k)
            g_prev = hist["g"][-1]
            hist["g"] += np.asarray(g_K[:k]).tolist()
            hist["f"] += np.asarray(f_K[:k]).tolist()
            hist["n"] += np.asarray(n_K[:k]).tolist()
            hist["m"] += [0] * k
            n_lbfgs += k
            say("L-BFGS", hist)
            if (
                k == 0
                or not np.isfinite(hist["g"][-1])
                or (k == K and hist["g"][-1] > 0.999 * g_prev and hist["f"][-1] >= hist["f"][-k - 1])
            ):
                break  # stalled (the line search made no progress): Newton takes over
        # 2. Newton
        radius, n_newton, cg_total, refused = jnp.float64(1.0), 0, 0, 0
        while not stopped and hist["g"][-1] > tol and n_newton < newton_steps:
            if time.perf_counter() - t0 > budget:
                stopped = "budget spent in Newton"
                break
            theta_P, radius, gnorm, fval, iters, _, take = prog["newton"](theta_P, radius, x_NxD, y_NxK, l2, max_cg)
            n_newton += 1
            cg_total += int(iters)
            refused = 0 if bool(take) else refused + 1
            hist["g"].append(float(gnorm))
            hist["f"].append(float(fval))
            hist["n"].append(float(jnp.linalg.norm(theta_P)))
            hist["m"].append(1)
            say(f"Newton (CG {int(iters)})", hist)
            if refused >= 10 or float(radius) < 1e-300:
                stopped = "Newton stalled: 10 steps in a row refused"
                break
        if not stopped:
            stopped = f"‖∇f‖ ≤ tol = {tol:g}" if hist["g"][-1] <= tol else f"step limit (L-BFGS {lbfgs_steps}, Newton {newton_steps})"
        return Path(
            np.asarray(theta_P),
            np.array(hist["g"]),
            np.array(hist["f"]),
            np.array(hist["n"]),
            np.array(hist["m"], np.int8),
            n_lbfgs,
            n_newton,
            cg_total,
            time.perf_counter() - t0,
            stopped,
        )


def unravel(problem: Problem, theta_P) -> model.Params:
    """The flat float64 `theta_P` as `[(W_OxI, b_O), …]` (NumPy float64 arrays)."""
    shapes = [((o, i), (o,)) for i, o in zip(problem.sizes[:-1], problem.sizes[1:])]
    theta_P, out, at = np.asarray(theta_P, np.float64), [], 0
    for (o, i), _ in shapes:
        W = theta_P[at : at + o * i].reshape(o, i)
        at += o * i
        b = theta_P[at : at + o]
        at += o
        out.append((W, b))
    return out


def flatten(params: model.Params) -> np.ndarray:
    """`[(W, b), …]` as one float64 vector in `ravel_pytree` order (W then b, layer by layer)."""
    return np.concatenate([np.concatenate([np.asarray(W, np.float64).ravel(), np.asarray(b, np.float64).ravel()]) for W, b in params])
