"""The cost landscape around trained networks: everything measured on C(θ) near the parameters a run saved.

    python -m mlpjax.landscape {align,curve,lines,surface,spectrum} RUN_DIR [RUN_B] [--networks I,J] [--out DIR]
    python -m mlpjax.landscape critical RUN [RUN …] [--networks I,J|all] [--examples N] [--out DIR]

Start reading at `verdict` (what kind of point a network is at: the definitions), then `critical`.

  paths        the cost along a straight line between two parameter vectors; the barrier on a path
  curvature    Hessian-vector products, power iteration, Lanczos (float32), for a group at once
  endpoints    sharpness, stuck units and barriers at SGD's end points (`train.analyze`)
  polish       the float32 full-batch L-BFGS polish (`train.polish`) and its first look at a point
  critical     float64 search for critical points: L-BFGS, then trust-region Newton–CG
  verdict      what the search reached, from the whole spectrum: minimum, saddle, gradient-flat,
               escaping or unresolved, with the evidence (the definitions are its docstring)
  geometry     weight matching, Bézier curves, filter-normalized surfaces, whole spectra, SLQ,
               and which verified minima are the same up to a permutation
  commands, critical_cli   the command lines; `__main__` dispatches to them

Every function is pure over parameters (a list of `(W_OxI, b_O)` tuples, as in `model`) and data;
costs are `cost.network_cost` with the run's `model.l2`. The names below are this package's public
functions, importable as `landscape.NAME`.
"""

from mlpjax.landscape.curvature import (
    Sharpness,
    extreme_eigenvalues,
    flat_cost,
    hessian,
    hvp,
    lanczos,
    lanczos_tridiagonal,
    sharpness,
    tridiagonal,
)
from mlpjax.landscape.endpoints import analyze_group, cost_spread, fixed_subset, unit_saturation
from mlpjax.landscape.paths import barrier, interpolate

__all__ = [
    "Sharpness",
    "analyze_group",
    "barrier",
    "cost_spread",
    "extreme_eigenvalues",
    "fixed_subset",
    "flat_cost",
    "hessian",
    "hvp",
    "interpolate",
    "lanczos",
    "lanczos_tridiagonal",
    "sharpness",
    "tridiagonal",
    "unit_saturation",
]
