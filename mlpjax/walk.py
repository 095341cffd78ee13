"""SGD's drunken walk: mini-batch SGD against full-batch gradient descent, fairly compared.

    python -m mlpjax.walk --out DIR [--steps 2000] [--epochs 10] [--batch-sizes 10,32,128] [--lr 1.0]
        [--activation sigmoid] [--hidden 16,16] [--cost quadratic] [--seed 0] [--validation 10000]

The series calls SGD a drunk man stumbling quickly downhill, where gradient descent (GD) is a
careful one taking slow, exact steps. Every run starts from the same parameters
`init_params(key(seed), sizes, "lecun")` and takes plain steps `θ ← θ − η ∇C` (optax.sgd,
constant η) on the first 60000 − VALIDATION training images (the held-out tail is unused):

  1. equal gradient steps: SGD at each batch size and GD, each for --steps steps;
  2. equal examples seen: --epochs epochs' worth of examples each (GD: `epochs` steps; SGD at
     batch B: epochs·(n // B) steps over a fresh shuffle per epoch, the last partial batch dropped);
  3. the walk: the runs of part 1 projected on the two principal directions of the GD path.

C is the cost on the whole training set (the mean over its n images of Σ_k (ŷ_k − y_k)² or of the
cross-entropy), recorded at about 40 log-spaced points per run. Writes DIR/walk.png and
DIR/walk.json (every plotted number) and prints a summary table. MNIST comes from $MNIST_IDX_DIR,
prepared under $TFDS_DATA_DIR. Mistakes end in one line on stderr and exit code 2.

The pure pieces (`batch_indices`, `log_points`, `run_steps`, `principal_directions`,
`path_stats`) take arrays and return numbers, so they work without any files.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from mlpjax import cli, fit, model, walk_figure
from mlpjax import cost as cost_lib

N_POINTS = 40  # log-spaced points per cost curve, besides step 0
MAX_PLOT_POINTS = 500  # projected points per run kept in walk.json and drawn
ZOOM_STEPS = 100  # the last steps of every walk drawn again, every snapshot, in an inset
MAX_SNAPSHOTS = 2000  # GD snapshots kept for the PCA (each one θ of P float32)
MAX_SNAPSHOT_FLOATS = 2**26  # and at most this many floats in all (256 MiB)


class WalkError(Exception):
    """A bad argument or input; the message is one line."""


# --------------------------------------------------------------------------- bookkeeping


def log_points(total: int, n: int = N_POINTS) -> np.ndarray:
    """Step 0 and about `n` integers log-spaced from 1 to `total` (both included), sorted, int64."""
    if total < 1:
        return np.zeros(1, np.int64)
    points = np.unique(np.round(np.geomspace(1, total, n)).astype(np.int64))
    return np.concatenate([[0], points])


def batch_indices(seed: int, n: int, batch_size: int, steps: int) -> np.ndarray:
    """The examples of every mini-batch, `idx_SxB` (int32, S = `steps`, B = `batch_size`).

    Epoch e (1-based) holds n // B steps: its order `fit.permutations([seed], e, n)` cut into
    consecutive batches of B, the last n mod B examples of that order dropped. Step s (0-based)
    is in epoch s // (n // B) + 1, so every example is used at most once per epoch (exactly once
    when B divides n), as in `mlpjax.train`.
    """
    per_epoch = n // batch_size
    if per_epoch < 1:
        raise ValueError(f"batch size {batch_size} is larger than the training set ({n})")
    epochs = -(-steps // per_epoch)
    blocks = [fit.permutations([seed], e, n)[0][: per_epoch * batch_size].reshape(per_epoch, batch_size) for e in range(1, epochs + 1)]
    return np.concatenate(blocks)[:steps] if blocks else np.zeros((0, batch_size), np.int32)


def snapshot_stride(steps: int, param_count: int) -> int:
    """Steps between kept GD snapshots: 1 unless that would keep more than MAX_SNAPSHOTS or MAX_SNAPSHOT_FLOATS."""
    most = max(1, min(MAX_SNAPSHOTS, MAX_SNAPSHOT_FLOATS // max(param_count, 1) - 1))
    return max(1, -(-steps // most))


def snapshot_steps(steps: int, stride: int) -> np.ndarray:
    """The steps whose θ `run_steps` keeps: min(m·stride, steps) for m = 0 … ceil(steps/stride), int64."""
    return np.minimum(np.arange(-(-steps // stride) + 1) * stride, steps)


# --------------------------------------------------------------------------- the compiled loop


class Trace(NamedTuple):
    """What one run of `run_steps` recorded; S steps, R directions, M snapshots, P parameters."""

    params: model.Params  # θ_S, the parameters after the last step
    cost0: jax.Array  # C(θ_0) on the whole training set, scalar
    cost_S: jax.Array  # C(θ_{s+1}) after step s where `record_S[s]`, NaN elsewhere, (S,)
    proj_SxR: jax.Array  # (θ_{s+1} − θ_0) · u_r for each direction u_r, (S, R)
    step_norm_S: jax.Array  # ‖θ_{s+1} − θ_s‖ (L2 over all P parameters), (S,)
    snap_MxP: jax.Array | None  # θ at `snapshot_steps(S, stride)`, or None when stride is 0


@functools.partial(jax.jit, static_argnames=("activation", "cost_name", "stride"))
def run_steps(
    params0: model.Params,
    x_NxD: jax.Array,
    y_NxK: jax.Array,
    idx_SxB: jax.Array | None,
    record_S: jax.Array,
    lr: jax.Array,
    dirs_PxR: jax.Array,
    activation: str = "sigmoid",
    cost_name: str = "quadratic",
    stride: int = 0,
) -> Trace:
    """S steps of `θ ← θ − lr ∇C_batch(θ)` (optax.sgd) from `params0`, as one `lax.scan`.

    The batch of step s is the rows `idx_SxB[s]` of `(x_NxD, y_NxK)`, or all N rows (full-batch
    GD) when `idx_SxB` is None; S is `record_S.shape[0]`. On the way it records the whole-set cost
    where `record_S` (bool, (S,)) is true, the projection of θ − θ_0 on the R columns of
    `dirs_PxR` (ravel_pytree order) and the length of every step; with `stride` > 0 it also keeps
    θ every `stride` steps (`snapshot_steps`). See `Trace`.
    """
    opt = optax.sgd(lr)
    theta0_P, _ = ravel_pytree(params0)
    grad_fn = jax.grad(cost_lib.network_cost)
    whole_cost = lambda p: cost_lib.network_cost(p, x_NxD, y_NxK, activation, cost_name)
    cost0 = whole_cost(params0)
    S = record_S.shape[0]
    snaps = None
    if stride:
        snaps = jnp.zeros((-(-S // stride) + 1, theta0_P.shape[0]), theta0_P.dtype).at[0].set(theta0_P)

    def step(carry, xs):
        params, opt_state, snaps = carry
        s, idx_B, record = xs
        x_BxD, y_BxK = (x_NxD, y_NxK) if idx_B is None else (x_NxD[idx_B], y_NxK[idx_B])
        updates, opt_state = opt.update(grad_fn(params, x_BxD, y_BxK, activation, cost_name), opt_state, params)
        params = optax.apply_updates(params, updates)
        theta_P, _ = ravel_pytree(params)
        c = jax.lax.cond(record, whole_cost, lambda p: jnp.full((), jnp.nan, cost0.dtype), params)
        if snaps is not None:
            # Slot ceil((s+1)/stride): its last writer is step min(m·stride, S) − 1, i.e. θ at that step.
            snaps = jax.lax.dynamic_update_slice(snaps, theta_P[None], ((s + stride) // stride, 0))
        return (params, opt_state, snaps), (c, (theta_P - theta0_P) @ dirs_PxR, optax.tree.norm(updates))

    xs = (jnp.arange(S), idx_SxB, record_S)
    (params, _, snaps), (cost_S, proj_SxR, norm_S) = jax.lax.scan(step, (params0, opt.init(params0), snaps), xs, length=S)
    return Trace(params, cost0, cost_S, proj_SxR, norm_S, snaps)


# --------------------------------------------------------------------------- the walk


def principal_directions(snap_MxP: np.ndarray, theta0_P: np.ndarray, r: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The `r` principal directions `dirs_PxR` of the displacements θ_m − θ_0 and the share of their variance each explains.

    PCA: the SVD `A = U Σ Vᵀ` of the displacements centred on their mean, `A_MxP` (float64); the
    directions are the first `r` right singular vectors. When M < P they come from the M×M Gram
    matrix `A Aᵀ = U Σ² Uᵀ` (eigh) as `v_r = Aᵀ u_r / σ_r`: the same vectors for one matrix product
    and an M×M eigh (here LAPACK's SVD of only 500 × 13002 took 5 s). A direction whose σ_r is
    below 1e-7·σ_1 (where the Gram route loses its digits; it explains < 1e-14) is left as zeros.
    Columns are unit vectors, signed so that the last snapshot's displacement has a coordinate ≥ 0
    on each. The shares `explained_R` are σ_r² / Σ σ², in [0, 1], summing to ≤ 1.
    """
    d_MxP = np.asarray(snap_MxP, np.float64) - np.asarray(theta0_P, np.float64)
    centred_MxP = d_MxP - d_MxP.mean(axis=0)
    total = float(np.sum(centred_MxP**2))  # Σ σ², exactly
    M, P = centred_MxP.shape
    if M < P:
        eig_M, u_MxM = np.linalg.eigh(centred_MxP @ centred_MxP.T)  # ascending
        top = np.argsort(eig_M)[::-1][:r]
        s_R = np.sqrt(np.maximum(eig_M[top], 0))
        keep = s_R > 1e-7 * s_R[0]
        dirs_PxR = centred_MxP.T @ u_MxM[:, top[keep]] / s_R[keep]
        dirs_PxR /= np.linalg.norm(dirs_PxR, axis=0)  # exact unit length despite rounding
        s_R = s_R[keep]
    else:
        _, s_M, vt_MxP = np.linalg.svd(centred_MxP, full_matrices=False)
        s_R = s_M[:r][s_M[:r] > 1e-7 * s_M[0]]
        dirs_PxR = vt_MxP[: len(s_R)].T.copy()
    explained_R = s_R**2 / total if total > 0 else np.zeros(0)
    dirs_PxR *= np.where(d_MxP[-1] @ dirs_PxR < 0, -1.0, 1.0)
    if dirs_PxR.shape[1] < r:  # fewer snapshots than directions: pad with zero directions
        dirs_PxR = np.pad(dirs_PxR, ((0, 0), (0, r - dirs_PxR.shape[1])))
        explained_R = np.pad(explained_R, (0, r - len(explained_R)))
    return dirs_PxR, explained_R


def path_stats(points_TxR: np.ndarray) -> dict:
    """Length of the polyline through `points_TxR` (start to end), the straight distance, and their ratio (≥ 1; NaN if it never moved)."""
    p = np.asarray(points_TxR, np.float64)
    length = float(np.sum(np.linalg.norm(np.diff(p, axis=0), axis=1)))
    straight = float(np.linalg.norm(p[-1] - p[0]))
    return {"path": length, "straight": straight, "ratio": length / straight if straight > 0 else math.nan}


def subsample(count: int, most: int = MAX_PLOT_POINTS) -> np.ndarray:
    """At most `most` indices into range(count), evenly spread, first and last included, int64."""
    return np.unique(np.round(np.linspace(0, count - 1, min(count, most))).astype(np.int64))


def _record_mask(steps: int, points: np.ndarray) -> np.ndarray:
    record_S = np.zeros(steps, bool)
    record_S[points[points > 0] - 1] = True  # step s leaves θ_{s+1}
    return record_S


def _curve(trace: Trace, points: np.ndarray) -> list[float]:
    """C at `points` (step counts, 0 first) from a trace that recorded them."""
    c_S = np.asarray(trace.cost_S, np.float64)
    return [float(trace.cost0)] + [float(c_S[p - 1]) for p in points[1:]]


def walk(
    params0, x_NxD, y_NxK, batch_sizes: list[int], steps: int, epochs: int, lr: float, activation: str, cost_name: str, seed: int
) -> dict:
    """Parts 1–3 on the training set `(x_NxD, y_NxK)` from `params0`; every number of walk.json but the settings."""
    n = x_NxD.shape[0]
    theta0_P = np.asarray(ravel_pytree(params0)[0])
    P = theta0_P.shape[0]
    lr_ = jnp.asarray(lr, x_NxD.dtype)
    run = functools.partial(run_steps, x_NxD=x_NxD, y_NxK=y_NxK, lr=lr_, activation=activation, cost_name=cost_name)
    no_dirs = jnp.zeros((P, 0), theta0_P.dtype)
    labels = {B: f"SGD, batch {B}" for B in batch_sizes} | {None: f"GD, batch {n:,}"}
    order = [*batch_sizes, None]  # GD last in tables and legends
    seconds = {}

    def timed(name, fn):
        start = time.perf_counter()
        out = jax.block_until_ready(fn())
        seconds[name] = round(time.perf_counter() - start, 3)
        print(f"  {name:<34} {seconds[name]:7.2f} s", flush=True)
        return out

    # Part 1 first for GD: its snapshots give the plane every part-1 run is projected on.
    points = log_points(steps)
    record = jnp.asarray(_record_mask(steps, points))
    stride = snapshot_stride(steps, P)
    gd = timed(f"GD, {steps} steps", lambda: run(params0, idx_SxB=None, record_S=record, dirs_PxR=no_dirs, stride=stride))
    snap_steps = snapshot_steps(steps, stride)
    dirs_PxR, explained_R = principal_directions(np.asarray(gd.snap_MxP), theta0_P)
    proj_gd = (np.asarray(gd.snap_MxP, np.float64) - theta0_P) @ dirs_PxR
    dirs = jnp.asarray(dirs_PxR, theta0_P.dtype)

    traces = {None: gd}
    for B in batch_sizes:
        idx = jnp.asarray(batch_indices(seed, n, B, steps))
        traces[B] = timed(f"SGD batch {B}, {steps} steps", lambda idx=idx: run(params0, idx_SxB=idx, record_S=record, dirs_PxR=dirs))

    equal_steps, walk_runs = [], []
    for B in order:
        t = traces[B]
        equal_steps.append({"label": labels[B], "batch_size": B or n, "steps": points.tolist(), "cost": _curve(t, points)})
        # Every run's path at the GD snapshots' steps, so all are sampled alike.
        proj = proj_gd if B is None else np.concatenate([np.zeros((1, 2)), np.asarray(t.proj_SxR, np.float64)])[snap_steps]
        keep = subsample(len(snap_steps))
        zoom = snap_steps >= steps - min(ZOOM_STEPS, steps // 5)  # the inset: the end of the walk, unthinned
        d_P = np.asarray(ravel_pytree(t.params)[0], np.float64) - theta0_P
        full = float(np.sum(np.asarray(t.step_norm_S, np.float64)))
        straight = float(np.linalg.norm(d_P))
        in_plane = float(np.linalg.norm(proj[-1]) / straight) if straight > 0 else math.nan
        stats = path_stats(proj)
        walk_runs.append(
            {
                "label": labels[B],
                "batch_size": B or n,
                "steps": snap_steps[keep].tolist(),
                "pc1": proj[keep, 0].tolist(),
                "pc2": proj[keep, 1].tolist(),
                "path_length_plane": stats["path"],
                "straight_plane": stats["straight"],
                "drunkenness_plane": stats["ratio"],
                "path_length_full": full,
                "straight_full": straight,
                "drunkenness_full": full / straight if straight > 0 else math.nan,
                "in_plane_share": in_plane,  # |projection of θ_S − θ_0| / |θ_S − θ_0|
                "zoom": {"steps": snap_steps[zoom].tolist(), "pc1": proj[zoom, 0].tolist(), "pc2": proj[zoom, 1].tolist()},
            }
        )

    # Part 2: epochs' worth of examples each.
    equal_examples = []
    for B in order:
        total = epochs if B is None else epochs * (n // B)
        pts = log_points(total)
        rec = jnp.asarray(_record_mask(total, pts))
        idx = None if B is None else jnp.asarray(batch_indices(seed, n, B, total))
        t = timed(
            f"{'GD' if B is None else f'SGD batch {B}'}, {walk_figure.plural(epochs, 'epoch')} ({total} steps)",
            lambda idx=idx, rec=rec: run(params0, idx_SxB=idx, record_S=rec, dirs_PxR=no_dirs),
        )
        equal_examples.append(
            {
                "label": labels[B],
                "batch_size": B or n,
                "steps": pts.tolist(),
                "examples": (pts * (B or n)).tolist(),
                "cost": _curve(t, pts),
            }
        )

    return {
        "n_train": n,
        "param_count": P,
        "equal_steps": equal_steps,
        "equal_examples": equal_examples,
        "walk": {
            "explained_variance": explained_R.tolist(),  # share of the GD path's displacement variance along PC1, PC2
            "snapshot_stride": stride,
            "snapshots": len(snap_steps),
            "runs": walk_runs,
        },
        "run_seconds": seconds,
    }


# --------------------------------------------------------------------------- command line


def _int_list(flag: str, text: str, least: int, allow_empty: bool = False, distinct: bool = False) -> list[int]:
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise WalkError(f"{flag} {text!r}: must be comma-separated integers, e.g. 10,32,128") from None
    if not values and not allow_empty:
        raise WalkError(f"{flag} {text!r}: give at least one value")
    if any(v < least for v in values):
        raise WalkError(f"{flag} {text!r}: every value must be ≥ {least}")
    if distinct and len(set(values)) != len(values):
        raise WalkError(f"{flag} {text!r}: a value appears twice")
    return values


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The checked command line; WalkError (one line) for anything out of range."""
    p = cli.one_line_parser(
        WalkError,
        prog="python -m mlpjax.walk",
        description=__doc__.split("\n\nThe pure pieces")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="where to write walk.png and walk.json")
    p.add_argument("--steps", type=int, default=2000, help="gradient steps of every run in part 1 (default 2000)")
    p.add_argument("--epochs", type=int, default=10, help="epochs' worth of examples of every run in part 2 (default 10)")
    p.add_argument("--batch-sizes", default="10,32,128", help="SGD mini-batch sizes, comma-separated (default 10,32,128)")
    p.add_argument("--lr", type=float, default=1.0, help="constant learning rate η > 0 (default 1.0)")
    p.add_argument("--activation", default="sigmoid", help=f"hidden-layer nonlinearity: {', '.join(model.ACTIVATIONS)} (default sigmoid)")
    p.add_argument("--hidden", default="16,16", help="hidden layer sizes, comma-separated; '' for none (default 16,16)")
    p.add_argument("--cost", default="quadratic", help=f"{', '.join(cost_lib.COSTS)} (default quadratic)")
    p.add_argument("--seed", type=int, default=0, help="initial parameters and data order (default 0)")
    p.add_argument("--validation", type=int, default=10000, help="training images held out at the end, unused here (default 10000)")
    args = p.parse_args(argv)
    if args.steps < 1:
        raise WalkError(f"--steps {args.steps}: must be ≥ 1")
    if args.epochs < 1:
        raise WalkError(f"--epochs {args.epochs}: must be ≥ 1")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise WalkError(f"--lr {args.lr:g}: must be a finite number > 0")
    if args.activation not in model.ACTIVATIONS:
        raise WalkError(f"--activation {args.activation!r}: unknown; allowed: {', '.join(model.ACTIVATIONS)}")
    if args.cost not in cost_lib.COSTS:
        raise WalkError(f"--cost {args.cost!r}: unknown; allowed: {', '.join(cost_lib.COSTS)}")
    if args.seed < 0:
        raise WalkError(f"--seed {args.seed}: must be ≥ 0")
    if args.validation < 0:
        raise WalkError(f"--validation {args.validation}: must be ≥ 0")
    args.batch_sizes = _int_list("--batch-sizes", args.batch_sizes, 1, distinct=True)
    args.hidden = _int_list("--hidden", args.hidden, 1, allow_empty=True)
    check_sizes(args, 60000)  # MNIST's training set; checked again against the data once loaded
    return args


def check_sizes(args: argparse.Namespace, n_images: int) -> int:
    """The training set size n = n_images − validation; WalkError if it is empty or smaller than a batch."""
    n = n_images - args.validation
    if n < 1:
        raise WalkError(f"--validation {args.validation}: leaves no training images of {n_images:,}")
    too_big = [B for B in args.batch_sizes if B > n]
    if too_big:
        raise WalkError(f"--batch-sizes: {too_big[0]} is larger than the training set ({n_images:,} − {args.validation:,} = {n:,} images)")
    return n


def load_training_set(args: argparse.Namespace):
    """`(x_NxD, y_NxK, source)`: the first 60000 − validation training images, one-hot labels, on the device."""
    from mlpjax import data

    try:
        mnist = data.load_mnist(
            os.environ.get("MNIST_IDX_DIR"), os.path.expanduser(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))
        )
    except data.DataError as e:
        raise WalkError(str(e)) from None
    n = check_sizes(args, mnist.x_train_NxD.shape[0])
    x_NxD = jnp.asarray(mnist.x_train_NxD[:n])
    y_NxK = jax.nn.one_hot(jnp.asarray(mnist.labels_train_N[:n]), 10, dtype=x_NxD.dtype)
    return x_NxD, y_NxK, mnist.source


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (2 for a one-line error)."""
    return cli.one_line_errors(lambda: run(sys.argv[1:] if argv is None else argv), (WalkError,))


def run(argv: list[str]) -> None:
    """Parse `argv`, train every walk, write walk.png and walk.json into --out, print the table."""
    start = time.perf_counter()
    args = parse_args(sys.argv[1:] if argv is None else argv)
    x_NxD, y_NxK, source = load_training_set(args)
    sizes = [x_NxD.shape[1], *args.hidden, y_NxK.shape[1]]
    params0 = model.init_params(jax.random.key(args.seed), sizes, "lecun")
    settings = {
        "steps": args.steps, "epochs": args.epochs, "batch_sizes": args.batch_sizes, "lr": args.lr,
        "activation": args.activation, "hidden": args.hidden, "sizes": sizes, "cost": args.cost, "init": "lecun",
        "seed": args.seed, "validation": args.validation, "data": source,
    }  # fmt: skip
    print(
        f"walk: {'-'.join(map(str, sizes))} {args.activation}, {model.param_count(params0):,} parameters, {args.cost} cost, "
        f"η = {args.lr:g}, {x_NxD.shape[0]:,} training images, batch sizes {args.batch_sizes} and full, on {jax.devices()[0].platform}",
        flush=True,
    )
    results = walk(params0, x_NxD, y_NxK, args.batch_sizes, args.steps, args.epochs, args.lr, args.activation, args.cost, args.seed)
    from mlpjax import provenance

    numbers = {"settings": settings} | results | {"wall_seconds": round(time.perf_counter() - start, 2)}
    numbers["environment"] = provenance.record(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    fig = walk_figure.figure(results, settings)
    os.makedirs(args.out, exist_ok=True)
    fig.savefig(os.path.join(args.out, "walk.png"), dpi=150)
    numbers["wall_seconds"] = round(time.perf_counter() - start, 2)  # everything but writing the JSON
    with open(os.path.join(args.out, "walk.json"), "w") as f:
        json.dump(numbers, f, indent=1, allow_nan=True)
    print(walk_figure.table(results, settings))
    print(f"wrote {os.path.join(args.out, 'walk')}.png and .json in {numbers['wall_seconds']:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
