"""Critical points of a network's full-batch cost, found and verified in float64.

From a trained network θ₀ (SGD's end point, or the float32 polish's), `find` walks to a point where
the gradient of the run's cost f(θ) = C(θ) + (λ/2)‖θ‖² over N training examples vanishes:

  1. L-BFGS (optax, zoom line search) to get close: cheap steps, each one lowers f;
  2. trust-region Newton with Steihaug–Toint conjugate gradients on Hessian-vector products
     (Nocedal & Wright 2006, Algorithm 7.2): quadratic convergence where the Hessian allows it,
     and a step to the trust region's edge along negative curvature where it does not.

`verdict` then names the point from its gradient and its Hessian spectrum (every eigenvalue of the
dense float64 Hessian when P ≤ `dense_max`, else Lanczos), with the evidence. The definitions, with
the reasons for each tolerance (written into critical.json as `DEFINITIONS`):

  minimum          ‖∇f‖ ≤ tol, and every eigenvalue > ε (strict), or ≥ −ε with the eigenvalues in
                   [−ε, ε] no more than the parameter symmetries explain (λ = 0 only: ReLU rescaling,
                   dead units; with λ > 0 no continuous symmetry is left, so any zero is unexplained)
  saddle           ‖∇f‖ ≤ tol and k ≥ 1 eigenvalues < −ε (k: the index)
  gradient-flat    ‖∇f‖ > tol when the budget is spent, and ‖H ∇f‖ ≤ 1e-6·λ_max·‖∇f‖: the gradient
                   lies in directions of almost no curvature, where Newton-type finders stall
                   (Frye, Yang, Chung & Bouchard 2021)
  escaping         not a minimum or saddle by the tests above (‖∇f‖ > tol, or a degenerate spectrum),
                   and over the last half of the steps f fell while ‖θ‖ grew by ≥ 5% and the slope of
                   log‖θ‖ against log(step) is ≥ 0.02: the cost is still lowered by growing the weights
                   (saturating sigmoids), so there may be no minimum that way
  unresolved       anything else, or a test above that is inconclusive; the JSON says why

  ε = max(1e-9·λ_max, λ_max·‖∇f‖/|λ|_min).  The first term is about 700× the worst-case float64
  rounding of the eigenvalues of a P = 13,002 Hessian (P·2⁻⁵³·λ_max); the second is how far the
  spectrum may still move between this point and the exact critical point, ‖∇f‖/|λ|_min away
  (the Newton distance), if third derivatives are at most λ_max per unit length — an assumption,
  which is why a small λ_min needs a gradient far below `tol` before it counts.
  tol = 1e-10 by default: ~10⁸ below SGD's end points, ~10⁴ above the float64 rounding of a
  gradient averaged over 50,000 examples.

A wrong `minimum` is the worst outcome here: every test that cannot decide gives `unresolved`.
Everything runs under `jax.enable_x64(True)` (float64 on CPU and GPU alike); one network at a time,
since each network needs its own number of steps (vmap would make every network wait for the
slowest, as `minima.polish` notes).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from mlpjax import cost as cost_lib
from mlpjax import model

MINIMUM, SADDLE, GRADIENT_FLAT, ESCAPING, UNRESOLVED = "minimum", "saddle", "gradient-flat", "escaping", "unresolved"
VERDICTS = (MINIMUM, SADDLE, GRADIENT_FLAT, ESCAPING, UNRESOLVED)

EPS_REL = 1e-9  # ε's floor, relative to λ_max
FLAT_REL = 1e-6  # gradient-flat: ‖H ĝ‖ ≤ FLAT_REL·λ_max
GROWTH = 0.05  # escaping: ‖θ‖ grew by at least this fraction over the last half of the steps
SLOPE = 0.02  # escaping: d log‖θ‖ / d log step at least this

DEFINITIONS = {
    MINIMUM: "‖∇f‖ ≤ tol and every Hessian eigenvalue > ε, or ≥ −ε with no more eigenvalues in [−ε, ε] than the "
    "parameter symmetries explain (λ = 0: ReLU rescaling, dead units)",
    SADDLE: "‖∇f‖ ≤ tol and k ≥ 1 eigenvalues < −ε; k is the index",
    GRADIENT_FLAT: f"‖∇f‖ > tol after the budget, and ‖H∇f‖ ≤ {FLAT_REL:g}·λ_max·‖∇f‖ (Frye et al. 2021)",
    ESCAPING: f"not a minimum or saddle by the tests above, and over the last half of the steps f fell while ‖θ‖ grew "
    f"by ≥ {GROWTH:.0%} with d log‖θ‖ / d log step ≥ {SLOPE:g}",
    UNRESOLVED: "none of the above could be decided within the budget; `reason` says why",
    "ε": f"max({EPS_REL:g}·λ_max, λ_max·‖∇f‖/|λ|_min): float64 rounding of the spectrum (≤ P·2⁻⁵³·λ_max), and how far "
    "the spectrum may move to the exact critical point ‖∇f‖/|λ|_min away if third derivatives are ≤ λ_max per unit length",
    "f": "the run's cost on the examples used: mean over them of the per-example cost, plus (λ/2)‖θ‖² (model.l2)",
}


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

    @functools.partial(jax.jit, static_argnames="chunk")
    def hessian(theta_P, x_NxD, y_NxK, l2, chunk):
        P = theta_P.shape[0]
        column = lambda i: hvp(theta_P, jax.nn.one_hot(i, P, dtype=theta_P.dtype), x_NxD, y_NxK, l2)
        return jax.lax.map(column, jnp.arange(P), batch_size=chunk)  # chunk columns at once: memory chunk·N·units

    @functools.partial(jax.jit, static_argnames="steps")
    def lanczos(theta_P, v0_P, x_NxD, y_NxK, l2, steps):
        """`steps` Lanczos steps, basis reorthogonalized twice per step: a_S, b_S."""
        H = lambda v: hvp(theta_P, v, x_NxD, y_NxK, l2)

        def step(j, carry):
            V_SxP, a_S, b_S = carry
            w_P = H(V_SxP[j])
            a_S = a_S.at[j].set(V_SxP[j] @ w_P)
            for _ in range(2):
                w_P = w_P - V_SxP.T @ (V_SxP @ w_P)
            beta = jnp.linalg.norm(w_P)
            V_SxP = V_SxP.at[j + 1].set(jnp.where(beta > 0, w_P / jnp.where(beta > 0, beta, 1.0), 0.0))
            return V_SxP, a_S, b_S.at[j].set(beta)

        V_SxP = jnp.zeros((steps + 1, theta_P.shape[0])).at[0].set(v0_P / jnp.linalg.norm(v0_P))
        _, a_S, b_S = jax.lax.fori_loop(0, steps, step, (V_SxP, jnp.zeros(steps), jnp.zeros(steps)))
        return a_S, b_S

    return dict(
        unravel=unravel,
        lbfgs=lbfgs,
        lbfgs_init=lbfgs_init,
        newton=newton,
        value_grad=value_grad,
        hvp=hvp_jit,
        hessian=hessian,
        lanczos=lanczos,
    )


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


# --------------------------------------------------------------------------- the spectrum


def spectrum(problem: Problem, theta_P, x_NxD, y_NxK, dense_max: int = 16_000, lanczos_steps: int = 300, seed: int = 0) -> dict:
    """The Hessian's spectrum at `theta_P`, float64: every eigenvalue where P ≤ `dense_max` (symmetrized
    dense Hessian from HVPs, `numpy.linalg.eigvalsh`), else the Ritz values of `lanczos_steps` Lanczos steps.

    Returns `{"method", "eigenvalues" (ascending), "lambda_min", "lambda_max", "residual_min"
    (Lanczos: ‖H u − θ u‖ of the smallest Ritz pair; an eigenvalue lies within it), "asymmetry"
    (dense: max |H − Hᵀ| / λ_max, the rounding seen)}`.
    """
    P = int(np.size(theta_P))
    with jax.enable_x64(True):
        prog = _programs(problem)
        x_NxD, y_NxK = jnp.asarray(x_NxD, jnp.float64), jnp.asarray(y_NxK, jnp.float64)
        theta_P, l2 = jnp.asarray(theta_P, jnp.float64), jnp.float64(problem.l2)
        if P <= dense_max:
            t0 = time.perf_counter()
            H_PxP = np.asarray(prog["hessian"](theta_P, x_NxD, y_NxK, l2, min(64, P)))
            t1 = time.perf_counter()
            eig = np.linalg.eigvalsh(0.5 * (H_PxP + H_PxP.T))
            scale = max(abs(eig[0]), abs(eig[-1]), 1e-300)
            return {
                "hessian_seconds": round(t1 - t0, 3),
                "eigen_seconds": round(time.perf_counter() - t1, 3),
                "method": "dense float64 Hessian, every eigenvalue (numpy.linalg.eigvalsh)",
                "eigenvalues": eig,
                "lambda_min": float(eig[0]),
                "lambda_max": float(eig[-1]),
                "complete": True,
                "residual_min": 0.0,
                "asymmetry": float(np.max(np.abs(H_PxP - H_PxP.T)) / scale),
            }
        steps = min(lanczos_steps, P)
        v0_P = jnp.asarray(np.random.default_rng(seed).normal(size=P))
        t0 = time.perf_counter()
        a_S, b_S = (np.asarray(a, np.float64) for a in prog["lanczos"](theta_P, v0_P, x_NxD, y_NxK, l2, steps))
        lanczos_seconds = round(time.perf_counter() - t0, 3)
    T = np.diag(a_S) + np.diag(b_S[:-1], 1) + np.diag(b_S[:-1], -1)
    theta_K, U_KxK = np.linalg.eigh(T)
    residual_K = np.abs(b_S[-1] * U_KxK[-1])  # ‖H u − θ u‖ of each Ritz pair
    return {
        "method": f"Lanczos, {steps} steps from a Gaussian start (seed {seed}), float64, full reorthogonalization",
        "eigenvalues": theta_K,
        "lambda_min": float(theta_K[0]),
        "lambda_max": float(theta_K[-1]),
        "complete": False,
        "residual_min": float(residual_K[0]),
        "residual_max": float(residual_K[-1]),
        "lanczos_seconds": lanczos_seconds,
    }


def symmetries(problem: Problem, params: model.Params, x_NxD) -> dict:
    """The zero-curvature directions the parameters' symmetries give at a critical point (exact counts).

    Only at λ = 0 (with λ > 0 the (λ/2)‖θ‖² term curves every direction): each live ReLU unit one
    rescaling direction (W_in·c, b·c, W_out/c); each dead unit (0 on every example) its fan-in + 1
    incoming and fan-out outgoing weights. Sigmoid networks have only discrete symmetries (permutations,
    sign flips), which give no zero eigenvalue.
    """
    out = {"relu_rescaling": 0, "dead_unit_weights": 0, "dead_units": 0}
    if problem.l2 != 0 or problem.activation != "relu":
        return out | {"explained": 0}
    hidden = model.hidden_activations(params, jnp.asarray(x_NxD, jnp.asarray(params[0][0]).dtype), "relu")
    for l, a_NxH in enumerate(hidden):
        dead_H = np.asarray(jnp.all(a_NxH == 0, axis=0))
        fan_in, fan_out = problem.sizes[l], problem.sizes[l + 2]
        out["dead_units"] += int(dead_H.sum())
        out["dead_unit_weights"] += int(dead_H.sum()) * (fan_in + 1 + fan_out)
        out["relu_rescaling"] += int((~dead_H).sum())
    return out | {"explained": out["relu_rescaling"] + out["dead_unit_weights"]}


# --------------------------------------------------------------------------- the verdict


def epsilon(lambda_max: float, lambda_abs_min: float, grad_norm: float) -> float:
    """ε: eigenvalues within ±ε of 0 are not told apart from 0 (see the module docstring)."""
    return max(EPS_REL * abs(lambda_max), abs(lambda_max) * grad_norm / max(lambda_abs_min, 1e-300))


def escape_measure(path: Path) -> dict:
    """Over the last half of the steps: ‖θ‖'s growth, the slope of log‖θ‖ against log step, f's change."""
    S = path.norm_S.size
    if S < 4:
        return {"norm_growth": 0.0, "log_norm_slope": 0.0, "cost_change": 0.0}
    half = slice(S // 2, S)
    steps = np.arange(S, dtype=np.float64)[half] + 1
    logn = np.log(path.norm_S[half])
    slope = float(np.polyfit(np.log(steps), logn, 1)[0]) if np.ptp(np.log(steps)) > 0 else 0.0
    return {
        "norm_growth": float(path.norm_S[-1] / path.norm_S[S // 2] - 1),
        "log_norm_slope": slope,
        "cost_change": float(path.cost_S[-1] - path.cost_S[S // 2]),
    }


def verdict(
    grad_norm: float, tol: float, spec: dict | None, explained: int, escape: dict, flat_ratio: float | None, lambda_max: float
) -> dict:
    """The verdict and its evidence from the measurements (pure; see `DEFINITIONS`).

    `spec`: `spectrum`'s result at a point with ‖∇f‖ ≤ tol (None otherwise); `explained`: zero
    eigenvalues the symmetries account for; `escape`: `escape_measure`; `flat_ratio`: ‖H ĝ‖/λ_max
    at a point with ‖∇f‖ > tol; `lambda_max`: the largest eigenvalue (or its estimate).
    """
    if not math.isfinite(grad_norm):
        return {"verdict": UNRESOLVED, "reason": "the gradient is not finite"}
    second = _second_order(grad_norm, spec, explained, lambda_max) if grad_norm <= tol else None
    if second is not None and second["verdict"] in (MINIMUM, SADDLE):
        return second
    # Not a verified minimum or saddle: a small gradient on a degenerate spectrum can be the far,
    # saturated end of a path along which the cost keeps falling.
    if escape["norm_growth"] >= GROWTH and escape["log_norm_slope"] >= SLOPE and escape["cost_change"] < 0:
        why = f"‖∇f‖ = {grad_norm:.3g} > tol" if second is None else f"‖∇f‖ ≤ tol but {second['reason']}"
        return (second or {}) | {
            "verdict": ESCAPING,
            "reason": f"{why}; over the last half of the steps ‖θ‖ grew {escape['norm_growth']:.1%} "
            f"(slope of log‖θ‖ on log step {escape['log_norm_slope']:.2g}) while f fell",
        }
    if second is not None:
        return second
    if flat_ratio is not None and flat_ratio <= FLAT_REL:
        return {"verdict": GRADIENT_FLAT, "reason": f"‖∇f‖ = {grad_norm:.3g} > tol with ‖H ĝ‖ = {flat_ratio:.2g}·λ_max"}
    return {"verdict": UNRESOLVED, "reason": f"‖∇f‖ = {grad_norm:.3g} > tol = {tol:g} when the search ended"}


def _second_order(grad_norm: float, spec: dict, explained: int, lambda_max: float) -> dict:
    """minimum, saddle, or unresolved (degenerate or inconclusive) from the spectrum at a point with ‖∇f‖ ≤ tol."""
    eig = np.asarray(spec["eigenvalues"])
    # The Newton distance uses the smallest |λ| beyond the zeros the symmetries explain (flat by construction).
    abs_sorted = np.sort(np.abs(eig))
    lam_abs_min = float(abs_sorted[min(explained, abs_sorted.size - 1)])
    eps = epsilon(lambda_max, lam_abs_min, grad_norm)
    out = {"epsilon": eps}
    if spec["complete"]:
        negative, zero = int(np.sum(eig < -eps)), int(np.sum(np.abs(eig) <= eps))
        out |= {"negative": negative, "zero": zero, "index": negative}
        if negative:
            return out | {"verdict": SADDLE, "reason": f"{negative} eigenvalue(s) below −ε = {-eps:.3g}"}
        if zero == 0:
            return out | {"verdict": MINIMUM, "reason": f"every eigenvalue > ε = {eps:.3g} (strict minimum)"}
        if zero <= explained:
            return out | {
                "verdict": MINIMUM,
                "reason": f"no eigenvalue below −ε; {zero} within ±ε, ≤ the {explained} the symmetries explain",
            }
        return out | {
            "verdict": UNRESOLVED,
            "reason": f"degenerate: {zero} eigenvalue(s) within ±ε = {eps:.3g}, {explained} explained by symmetries",
        }
    # Lanczos: its smallest Ritz value is ≥ λ_min (interlacing), so a negative one proves a saddle; a
    # positive one is evidence only, trusted when converged (an eigenvalue lies within its residual).
    theta_min, residual = float(eig[0]), float(spec["residual_min"])
    negative = int(np.sum(eig < -eps))
    out |= {"negative": negative, "zero": int(np.sum(np.abs(eig) <= eps)), "index": None, "index_at_least": negative}
    if theta_min < -eps:
        return out | {
            "verdict": SADDLE,
            "reason": f"a Ritz value {theta_min:.3g} < −ε: λ_min ≤ it (index ≥ {negative}; Lanczos gives no exact count)",
        }
    if theta_min - residual > eps and residual <= 1e-3 * abs(theta_min):
        return out | {
            "verdict": MINIMUM,
            "reason": f"smallest Ritz value {theta_min:.3g} converged (residual {residual:.2g}) and > ε; "
            "Lanczos, not every eigenvalue: one below it that Lanczos did not reach is not excluded",
        }
    return out | {
        "verdict": UNRESOLVED,
        "reason": f"Lanczos inconclusive: smallest Ritz value {theta_min:.3g}, residual {residual:.2g}, ε {eps:.3g}",
    }


def analyze(
    problem: Problem, theta0_P, x_NxD, y_NxK, tol: float = 1e-10, budget: float = 300.0, dense_max: int = 16_000, **find_kw
) -> dict:
    """`find`, then `verdict` with every measurement it rests on. Returns the entry of critical.json
    (without accuracies) and, under `"path"`, the `Path` and under `"spectrum"` the spectrum."""
    path = find(problem, theta0_P, x_NxD, y_NxK, tol=tol, budget=budget, **find_kw)
    t0 = time.perf_counter()
    if find_kw.get("log") is not None and path.grad_norm_S[-1] <= tol:
        P = int(np.size(path.theta_P))
        find_kw["log"](
            f"    ‖∇f‖ {path.grad_norm_S[-1]:.3g} after {path.seconds:.0f} s; the spectrum ({'dense' if P <= dense_max else 'Lanczos'}, P = {P:,})"
        )
    params = unravel(problem, path.theta_P)
    grad_norm = float(path.grad_norm_S[-1])
    with jax.enable_x64(True):
        prog = _programs(problem)
        x64, y64 = jnp.asarray(x_NxD, jnp.float64), jnp.asarray(y_NxK, jnp.float64)
        theta, l2 = jnp.asarray(path.theta_P), jnp.float64(problem.l2)
        f, g_P = prog["value_grad"](theta, x64, y64, l2)
        grad_norm = float(jnp.linalg.norm(g_P))  # recomputed at the returned point, not the search's last value
        spec, flat_ratio = None, None
        if grad_norm <= tol:
            spec = spectrum(problem, path.theta_P, x_NxD, y_NxK, dense_max)
            lambda_max = spec["lambda_max"]
        else:
            quick = spectrum(problem, path.theta_P, x_NxD, y_NxK, dense_max=0, lanczos_steps=30)
            lambda_max = quick["lambda_max"]
            if grad_norm > 0 and math.isfinite(grad_norm):
                Hg = prog["hvp"](theta, g_P / grad_norm, x64, y64, l2)
                flat_ratio = float(jnp.linalg.norm(Hg)) / max(abs(lambda_max), 1e-300)
    sym = symmetries(problem, params, x_NxD)
    escape = escape_measure(path)
    v = verdict(grad_norm, tol, spec, sym["explained"], escape, flat_ratio, lambda_max)
    theta0_P = np.asarray(theta0_P, np.float64)
    entry = {
        **v,
        "grad_norm": grad_norm,
        "cost": float(f),
        "theta_norm": float(np.linalg.norm(path.theta_P)),
        "moved": float(np.linalg.norm(path.theta_P - theta0_P) / np.linalg.norm(theta0_P)),
        "lambda_max": float(lambda_max),
        "lambda_min": float(spec["lambda_min"]) if spec else None,
        "spectrum_method": spec["method"] if spec else None,
        "spectrum_asymmetry": spec.get("asymmetry") if spec else None,
        "lanczos_residual_min": spec["residual_min"] if spec and not spec["complete"] else None,
        "spectrum_seconds": {k: spec[k] for k in ("hessian_seconds", "eigen_seconds", "lanczos_seconds") if k in spec} if spec else None,
        "newton_distance": grad_norm / float(np.sort(np.abs(spec["eigenvalues"]))[min(sym["explained"], spec["eigenvalues"].size - 1)])
        if spec
        else None,
        "flat_ratio": flat_ratio,
        "symmetries": sym,
        "escape": escape,
        "lbfgs_steps": path.lbfgs_steps,
        "newton_steps": path.newton_steps,
        "cg_iterations": path.cg_iterations,
        "stopped": path.stopped,
        "search_seconds": round(path.seconds, 3),
        "verify_seconds": round(time.perf_counter() - t0, 3),
    }
    return entry | {"path": path, "spectrum": spec}


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


# --------------------------------------------------------------------------- distinct minima


def distinct_minima(thetas: list[np.ndarray], distances: list[float], problem: Problem) -> dict:
    """Which of the minima `thetas` (flat float64) are the same minimum up to a permutation of hidden units.

    B is aligned to A by weight matching (`geometry.weight_matching`); they are the same when
    ‖θ_A − P θ_B‖ ≤ 100·(d_A + d_B) + 1e-9·‖θ_A‖, d the Newton distances (‖∇f‖/|λ|_min) that locate
    each minimum. Returns `{"count", "groups" (lists of indices), "relative_distances" (‖θ_A − Pθ_B‖/‖θ_A‖,
    a matrix), "tolerances"}`. Permutations are the only symmetry undone (with λ > 0 the sign flip of a
    sigmoid unit changes ‖θ‖, so it is no symmetry of f).
    """
    from mlpjax.landscape import geometry

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
            A, B = unravel(problem, thetas[i]), unravel(problem, thetas[j])
            perms, _ = geometry.weight_matching(A, B)
            B_aligned = flatten(geometry.permute(B, perms))
            d = float(np.linalg.norm(thetas[i] - B_aligned))
            rel[i, j] = rel[j, i] = d / float(np.linalg.norm(thetas[i]))
            tol[i, j] = tol[j, i] = 100 * (distances[i] + distances[j]) + 1e-9 * float(np.linalg.norm(thetas[i]))
            if d <= tol[i, j]:
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return {"count": len(groups), "groups": list(groups.values()), "relative_distances": rel.tolist(), "tolerances": tol.tolist()}
