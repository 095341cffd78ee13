"""The geometry around saved networks (SGD's end points, or any saved point), one command each (the functions: `mlpjax/landscape/geometry.py`).

    python -m mlpjax.landscape WHAT RUN_DIR [RUN_B] [--networks I,J|all] [--out DIR] [--examples N]

  align     B's hidden units permuted to match A's (weight matching): the straight-line barrier
            from A to B before and after (--networks all: every pair of seeds of one learning rate)
  curve     a quadratic Bézier curve from A to B trained to low cost: its barrier against the line's,
            B aligned and not
  lines     the cost along init → A, A → B and A → aligned B, α from −0.5 to 1.5 (81 points)
  surface   the cost on the plane through a trained network spanned by two filter-normalized random
            directions; two networks side by side on one colour scale
  spectrum  every eigenvalue of the Hessian (float64 eigh) beside the density by stochastic Lanczos
            quadrature (SLQ only for networks of more than --dense-max parameters)

A and B are networks of RUN_DIR (`--networks I,J`; default the best by validation accuracy and the
best other seed of its learning rate), or network I of RUN_DIR and J of RUN_B (default each run's
best). surface and spectrum take one network, or two to compare (RUN_B, or --networks I,J).
--polished reads the parameters after the run's L-BFGS polish (params_polished/), not after SGD.
Costs are measured on a fixed subset of --examples training images (the run's training split,
its validation images left out; the curve trains on all of it). Each command writes WHAT.png and
WHAT.json into --out (default RUN_DIR/landscape) and prints its numbers; the JSON's top-level keys
are the first network's (or pair's) numbers and `compared_with` the second's. Mistakes end in one
line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np

from mlpjax import cli, model, outputs, rundir
from mlpjax import cost as cost_lib
from mlpjax.landscape import endpoints, geometry, paths
from mlpjax.rundir import Run, RunError

WHATS = ("align", "curve", "lines", "surface", "spectrum")
DEFAULT_EXAMPLES = {"align": 10_000, "curve": 10_000, "lines": 10_000, "surface": 10_000, "spectrum": 2_000}
_forward = jax.jit(model.forward, static_argnames=("activation", "output"))


# --------------------------------------------------------------------------- pairs of networks


def align_pair(a: Run, b: Run, x_NxD, y_NxK, n_alphas: int = 25) -> dict:
    """Weight matching of b to a, and the straight-line barrier (rise above the line between the end
    costs, `paths.barrier`) from a to b and from a to aligned b at `n_alphas` points of [0, 1]."""
    perms, rounds = geometry.weight_matching(a.params, b.params)
    aligned = geometry.permute(b.params, perms)
    alphas_A = np.linspace(0.0, 1.0, n_alphas)
    along = {
        name: np.asarray(paths.interpolate(a.params, p, x_NxD, y_NxK, a.activation, a.cost, alphas_A, a.l2))
        for name, p in (("unaligned", b.params), ("aligned", aligned))
    }
    output = cost_lib.OUTPUT_FOR_COST[a.cost]
    change = jnp.max(jnp.abs(_forward(b.params, x_NxD, a.activation, output) - _forward(aligned, x_NxD, a.activation, output)))
    return {
        "networks": [_name(a), _name(b)],
        "barrier_unaligned": paths.barrier(along["unaligned"], alphas_A),
        "barrier_aligned": paths.barrier(along["aligned"], alphas_A),
        "permutations": [p.tolist() for p in perms],
        "units_moved": [int(np.sum(p != np.arange(p.size))) for p in perms],
        "rounds": rounds,
        "output_change": float(change),  # max |output of B − output of aligned B|: float32 rounding only
        "alphas": alphas_A.tolist(),
        "costs_unaligned": along["unaligned"].tolist(),
        "costs_aligned": along["aligned"].tolist(),
    }


def curve_pair(a: Run, b_params, x_train_NxD, y_train_NxK, x_NxD, y_NxK, key, steps: int, n_ts: int = 51) -> dict:
    """A Bézier curve from a to b_params trained on the training split (`steps` Adam steps, mini-batches
    of 128), and the barriers on it and on the straight line, measured on `(x_NxD, y_NxK)`."""
    loss = geometry.minibatch_cost(a.activation, a.cost, 128, a.l2)
    theta, losses_S = geometry.fit_bezier(loss, a.params, b_params, key, (x_train_NxD, y_train_NxK), steps=steps)
    ts_T = np.linspace(0.0, 1.0, n_ts)
    curve_T = np.asarray(
        geometry.curve_costs(a.params, theta, b_params, x_NxD, y_NxK, jnp.asarray(ts_T, jnp.float32), a.activation, a.cost, a.l2)
    )
    line_T = np.asarray(paths.interpolate(a.params, b_params, x_NxD, y_NxK, a.activation, a.cost, ts_T, a.l2))
    return {
        "barrier_line": paths.barrier(line_T, ts_T),
        "barrier_curve": paths.barrier(curve_T, ts_T),
        "ts": ts_T.tolist(),
        "costs_line": line_T.tolist(),
        "costs_curve": curve_T.tolist(),
        "training_loss_first_last": [float(losses_S[: steps // 20 + 1].mean()), float(losses_S[-(steps // 20 + 1) :].mean())],
    }


def _path_numbers(alphas_A, costs_A) -> dict:
    """On α ∈ [0, 1] of a path: the rise above the line between its ends, and the largest step up."""
    inside = (alphas_A >= 0) & (alphas_A <= 1)
    c = costs_A[inside]
    return {"barrier": paths.barrier(c, alphas_A[inside]), "largest_increase": float(np.max(np.diff(c))), "costs": costs_A.tolist()}


# --------------------------------------------------------------------------- commands


def run_align(args, subjects, data) -> tuple[dict, object]:
    x_NxD, y_NxK = data["subset"]
    results = [align_pair(a, b, x_NxD, y_NxK) for a, b in subjects]
    fig = outputs.figure(11, 4.2)
    ax_path, ax_pairs = fig.subplots(1, 2)
    first = results[0]
    ax_path.plot(first["alphas"], first["costs_unaligned"], "o-", ms=3, label=f"B as trained: barrier {first['barrier_unaligned']:.4g}")
    ax_path.plot(first["alphas"], first["costs_aligned"], "s-", ms=3, label=f"B aligned to A: barrier {first['barrier_aligned']:.4g}")
    ax_path.set(xlabel="α  (A at 0, B at 1)", ylabel="training cost (subset)", title=f"{first['networks'][0]} → {first['networks'][1]}")
    ax_path.legend(fontsize=8)
    un, al = np.array([r["barrier_unaligned"] for r in results]), np.array([r["barrier_aligned"] for r in results])
    ax_pairs.scatter(un, al, s=18)
    top = max(float(un.max()), float(al.max()), 1e-12) * 1.05
    ax_pairs.plot([0, top], [0, top], "k:", lw=1, label="no change")
    ax_pairs.set(xlabel="barrier before alignment", ylabel="barrier after alignment", title=f"{len(results)} pair(s) of networks")
    ax_pairs.legend(fontsize=8)
    fig.suptitle(f"Permutation alignment (weight matching), {_describe(subjects[0][0])}", fontsize=10)
    numbers = dict(first)
    if len(results) > 1:
        numbers = {
            "pairs": results,
            "barrier_unaligned": float(np.median(un)),
            "barrier_aligned": float(np.median(al)),
            "permutations": [r["permutations"] for r in results],
            "median_over_pairs": True,
        }
    rows = [[" → ".join(r["networks"]), r["barrier_unaligned"], r["barrier_aligned"], r["rounds"], r["output_change"]] for r in results]
    print(outputs.table(rows, ["pair", "barrier unaligned", "aligned", "rounds", "output change"]))
    return numbers, fig


def run_curve(args, subjects, data) -> tuple[dict, object]:
    [(a, b)] = subjects
    x_NxD, y_NxK = data["subset"]
    x_train, y_train = data["train"]
    aligned = geometry.aligned(a.params, b.params)
    key = jax.random.key(args.seed)
    result = {"networks": [_name(a), _name(b)], "steps": args.steps}
    both = {}
    for name, b_params in (("", b.params), ("_aligned", aligned)):
        both[name] = curve_pair(a, b_params, x_train, y_train, x_NxD, y_NxK, key, args.steps)
        result |= {f"{k}{name}": v for k, v in both[name].items() if k != "ts"}
    result["ts"] = both[""]["ts"]
    fig = outputs.figure(7, 4.5)
    ax = fig.subplots()
    for name, label in (("", "B as trained"), ("_aligned", "B aligned")):
        r = both[name]
        ax.plot(r["ts"], r["costs_line"], "--", label=f"line, {label}: barrier {r['barrier_line']:.4g}")
        ax.plot(r["ts"], r["costs_curve"], "-", label=f"Bézier curve, {label}: barrier {r['barrier_curve']:.4g}")
    ax.set(xlabel="t  (A at 0, B at 1)", ylabel="training cost (subset)", yscale="log", title=f"{_name(a)} → {_name(b)}, {_describe(a)}")
    ax.legend(fontsize=8)
    rows = [[label, both[n]["barrier_line"], both[n]["barrier_curve"]] for n, label in (("", "as trained"), ("_aligned", "aligned"))]
    print(outputs.table(rows, ["B", "barrier line", "barrier curve"]))
    return result, fig


def run_lines(args, subjects, data) -> tuple[dict, object]:
    [(a, b)] = subjects
    x_NxD, y_NxK = data["subset"]
    alphas_A = np.linspace(-0.5, 1.5, 81)
    aligned = geometry.aligned(a.params, b.params)
    ends = {"init_to_a": (rundir.init_params_of(a), a.params), "a_to_b": (a.params, b.params), "a_to_b_aligned": (a.params, aligned)}
    result = {"networks": [_name(a), _name(b)], "alphas": alphas_A.tolist()}
    fig = outputs.figure(7, 4.5)
    ax = fig.subplots()
    labels = {"init_to_a": "initialization → A", "a_to_b": "A → B", "a_to_b_aligned": "A → B aligned"}
    for name, (p0, p1) in ends.items():
        costs_A = np.asarray(paths.interpolate(p0, p1, x_NxD, y_NxK, a.activation, a.cost, alphas_A, a.l2))
        result[name] = _path_numbers(alphas_A, costs_A)
        ax.plot(alphas_A, costs_A, label=f"{labels[name]}: barrier {result[name]['barrier']:.3g}")
    for edge in (0, 1):
        ax.axvline(edge, color="0.7", lw=0.8)
    ax.set(
        xlabel="α  (start at 0, end at 1)", ylabel="training cost (subset)", yscale="log", title=f"{_name(a)}, {_name(b)}: {_describe(a)}"
    )
    ax.legend(fontsize=8)
    rows = [[labels[n], result[n]["barrier"], result[n]["largest_increase"]] for n in ends]
    print(outputs.table(rows, ["path", "barrier on [0,1]", "largest step up on [0,1]"]))
    return result, fig


def run_surface(args, subjects, data) -> tuple[dict, object]:
    x_NxD, y_NxK = data["subset"]
    grid_A = np.linspace(-1.0, 1.0, args.grid)
    results, grids = [], []
    for run in subjects:
        key_1, key_2 = jax.random.split(jax.random.key(args.seed))
        d1, d2 = geometry.random_direction(key_1, run.params), geometry.random_direction(key_2, run.params)
        grid = np.asarray(geometry.surface(run.params, d1, d2, x_NxD, y_NxK, grid_A, grid_A, run.activation, run.cost, run.l2))
        grids.append(grid)
        center = grid[args.grid // 2, args.grid // 2]
        results.append(
            {
                "network": _name(run),
                "label": run.label(),
                "cost_center": float(center),
                "cost_max": float(np.nanmax(grid)),
                "costs": grid.tolist(),
            }
        )
    from matplotlib.colors import LogNorm

    finite = np.concatenate([g[np.isfinite(g)] for g in grids])
    norm = LogNorm(vmin=float(finite.min()), vmax=float(finite.max()))  # one scale for every panel
    fig = outputs.figure(5 * len(subjects) + 1, 4.5)
    axes = np.atleast_1d(fig.subplots(1, len(subjects)))
    for ax, run, grid in zip(axes, subjects, grids):
        im = ax.contourf(grid_A, grid_A, grid.T, levels=np.geomspace(norm.vmin, norm.vmax, 30), norm=norm, cmap="viridis")
        ax.plot([0], [0], "r*", ms=12, label="the trained network")
        ax.set(xlabel="α along direction 1", ylabel="β along direction 2", aspect="equal")
        ax.set_title(textwrap.fill(run.label(), 45), fontsize=9)
        ax.legend(fontsize=8, loc="upper right")
    fig.colorbar(im, ax=list(axes), label="training cost (subset), log scale", format="%.3g")
    fig.suptitle("Cost around the trained network: two filter-normalized random directions (Li et al. 2018)", fontsize=10)
    numbers = {"alphas": grid_A.tolist(), "seed": args.seed, **results[0]}
    if len(results) > 1:
        numbers["compared_with"] = results[1]
    print(
        outputs.table(
            [[r["label"], r["cost_center"], r["cost_max"]] for r in results], ["network", "cost at the network", "highest on the grid"]
        )
    )
    return numbers, fig


def run_spectrum(args, subjects, data) -> tuple[dict, object]:
    x_NxD, y_NxK = data["subset"]
    results = []
    fig = outputs.figure(12, 4.5)
    ax_abs, ax_density = fig.subplots(1, 2)
    for i, run in enumerate(subjects):
        P = model.param_count(run.params)
        t0 = time.time()
        nodes, weights = geometry.slq(
            run.params, x_NxD, y_NxK, run.activation, run.cost, jax.random.key(args.seed), args.slq_steps, args.slq_vectors, l2=run.l2
        )
        r = {"network": _name(run), "label": run.label(), "parameters": P, "slq_seconds": round(time.time() - t0, 1)}
        r["slq"] = {
            "steps": args.slq_steps,
            "vectors": args.slq_vectors,
            "lambda_max": float(max(n.max() for n in nodes)),
            "lambda_min": float(min(n.min() for n in nodes)),
        }
        if P <= args.dense_max:
            t0 = time.time()
            eig = geometry.hessian_eigenvalues(run.params, x_NxD, y_NxK, run.activation, run.cost, l2=run.l2)
            lam_max = float(eig[-1])
            r |= {
                "method": "float64 eigh of the full Hessian",
                "eigenvalues": int(eig.size),
                "negative": int(np.sum(eig < 0)),
                "negative_beyond_tol": int(np.sum(eig < -1e-3 * lam_max)),
                "near_zero": int(np.sum(np.abs(eig) <= 1e-3 * lam_max)),
                "outliers": geometry.outliers(eig),
                "top": eig[::-1][:20].tolist(),
                "bottom": eig[:10].tolist(),
                "dense_seconds": round(time.time() - t0, 1),
            }
            np.save(os.path.join(args.out_dir, f"spectrum_eigenvalues_{i}.npy"), eig)
            r["eigenvalues_file"] = f"spectrum_eigenvalues_{i}.npy"
            values, values_w = eig, np.full(eig.size, 1.0 / eig.size)
        else:
            r |= {
                "method": "stochastic Lanczos quadrature",
                "eigenvalues": 0,
                "top": [r["slq"]["lambda_max"]],
                "bottom": [r["slq"]["lambda_min"]],
            }
            values, values_w = np.concatenate(nodes), np.concatenate(weights) / len(nodes)
        results.append(r)
        _spectrum_panels(ax_abs, ax_density, run, values, values_w, nodes, weights, i, "eigenvalues" if r["eigenvalues"] else "SLQ nodes")
    fig.suptitle(f"Hessian spectrum at the trained network, {x_NxD.shape[0]:,} training images", fontsize=10)
    numbers = {"examples": int(x_NxD.shape[0]), **results[0]}
    if len(results) > 1:
        numbers["compared_with"] = results[1]
    rows = [
        [
            r["label"],
            r["eigenvalues"],
            r.get("negative", math.nan),
            r.get("negative_beyond_tol", math.nan),
            r.get("outliers", math.nan),
            r["top"][0],
            r["bottom"][0],
        ]
        for r in results
    ]
    print(outputs.table(rows, ["network", "eigenvalues", "negative", "< −1e-3·λmax", "outliers", "largest", "smallest"]))
    return numbers, fig


def _spectrum_panels(ax_abs, ax_density, run, values, values_w, nodes, weights, i, values_are: str) -> None:
    """Left: |λ| on log bins (`values` with weights `values_w`), positive and negative apart.
    Right: the SLQ density of `nodes`/`weights` (one array per start vector) against the values."""
    color = f"C{i}"
    scale = np.abs(values).max()
    edges = np.geomspace(max(scale * 1e-9, 1e-12), scale * 1.01, 60)
    for sign, style in ((1, "-"), (-1, ":")):
        chosen = (values * sign) > 0
        # |λ| below the first edge are counted in the first bin, not dropped (the title says so).
        counts, _ = np.histogram(np.clip(np.abs(values[chosen]), edges[0], edges[-1]), edges, weights=values_w[chosen])
        ax_abs.stairs(counts, edges, color=color, linestyle=style, label=f"{run.activation} {'λ > 0' if sign > 0 else 'λ < 0'}")
    ax_abs.set(
        xscale="log",
        yscale="log",
        xlabel="|λ|",
        ylabel="fraction of eigenvalues",
        title="|λ| (dotted: λ < 0; first bin: |λ| ≤ 1e-9·max|λ|)",
    )
    ax_abs.legend(fontsize=8)
    lo = min(values.min(), min(n.min() for n in nodes))
    hi = max(values.max(), max(n.max() for n in nodes))
    grid_G = np.linspace(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo), 800)
    d_G = geometry.density(nodes, weights, grid_G, sigma=(hi - lo) / 200)
    ax_density.plot(grid_G, np.maximum(d_G, 1e-12), color=color, label=f"{run.activation}: SLQ density")
    counts, edges = np.histogram(values, 100, weights=values_w / ((hi - lo) / 100 + 1e-30))
    ax_density.stairs(np.maximum(counts, 1e-12), edges, color=color, alpha=0.4, label=f"{run.activation}: {values_are}")
    ax_density.set(yscale="log", ylim=(1e-6, None), xlabel="λ", ylabel="density", title="spectral density")
    ax_density.legend(fontsize=8)


# --------------------------------------------------------------------------- runs and data


def _name(run: Run) -> str:
    m = run.model_info
    return f"#{run.network} (seed {m.get('seed')}, η {m.get('learning_rate')})"


def _describe(run: Run) -> str:
    return f"{'-'.join(map(str, run.summary['sizes']))} {run.activation}, {run.cost}"


def _best_partner(run_dir: str, a: Run) -> int:
    """The best network (validation accuracy) of a's learning rate with another seed."""
    models = a.summary["models"]
    lr = a.model_info.get("learning_rate")
    others = [
        g
        for g, m in enumerate(models)
        if g != a.network and m.get("learning_rate") == lr and m.get("seed") != a.model_info.get("seed") and not m.get("diverged")
    ]
    if not others:
        raise RunError(f"{run_dir}: network {a.network} has no other seed of learning rate {lr}; give --networks I,J or a second run")
    key = "validation_accuracy" if all("validation_accuracy" in models[g] for g in others) else "test_accuracy"
    return max(others, key=lambda g: models[g].get(key, -math.inf))


def _same_networks(a: Run, b: Run) -> None:
    if (a.summary["sizes"], a.activation, a.cost) != (b.summary["sizes"], b.activation, b.cost):
        raise RunError(
            f"{a.dir} network {a.network} ({_describe(a)}) and {b.dir} network {b.network} ({_describe(b)}) differ; a path needs two networks of one shape"
        )


def subjects(args) -> list:
    """The networks a command works on: pairs `(A, B)` for align/curve/lines, single runs otherwise."""
    pair = args.what in ("align", "curve", "lines")
    if args.networks == "all":
        if args.what != "align" or args.run_b:
            raise RunError("--networks all is for align on one run dir")
        runs = rundir.load_runs(args.run_dir, None, args.params)  # every network that did not diverge
        pairs = [
            (a, b) for a, b in itertools.combinations(runs, 2) if a.model_info.get("learning_rate") == b.model_info.get("learning_rate")
        ]
        if not pairs:
            raise RunError(f"{args.run_dir}: no two networks share a learning rate")
        return pairs
    ids = _network_ids(args.networks)
    if args.run_b:
        if len(ids) not in (0, 2):
            raise RunError(f"--networks {args.networks}: with two run dirs give I,J (I of RUN_DIR, J of RUN_B)")
        a, b = (rundir.load_run(d, ids[k] if ids else None, args.params) for k, d in enumerate((args.run_dir, args.run_b)))
    elif pair:
        if len(ids) not in (0, 2):
            raise RunError(f"--networks {args.networks}: {args.what} needs two networks, I,J")
        if ids:
            a, b = rundir.load_runs(args.run_dir, ids, args.params)
        else:
            a = rundir.load_run(args.run_dir, None, args.params)
            b = rundir.load_run(args.run_dir, _best_partner(args.run_dir, a), args.params)
    else:
        if len(ids) > 2:
            raise RunError(f"--networks {args.networks}: {args.what} shows one network or two")
        return rundir.load_runs(args.run_dir, ids or [None], args.params)
    if pair:
        _same_networks(a, b)
        return [(a, b)]
    return [a, b]


def _network_ids(text: str | None) -> list[int]:
    if text is None:
        return []
    try:
        ids = [int(t) for t in text.split(",")]
    except ValueError:
        raise RunError(f"--networks {text!r}: must be network numbers I or I,J (or all, for align)") from None
    if len(set(ids)) != len(ids):
        raise RunError(f"--networks {text}: the same network twice")
    return ids


def load_data(run: Run, n_examples: int) -> dict:
    """`{"train": (x, y) of the run's training split, "subset": the fixed n_examples of it}`, on the device."""
    mnist = rundir.load_data(run)
    x_NxD = jnp.asarray(mnist.x_train_NxD)
    y_NxK = jax.nn.one_hot(jnp.asarray(mnist.labels_train_N), run.params[-1][0].shape[0])
    return {"train": (x_NxD, y_NxK), "subset": endpoints.fixed_subset(x_NxD, y_NxK, n_examples)}


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = cli.one_line_parser(
        RunError,
        prog="python -m mlpjax.landscape",
        description=__doc__.split("\n\n")[1],
        epilog="critical points and their verdict: python -m mlpjax.landscape critical --help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("what", choices=WHATS)
    p.add_argument("run_dir", help="a training run's output dir (summary.json, params/)")
    p.add_argument("run_b", nargs="?", help="a second run: network J of it is B")
    p.add_argument("--networks", help="I,J: networks A and B (one or two for surface/spectrum); all: every pair (align)")
    p.add_argument("--polished", action="store_true", help="read params_polished/ (after train.polish) instead of params/")
    p.add_argument("--out", help="where to write WHAT.png and WHAT.json (default RUN_DIR/landscape)")
    p.add_argument("--examples", type=int, help="training images the costs are measured on (default 10,000; spectrum 2,000)")
    p.add_argument("--seed", type=int, default=0, help="draws directions, start vectors, curve mini-batches (default 0)")
    p.add_argument("--steps", type=int, default=2000, help="curve: Adam steps (default 2000)")
    p.add_argument("--grid", type=int, default=31, help="surface: points per axis over [−1, 1] (odd; default 31)")
    p.add_argument("--dense-max", type=int, default=20_000, help="spectrum: largest parameter count for the full Hessian (default 20,000)")
    p.add_argument("--slq-steps", type=int, default=80, help="spectrum: Lanczos steps per SLQ vector (default 80)")
    p.add_argument("--slq-vectors", type=int, default=8, help="spectrum: SLQ start vectors (default 8)")
    args = p.parse_args(argv)
    args.params = "params_polished" if args.polished else "params"
    args.examples = DEFAULT_EXAMPLES[args.what] if args.examples is None else args.examples
    for name, low in (("examples", 1), ("steps", 1), ("grid", 3), ("slq_steps", 2), ("slq_vectors", 1), ("dense_max", 0)):
        if getattr(args, name) < low:
            raise RunError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be at least {low}")
    if args.grid % 2 == 0:
        raise RunError(f"--grid {args.grid}: must be odd (the network is the middle point)")
    return args


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (2 for a one-line error)."""
    return cli.one_line_errors(lambda: run(sys.argv[1:] if argv is None else argv), (RunError,))


def run(argv: list[str]) -> dict:
    """Parse `argv`, run the command, write WHAT.png and WHAT.json; returns the numbers."""
    args = parse_args(argv)
    args.out_dir = args.out or os.path.join(args.run_dir, "landscape")
    os.makedirs(args.out_dir, exist_ok=True)
    chosen = subjects(args)
    first = chosen[0][0] if isinstance(chosen[0], tuple) else chosen[0]
    data = load_data(first, args.examples)
    print(f"== {args.what}: {_describe(first)}, costs on {int(data['subset'][0].shape[0]):,} training images")
    t0 = time.time()
    command = {"align": run_align, "curve": run_curve, "lines": run_lines, "surface": run_surface, "spectrum": run_spectrum}[args.what]
    numbers, fig = command(args, chosen, data)
    numbers = {
        "what": args.what,
        "run_dirs": [args.run_dir] + ([args.run_b] if args.run_b else []),
        "examples": int(data["subset"][0].shape[0]),
    } | numbers
    numbers["seconds"] = round(time.time() - t0, 1)
    outputs.write(args.out_dir, args.what, fig, numbers)
    return numbers
