"""Critical points of saved networks, verified: `python -m mlpjax.landscape critical RUN [RUN …]`.

    python -m mlpjax.landscape critical RUN [RUN …] [--networks I,J|all] [--examples N] [--tol T]
        [--budget SECONDS] [--start sgd|polished] [--dense-max P] [--out DIR]

For each chosen network of each run (default: every network that did not diverge), from its end point
(after SGD, or after the run's float32 polish with --start polished) to a critical point of the run's
full-batch training cost (with its model.l2 term) on the first --examples training images (default all
of the run's training split), in float64 (mlpjax/landscape/critical.py, verdict.py), and a verdict with its evidence:
minimum, saddle (with its index), gradient-flat, escaping or unresolved. Writes into --out (default
RUN/critical):
  critical.json      per network: verdict, reason, ‖∇f‖, f, ‖θ‖, λ_min, λ_max, index, zero and negative
                     counts, ε, how far the point moved, accuracies before and after, steps, seconds;
                     the distinct minima per configuration; the definitions and tolerances used
  critical.png       ‖∇f‖ against step (coloured by verdict), index against cost of the saddles,
                     the spectrum at each minimum
  spectra.npz        every eigenvalue (or Ritz value) of each verified point, by network number
  params_critical/   the end points, stacked like params/ (`checkpoint.load_params`; float64 when read
                     under `jax.enable_x64(True)`)
Mistakes end in one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from mlpjax import checkpoint, cli, config, model, outputs, provenance, rundir
from mlpjax import cost as cost_lib
from mlpjax.landscape import critical, geometry, verdict
from mlpjax.rundir import RunError

COLORS = {verdict.MINIMUM: "tab:green", verdict.SADDLE: "tab:red", verdict.GRADIENT_FLAT: "tab:purple", verdict.ESCAPING: "tab:orange"}
_accuracy = jax.jit(cost_lib.accuracy, static_argnames="activation")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = cli.one_line_parser(
        RunError,
        prog="python -m mlpjax.landscape critical",
        description=__doc__.split("\n\n")[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="training runs' output dirs (summary.json, params/)")
    p.add_argument("--networks", default="all", help="I,J,…: these networks of every run; all (default): every one that did not diverge")
    p.add_argument("--examples", type=int, help="the first N training images (default: the run's whole training split)")
    p.add_argument("--tol", type=float, default=1e-10, help="a critical point has ‖∇f‖ ≤ tol (default 1e-10)")
    p.add_argument("--budget", type=float, default=300.0, help="seconds of search per network, verification not counted (default 300)")
    p.add_argument("--start", choices=("sgd", "polished"), default="sgd", help="start from params/ (sgd, default) or params_polished/")
    p.add_argument("--dense-max", type=int, default=16_000, help="largest P for the dense Hessian; above it Lanczos (default 16,000)")
    p.add_argument("--out", help="where to write critical.json and the rest (default RUN/critical)")
    args = p.parse_args(argv)
    for name, ok, allowed in (
        ("examples", lambda v: v >= 1, "at least 1"),
        ("tol", lambda v: 0 < v < np.inf, "> 0"),
        ("budget", lambda v: 0 < v < np.inf, "> 0"),
        ("dense_max", lambda v: v >= 0, "at least 0"),
    ):
        v = getattr(args, name)
        if v is not None and not ok(v):
            raise RunError(f"--{name.replace('_', '-')} {v}: must be {allowed}")
    return args


def networks_of(args) -> list[rundir.Run]:
    """The chosen networks of every run, of one shape."""
    params = "params_polished" if args.start == "polished" else "params"
    ids = None
    if args.networks != "all":
        try:
            ids = [int(t) for t in args.networks.split(",")]
        except ValueError:
            raise RunError(f"--networks {args.networks!r}: must be network numbers I,J,… or all") from None
    chosen = [r for d in args.runs for r in rundir.load_runs(d, ids, params)]
    shapes = {tuple(r.summary["sizes"]) for r in chosen}
    if len(shapes) > 1:
        raise RunError(f"runs of several shapes ({', '.join('-'.join(map(str, s)) for s in sorted(shapes))}): give runs of one shape")
    if not chosen:
        raise RunError("no network to analyze (every one diverged?)")
    return chosen


def configuration(run: rundir.Run) -> str:
    """What networks of one configuration share (the run's identity less seeds and where data lives), and η."""
    identity = {k: v for k, v in run.summary.get("identity", {}).items() if k not in config.NOT_CONFIGURATION and k != "optim.lr"}
    return repr(sorted(identity.items())) + f" lr={run.model_info.get('learning_rate')}"


def accuracies(params, splits: dict, activation: str) -> dict:
    """Accuracy on each split, float64 forward pass."""
    with jax.enable_x64(True):
        p64 = [(jnp.asarray(W, jnp.float64), jnp.asarray(b, jnp.float64)) for W, b in params]
        return {
            f"{k}_accuracy": float(_accuracy(p64, jnp.asarray(x, jnp.float64), jnp.asarray(l), activation)) for k, (x, l) in splits.items()
        }


def run(argv: list[str]) -> dict:
    """Parse `argv`, analyze every chosen network, write the outputs; returns critical.json's content."""
    args = parse_args(argv)
    out_dir = args.out or os.path.join(args.runs[0], "critical")
    chosen = networks_of(args)
    splits_of: dict[str, dict] = {}
    entries, paths, spectra, thetas = [], [], {}, []
    sizes = tuple(chosen[0].summary["sizes"])
    P = model.count_for_sizes(list(sizes))
    print(
        f"== critical: {len(chosen)} network(s) of {'-'.join(map(str, sizes))}, P = {P:,}; tol {args.tol:g}, "
        f"budget {args.budget:g} s each; spectrum {'dense' if P <= args.dense_max else 'Lanczos'}",
        flush=True,
    )
    t_all = time.time()
    for g, r in enumerate(chosen):
        if r.dir not in splits_of:
            splits_of[r.dir] = rundir.load_splits(r)
        splits = splits_of[r.dir]
        x_NxD, labels_N = splits["train"]
        n = x_NxD.shape[0] if args.examples is None else min(args.examples, x_NxD.shape[0])
        x_NxD, y_NxK = x_NxD[:n].astype(np.float64), np.eye(sizes[-1])[labels_N[:n]]
        problem = critical.Problem(sizes, r.activation, r.cost, r.l2)
        print(f"  {g + 1}/{len(chosen)} {r.dir} #{r.network} (seed {r.model_info.get('seed')}): searching on {n:,} examples", flush=True)
        e = verdict.analyze(
            problem,
            critical.flatten(r.params),
            x_NxD,
            y_NxK,
            tol=args.tol,
            budget=args.budget,
            dense_max=args.dense_max,
            log=functools.partial(print, flush=True),
        )
        path, spec = e.pop("path"), e.pop("spectrum")
        before, after = (
            accuracies(r.params, splits, r.activation),
            accuracies(critical.unravel(problem, path.theta_P), splits, r.activation),
        )
        entry = {
            "network": g,
            "run": r.dir,
            "run_network": r.network,
            "seed": r.model_info.get("seed"),
            "learning_rate": r.model_info.get("learning_rate"),
            "activation": r.activation,
            "l2": r.l2,
            "examples": n,
            **e,
            "before": before,
            "after": after,
        }
        entries.append(entry)
        paths.append(path)
        thetas.append(path.theta_P)
        if spec is not None:
            spectra[f"network_{g}"] = np.asarray(spec["eigenvalues"])
        lam = f"λ_min {entry['lambda_min']:.3g}" if entry["lambda_min"] is not None else f"λ_max≈{entry['lambda_max']:.3g}"
        print(
            f"  {g + 1}/{len(chosen)} {r.dir} #{r.network} (seed {entry['seed']}): {entry['verdict']}"
            + (f" of index {entry['index']}" if entry["verdict"] == verdict.SADDLE and entry.get("index") else "")
            + f"  ‖∇f‖ {entry['grad_norm']:.2g}  f {entry['cost']:.6g}  {lam}  steps {path.lbfgs_steps}+{path.newton_steps}"
            f"  {entry['search_seconds'] + entry['verify_seconds']:.0f} s — {entry['reason']}",
            flush=True,
        )
    distinct = distinct_by_configuration(chosen, entries, thetas, sizes)
    numbers = {
        "what": "critical",
        "runs": args.runs,
        "start": args.start,
        "tolerances": {
            "tol": args.tol,
            "eps_rel": verdict.EPS_REL,
            "flat_rel": verdict.FLAT_REL,
            "growth": verdict.GROWTH,
            "slope": verdict.SLOPE,
            "dense_max": args.dense_max,
            "budget_seconds": args.budget,
        },
        "definitions": verdict.DEFINITIONS,
        "counts": {v: sum(e["verdict"] == v for e in entries) for v in verdict.VERDICTS},
        "networks": entries,
        "distinct_minima": distinct,
        "seconds": round(time.time() - t_all, 1),
        "environment": provenance.record(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
    }
    for e, p in zip(entries, paths):
        keep = np.unique(np.geomspace(1, p.grad_norm_S.size, min(400, p.grad_norm_S.size)).astype(int) - 1)
        e["history"] = {"step": keep.tolist(), "grad_norm": p.grad_norm_S[keep].tolist(), "cost": p.cost_S[keep].tolist()}
    os.makedirs(out_dir, exist_ok=True)
    nets = [critical.unravel(critical.Problem(sizes, r.activation, r.cost, r.l2), t) for r, t in zip(chosen, thetas)]
    stacked = [(np.stack([net[l][0] for net in nets]), np.stack([net[l][1] for net in nets])) for l in range(len(sizes) - 1)]
    checkpoint.save_params(os.path.join(out_dir, "params_critical"), stacked)
    np.savez(os.path.join(out_dir, "spectra.npz"), **spectra)
    outputs.write(out_dir, "critical", figure(entries, paths, spectra, args.tol), numbers)
    print(table(entries))
    print(
        "verdicts: "
        + ", ".join(f"{v} {c}" for v, c in numbers["counts"].items() if c)
        + "".join(
            f"; {d['minima']} minimum/minima of {d['configuration_label']}: {d['count']} distinct up to permutations"
            for d in distinct
            if d["count"] is not None
        )
    )
    return numbers


def distinct_by_configuration(chosen, entries, thetas, sizes) -> list[dict]:
    """`geometry.distinct_minima` among the minima of each configuration."""
    groups: dict[str, list[int]] = {}
    for g, (r, e) in enumerate(zip(chosen, entries)):
        if e["verdict"] == verdict.MINIMUM:
            groups.setdefault(configuration(r), []).append(g)
    out = []
    for gs in groups.values():
        r = chosen[gs[0]]
        if r.l2 == 0:  # ReLU rescaling and sigmoid sign flips are then symmetries weight matching does not undo
            out.append(
                {
                    "configuration_label": f"{r.activation}, λ 0, η {r.model_info.get('learning_rate')}",
                    "networks": gs,
                    "minima": len(gs),
                    "count": None,
                    "why_not": "at λ = 0 rescalings and sign flips are symmetries too; "
                    "weight matching undoes permutations only, so a count would overstate the distinct minima",
                }
            )
            continue
        problem = critical.Problem(sizes, r.activation, r.cost, r.l2)
        d = geometry.distinct_minima([thetas[g] for g in gs], [entries[g]["newton_distance"] for g in gs], problem)
        label = f"{r.activation}, λ {r.l2:g}, η {r.model_info.get('learning_rate')}"
        out.append(
            {"configuration_label": label, "networks": gs, "minima": len(gs), **d, "groups": [[gs[i] for i in grp] for grp in d["groups"]]}
        )
    return out


def table(entries: list[dict]) -> str:
    rows = [
        [
            f"{e['network']} (seed {e['seed']})",
            e["verdict"] + (f" {e['index']}" if e["verdict"] == verdict.SADDLE and e.get("index") is not None else ""),
            e["grad_norm"],
            e["cost"],
            e["lambda_min"] if e["lambda_min"] is not None else float("nan"),
            e["lambda_max"],
            e["moved"],
            100 * e["before"].get("test_accuracy", float("nan")),
            100 * e["after"].get("test_accuracy", float("nan")),
        ]
        for e in entries
    ]
    return outputs.table(rows, ["network", "verdict", "‖∇f‖", "f", "λ_min", "λ_max", "moved", "test % before", "after"])


def figure(entries: list[dict], paths, spectra: dict, tol: float):
    fig = outputs.figure(15, 4.5)
    ax_g, ax_idx, ax_spec = fig.subplots(1, 3)
    seen = set()
    for e, p in zip(entries, paths):
        v = e["verdict"]
        label = v if v not in seen else None
        seen.add(v)
        steps = np.arange(p.grad_norm_S.size)
        ax_g.plot(steps, np.maximum(p.grad_norm_S, 1e-300), color=COLORS.get(v, "0.5"), lw=0.8, label=label)
        newton = p.method_S == 1
        ax_g.plot(steps[newton], np.maximum(p.grad_norm_S[newton], 1e-300), ".", color=COLORS.get(v, "0.5"), ms=3)
    ax_g.axhline(tol, color="k", lw=0.5, ls=":", label=f"tol = {tol:g}")
    ax_g.set(yscale="log", xlabel="step (L-BFGS, then Newton: dots)", ylabel="‖∇f‖", title="‖∇f‖ along the search, by verdict")
    ax_g.legend(fontsize=8)
    saddles = [e for e in entries if e["verdict"] == verdict.SADDLE]
    if saddles:
        ax_idx.scatter(
            [e["cost"] for e in saddles], [e.get("index") or e.get("index_at_least") or 0 for e in saddles], color=COLORS["saddle"]
        )
        ax_idx.set(title=f"{len(saddles)} saddle(s): index against cost (Dauphin et al. 2014)")
    else:
        ax_idx.text(0.5, 0.5, "no saddle found", ha="center", va="center", transform=ax_idx.transAxes)
        ax_idx.set(title="saddles: index against cost")
    ax_idx.set(xlabel="f at the saddle", ylabel="index (eigenvalues < −ε)")
    for e in entries:
        eig = spectra.get(f"network_{e['network']}")
        if e["verdict"] != verdict.MINIMUM or eig is None:
            continue
        ax_spec.plot(np.arange(1, eig.size + 1), np.sort(eig)[::-1], lw=0.8, label=f"#{e['network']} (seed {e['seed']})")
    ax_spec.set(xscale="log", yscale="log", xlabel="rank", ylabel="λ (descending)", title="Hessian spectrum at each minimum")
    if ax_spec.lines:
        ax_spec.legend(fontsize=7)
    else:
        ax_spec.text(0.5, 0.5, "no verified minimum", ha="center", va="center", transform=ax_spec.transAxes)
    return fig


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (2 for a one-line error)."""
    return cli.one_line_errors(lambda: run(sys.argv[2:] if argv is None else argv), (RunError,))
