"""The experiment's second step: λ chosen on validation, then every seed of each activation's chosen
configuration through `python -m mlpjax.landscape critical`.

    python experiments/sigmoid_vs_relu/critical_points.py SWEEP_DIR OUT_DIR [--budget 60] [--sizes 4,8,16]

1. λ (model.l2). The rule, fixed before the sweep ran: the largest λ of the sweep whose best validation
   accuracy (over batch size and η, mean over the seeds) is within `--max-drop` (1.0) percentage points
   of λ = 0's, for every arm (activation x initialization x layer size). λ > 0 is what gives the cost
   minima at finite θ; the rule bounds what it costs in accuracy. Written to OUT_DIR/selection.json.
2. The configurations. For each activation with its own initialization (sigmoid: LeCun, ReLU: He) and
   each layer size, the (batch, η) with the best mean validation accuracy at that λ (`report.table.selected`,
   the same choice report.md makes); its jobs' networks at that η, every seed, go through `critical` on
   the run's training cost (its first `data.train_images` images), one command per configuration, into
   OUT_DIR/ACTIVATION_HIDDEN/. Configurations with a critical.json are skipped (run again to finish).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from mlpjax import model
from mlpjax.report import jobs as report_jobs
from mlpjax.report import table

OWN_INIT = {"sigmoid": "lecun", "relu": "he"}


def arms(sweep: table.Sweep) -> dict:
    """Best mean validation accuracy per (activation, init, hidden, l2), over batch size and η."""
    best: dict = {}
    for r in sweep.rows:
        key = (r["activation"], r.get("model.init"), str(r["hidden"]), float(r.get("model.l2", 0)))
        if r.get("val_acc_mean") is not None and r["val_acc_mean"] == r["val_acc_mean"]:
            best[key] = max(best.get(key, -1.0), r["val_acc_mean"])
    return best


def choose_l2(best: dict, max_drop: float) -> tuple[float, list[dict]]:
    """The largest λ whose best validation accuracy is within `max_drop` points of λ = 0's in every arm."""
    lambdas = sorted({k[3] for k in best})
    rows = []
    for act, init, hidden, l2 in sorted(best):
        if l2 > 0 and (act, init, hidden, 0.0) in best:
            drop = 100 * (best[(act, init, hidden, 0.0)] - best[(act, init, hidden, l2)])
            rows.append(
                {
                    "activation": act,
                    "init": init,
                    "hidden": hidden,
                    "l2": l2,
                    "val_acc_l2_0": best[(act, init, hidden, 0.0)],
                    "val_acc": best[(act, init, hidden, l2)],
                    "drop_points": round(drop, 3),
                }
            )
    ok = [l2 for l2 in lambdas if l2 > 0 and all(r["drop_points"] <= max_drop for r in rows if r["l2"] == l2)]
    return (max(ok) if ok else None), rows


def networks_at(sweep: table.Sweep, row: dict, root: str) -> list[tuple[str, list[int]]]:
    """The (job dir, network indices) of the row's networks: its jobs' networks at its η."""
    out = []
    for name in dict.fromkeys(n["job"] for n in row["_nets"]):
        with open(os.path.join(root, name, "summary.json")) as f:
            models = json.load(f)["models"]
        out.append(
            (os.path.join(root, name), [i for i, m in enumerate(models) if float(m["learning_rate"]) == float(row["learning_rate"])])
        )
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sweep")
    p.add_argument("out")
    p.add_argument("--budget", default="sigmoid=60,relu=20", help="seconds of search per network by activation (critical --budget)")
    p.add_argument(
        "--part-size",
        type=int,
        default=5,
        help="networks per critical command where P > 10,000 (each part a folder: partial results survive a stop)",
    )
    p.add_argument("--max-drop", type=float, default=1.0, help="validation accuracy points λ may cost (default 1.0)")
    p.add_argument("--l2", type=float, help="use this λ whatever the rule gives (selection.json records both)")
    p.add_argument("--activations", default="relu,sigmoid", help="the activations to run (default both)")
    p.add_argument("--sizes", default="4,8,16", help="the hidden widths to run, in this order (each [w,w])")
    args = p.parse_args(argv)
    jobs = [report_jobs.read_job(d, args.sweep) for d in report_jobs.find_jobs(args.sweep)]
    sweep = table.aggregate(jobs)
    by_rule, drops = choose_l2(arms(sweep), args.max_drop)
    if by_rule is None and args.l2 is None:
        sys.exit(
            f"error: no λ > 0 keeps validation accuracy within {args.max_drop} points of λ = 0 in every arm ({drops}); name one with --l2"
        )
    l2 = by_rule if args.l2 is None else args.l2
    chosen = [r for r in table.selected(sweep) if float(r.get("model.l2", 0)) == l2 and r.get("model.init") == OWN_INIT[r["activation"]]]
    os.makedirs(args.out, exist_ok=True)
    selection = {
        "rule": f"largest λ with best validation accuracy within {args.max_drop} points of λ = 0 in every arm",
        "l2_by_rule": by_rule,
        "l2": l2,
        "drops": drops,
        "configurations": [
            {
                "activation": r["activation"],
                "init": r["model.init"],
                "hidden": list(r["hidden"]),
                "batch_size": r["batch_size"],
                "learning_rate": r["learning_rate"],
                "val_acc_mean": r["val_acc_mean"],
                "seeds": len(r["_nets"]),
            }
            for r in chosen
        ],
    }
    with open(os.path.join(args.out, "selection.json"), "w") as f:
        json.dump(selection, f, indent=1)
    print(
        f"λ = {l2:g}; {len(chosen)} configurations: "
        + "; ".join(
            f"{c['activation']} {c['hidden']} batch {c['batch_size']} η {c['learning_rate']:g}" for c in selection["configurations"]
        ),
        flush=True,
    )
    order = {(int(w), int(w)): k for k, w in enumerate(args.sizes.split(","))}
    budget = dict(kv.split("=") for kv in args.budget.split(","))
    # The expensive ones last: ReLU's searches stop at their budget, and the largest sigmoid networks' spectra take minutes each.
    cost = lambda r: (tuple(r["hidden"]) == max(order), order[tuple(r["hidden"])], r["activation"] == "sigmoid")
    wanted = [r for r in chosen if tuple(r["hidden"]) in order and r["activation"] in args.activations.split(",")]
    for r in sorted(wanted, key=cost):
        name = f"{r['activation']}_{'-'.join(str(h) for h in r['hidden'])}"
        for job_dir, nets in networks_at(sweep, r, args.sweep):  # one job per configuration in this sweep
            P = model.count_for_sizes([784, *r["hidden"], 10])
            size = args.part_size if P > 10_000 else len(nets)
            for k in range(0, len(nets), size):
                out = os.path.join(args.out, name, f"part{k // size}") if size < len(nets) else os.path.join(args.out, name)
                if os.path.exists(os.path.join(out, "critical.json")):
                    print(f"{out}: critical.json there already", flush=True)
                    continue
                part = ",".join(map(str, nets[k : k + size]))
                cmd = [
                    sys.executable,
                    "-m",
                    "mlpjax.landscape",
                    "critical",
                    job_dir,
                    "--networks",
                    part,
                    "--budget",
                    budget[r["activation"]],
                    "--out",
                    out,
                ]
                print(f"{name}: {' '.join(cmd[1:])}", flush=True)
                subprocess.run(cmd, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
