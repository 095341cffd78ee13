"""What kind of critical point a search reached, and the evidence: the spectrum and the verdict.

After `critical.find`, `verdict` names the point from its gradient and its Hessian spectrum (every eigenvalue of the
dense float64 Hessian when P ≤ `dense_max`, else Lanczos), with the evidence. The definitions, with
the reasons for each tolerance (written into critical.json as `DEFINITIONS`):

  minimum          ‖∇f‖ ≤ tol, every one of the P eigenvalues of the dense Hessian computed, and each
                   > ε (strict), or none < −ε and exactly as many in [−ε, ε] as the symmetries give flat
                   directions (`symmetries`: at λ = 0 only — always-zero inputs, dead ReLU units, ReLU
                   rescaling, the softmax shift; with λ > 0 there are none). Lanczos (P > dense_max) never
                   gives a minimum: a smaller eigenvalue it did not reach cannot be excluded
  saddle           ‖∇f‖ ≤ tol and k ≥ 1 eigenvalues < −ε (k: the index); by Lanczos a Ritz value < −ε
                   (Ritz values interlace: λ_min ≤ the smallest), the index then only bounded below
  gradient-flat    ‖∇f‖ > tol when the search ended, and ‖H ∇f‖ ≤ 1e-6·λ_max·‖∇f‖: the gradient lies in
                   directions of almost no curvature, where Newton-type finders stall (Frye, Yang, Chung &
                   Bouchard 2021)
  escaping         λ = 0 only (with λ > 0 the cost grows without bound with ‖θ‖); not a minimum or saddle
                   by the tests above, and over the last half of the steps f fell while ‖θ‖ grew by ≥ 5%
                   with a slope of log‖θ‖ against log(step) ≥ 0.02: the cost is still lowered by growing
                   the weights (saturating sigmoids), so there may be no minimum that way
  unresolved       anything else, or a test above that is inconclusive; the JSON says why

  ε = max(1e-9·λ_max, λ_max·‖∇f‖/|λ|_min, P·max|H − Hᵀ|). The first term is about 700× the worst-case
  float64 rounding of the eigenvalues of a P = 13,002 Hessian (P·2⁻⁵³·λ_max). The second is how far the
  spectrum may still move between this point and the exact critical point ‖∇f‖/|λ|_min away (the
  Newton distance; |λ|_min beyond the symmetries' zeros) if third derivatives are at most λ_max per unit
  length — an assumption, not a proof, which is why a small λ_min needs a gradient far below `tol`.
  The third bounds, by Weyl's inequality, the shift of the spectrum by the Hessian's own rounding, its
  measured asymmetry standing for the error of its entries (float64 sums over N examples).
  tol = 1e-10 by default: ~10⁸ below SGD's end points, ~10⁴ above the float64 rounding of a
  gradient averaged over 50,000 examples.

A wrong `minimum` is the worst outcome here: every test that cannot decide gives `unresolved`.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from mlpjax import model
from mlpjax.landscape.critical import Path, Problem, _programs, find, unravel

MINIMUM, SADDLE, GRADIENT_FLAT, ESCAPING, UNRESOLVED = "minimum", "saddle", "gradient-flat", "escaping", "unresolved"
VERDICTS = (MINIMUM, SADDLE, GRADIENT_FLAT, ESCAPING, UNRESOLVED)

EPS_REL = 1e-9  # ε's floor, relative to λ_max
FLAT_REL = 1e-6  # gradient-flat: ‖H ĝ‖ ≤ FLAT_REL·λ_max
GROWTH = 0.05  # escaping: ‖θ‖ grew by at least this fraction over the last half of the steps
SLOPE = 0.02  # escaping: d log‖θ‖ / d log step at least this

DEFINITIONS = {
    MINIMUM: "‖∇f‖ ≤ tol, every one of the P eigenvalues of the dense Hessian computed, each > ε; or none < −ε and exactly as "
    "many in [−ε, ε] as the symmetries give flat directions (λ = 0 only). Lanczos never gives a minimum",
    SADDLE: "‖∇f‖ ≤ tol and k ≥ 1 eigenvalues < −ε; k is the index (by Lanczos: a Ritz value < −ε, the index only bounded below)",
    GRADIENT_FLAT: f"‖∇f‖ > tol when the search ended, and ‖H∇f‖ ≤ {FLAT_REL:g}·λ_max·‖∇f‖ (Frye et al. 2021)",
    ESCAPING: f"λ = 0 only: not a minimum or saddle by the tests above, and over the last half of the steps f fell while ‖θ‖ "
    f"grew by ≥ {GROWTH:.0%} with d log‖θ‖ / d log step ≥ {SLOPE:g}",
    UNRESOLVED: "none of the above could be decided; `reason` says why",
    "ε": f"max({EPS_REL:g}·λ_max, λ_max·‖∇f‖/|λ|_min, P·max|H − Hᵀ|): float64 rounding of the spectrum (≤ P·2⁻⁵³·λ_max); "
    "how far the spectrum may move to the exact critical point ‖∇f‖/|λ|_min away if third derivatives are ≤ λ_max per unit "
    "length (an assumption); the Hessian's own rounding (Weyl)",
    "f": "the run's cost on the examples used: mean over them of the per-example cost, plus (λ/2)‖θ‖² (model.l2)",
}


# --------------------------------------------------------------------------- the spectrum


def spectrum(problem: Problem, theta_P, x_NxD, y_NxK, dense_max: int = 16_000, lanczos_steps: int = 300, seed: int = 0) -> dict:
    """The Hessian's spectrum at `theta_P`, float64: every eigenvalue where P ≤ `dense_max` (the dense
    Hessian from per-example blocks, `critical._hessian`, symmetrized; `numpy.linalg.eigvalsh`), else the Ritz values of `lanczos_steps` Lanczos steps.

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
            H_PxP = prog["hessian"](theta_P, x_NxD, y_NxK, l2)
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


_hidden_activations = jax.jit(model.hidden_activations, static_argnames="activation")  # one program, not one per operation


def symmetries(problem: Problem, params: model.Params, x_NxD) -> dict:
    """How many exactly flat directions the parameters' symmetries give at a critical point of f.

    Only at λ = 0 (with λ > 0 the (λ/2)‖θ‖² term curves every direction by λ):
      zero_input_weights  weights from inputs that are 0 on every example (MNIST's border pixels)
      dead_unit_weights   the incoming weights and bias, and the outgoing weights, of every ReLU unit
                          that is 0 on every example; each weight counted once (a weight between two
                          dead units, or from a zero input to a dead unit, is one direction)
      relu_rescaling      one direction per live ReLU unit: (W_in·c, b·c, W_out/c)
      softmax_shift       cross-entropy only: the log-softmax is unchanged by adding a constant to every
                          output's bias, or to every output's weight from one hidden unit (H_last + 1)
    Discrete symmetries (permutations, a sigmoid unit's sign flip) give no flat direction.
    """
    out = {"zero_input_weights": 0, "dead_unit_weights": 0, "dead_units": 0, "relu_rescaling": 0, "softmax_shift": 0}
    if problem.l2 != 0:
        return out | {"explained": 0}
    sizes = problem.sizes
    x_NxD = np.asarray(x_NxD)
    # flat[l]: (W mask O×I, b mask O) of the parameters whose every derivative vanishes.
    flat = [(np.zeros((o, i), bool), np.zeros(o, bool)) for i, o in zip(sizes[:-1], sizes[1:])]
    flat[0][0][:, np.all(x_NxD == 0, axis=0)] = True
    out["zero_input_weights"] = int(flat[0][0].sum())
    if problem.activation == "relu" and len(sizes) > 2:
        hidden = _hidden_activations(params, jnp.asarray(x_NxD, jnp.asarray(params[0][0]).dtype), "relu")
        for l, a_NxH in enumerate(hidden):
            dead_H = np.asarray(jnp.all(a_NxH == 0, axis=0))
            flat[l][0][dead_H, :], flat[l][1][dead_H] = True, True  # into the dead unit
            flat[l + 1][0][:, dead_H] = True  # out of it
            out["dead_units"] += int(dead_H.sum())
            out["relu_rescaling"] += int((~dead_H).sum())
        out["dead_unit_weights"] = int(sum(W.sum() + b.sum() for W, b in flat)) - out["zero_input_weights"]
    if problem.cost == "cross_entropy":  # one shift per input of the last layer not already flat, and the biases'
        out["softmax_shift"] = 1 + int((~flat[-1][0].all(axis=0)).sum())
    return out | {"explained": sum(v for k, v in out.items() if k != "dead_units")}


# --------------------------------------------------------------------------- the verdict


def epsilon(lambda_max: float, lambda_abs_min: float, grad_norm: float, entry_error: float = 0.0) -> float:
    """ε: eigenvalues within ±ε of 0 are not told apart from 0 (see the module docstring). `entry_error`:
    P·max|H − Hᵀ|, a measured bound of the spectrum's shift by the Hessian's own rounding (Weyl)."""
    return max(EPS_REL * abs(lambda_max), abs(lambda_max) * grad_norm / max(lambda_abs_min, 1e-300), entry_error)


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
    grad_norm: float,
    tol: float,
    spec: dict | None,
    explained: int,
    escape: dict,
    flat_ratio: float | None,
    lambda_max: float,
    l2: float = 0.0,
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
    # With λ > 0 the cost grows without bound with ‖θ‖: nothing escapes, a growing ‖θ‖ is an unfinished search.
    if l2 == 0 and escape["norm_growth"] >= GROWTH and escape["log_norm_slope"] >= SLOPE and escape["cost_change"] < 0:
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
    entry_error = eig.size * float(spec.get("asymmetry") or 0.0) * abs(lambda_max)
    eps = epsilon(lambda_max, lam_abs_min, grad_norm, entry_error)
    # About how far the exact critical point is (inf where the spectrum is singular past the explained zeros).
    out = {"epsilon": eps, "newton_distance": grad_norm / lam_abs_min if lam_abs_min > 0 else math.inf}
    if spec["complete"]:
        negative, zero = int(np.sum(eig < -eps)), int(np.sum(np.abs(eig) <= eps))
        out |= {"negative": negative, "zero": zero, "index": negative}
        if negative:
            return out | {"verdict": SADDLE, "reason": f"{negative} eigenvalue(s) below −ε = {-eps:.3g}"}
        if zero == 0:
            return out | {"verdict": MINIMUM, "reason": f"every eigenvalue > ε = {eps:.3g} (strict minimum)"}
        if zero == explained:
            return out | {
                "verdict": MINIMUM,
                "reason": f"no eigenvalue below −ε; the {zero} within ±ε are the {explained} zero directions the symmetries give",
            }
        if eps >= abs(lambda_max):  # ‖∇f‖/|λ|_min unbounded: no eigenvalue can be told from 0
            why = f"degenerate: ε = {eps:.3g} ≥ λ_max = {lambda_max:.3g} (the smallest |λ| past the {explained} explained zeros is {lam_abs_min:.3g})"
        else:
            why = f"degenerate: {zero} eigenvalue(s) within ±ε = {eps:.3g}, {explained} explained by symmetries"
        return out | {"verdict": UNRESOLVED, "reason": why}
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
        # Evidence, not proof: an eigenvalue below the smallest Ritz value that Lanczos did not reach is not excluded.
        return out | {
            "verdict": UNRESOLVED,
            "reason": f"likely a minimum, not verified: the smallest Ritz value {theta_min:.3g} converged (residual "
            f"{residual:.2g}) and is > ε, but Lanczos does not see every eigenvalue (P > --dense-max)",
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
    v = verdict(grad_norm, tol, spec, sym["explained"], escape, flat_ratio, lambda_max, problem.l2)
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
        "newton_distance": v.get("newton_distance"),
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
