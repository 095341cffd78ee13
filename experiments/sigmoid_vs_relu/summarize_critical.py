"""The table of the critical points, from the committed critical.json files (no training, no search).

    python experiments/sigmoid_vs_relu/summarize_critical.py      # prints it; writes critical/summary.md

Per configuration (a folder of critical/, its part*/ folders merged): the verdict counts, the distinct minima
(counted by `landscape critical` within each command: all 20 networks, or each part of 5 for [16,16]), the
gradient norm and both ends of the spectrum at the minima, how far each search moved from SGD's end point
(‖θ − θ₀‖/‖θ₀‖), and test accuracy at SGD's end point against at the critical point it led to, paired by network:
mean difference, 95% paired t-interval, sign-flip p and BCa interval (`mlpjax.report.stats.paired_difference`:
scipy.stats). Only verified minima enter the comparison.
"""

from __future__ import annotations

import glob
import json
import os
import sys

import numpy as np

from mlpjax.report.stats import paired_difference

HERE = os.path.dirname(os.path.abspath(__file__))
VERDICTS = ("minimum", "saddle", "gradient-flat", "escaping", "unresolved")


def critical_files(folder: str) -> list[str]:
    """A configuration's critical.json files: its own, or one per part (the [16,16] ones ran in parts of 5)."""
    return sorted(glob.glob(os.path.join(folder, "critical.json")) + glob.glob(os.path.join(folder, "part*", "critical.json")))


def load(folder: str) -> tuple[list[dict], list[int]]:
    """The networks of a configuration's critical.json files, and the distinct minima each file counted."""
    nets, distinct = [], []
    for path in critical_files(folder):
        with open(path) as f:
            d = json.load(f)
        nets += d["networks"]
        distinct += [g["count"] for g in d.get("distinct_minima") or []]
    return nets, distinct


def _range(values, fmt: str) -> str:
    return f"{format(min(values), fmt)}–{format(max(values), fmt)}" if values else "—"


def row(name: str, nets: list[dict], distinct: list[int]) -> str:
    counts = {v: sum(n["verdict"] == v for n in nets) for v in VERDICTS}
    minima = [n for n in nets if n["verdict"] == "minimum"]
    if not minima:
        grads = [n["grad_norm"] for n in nets]
        return (
            f"| {name} | {len(nets)} | "
            + " / ".join(str(counts[v]) for v in VERDICTS)
            + f" | — | ‖∇f‖ {_range(grads, '.2g')} | — | — | — | — |"
        )
    acc = paired_difference(
        {n["seed"]: 100 * n["after"]["test_accuracy"] for n in minima}, {n["seed"]: 100 * n["before"]["test_accuracy"] for n in minima}
    )
    before = [100 * n["before"]["test_accuracy"] for n in minima]
    after = [100 * n["after"]["test_accuracy"] for n in minima]
    return (
        f"| {name} | {len(nets)} | "
        + " / ".join(str(counts[v]) for v in VERDICTS)
        + f" | {sum(distinct)} of {counts['minimum']} | ‖∇f‖ {_range([n['grad_norm'] for n in minima], '.1e')}; "
        f"λ_min {_range([n['lambda_min'] for n in minima], '.1e')}, λ_max median {np.median([n['lambda_max'] for n in minima]):.3g} "
        f"| {np.median([n['moved'] for n in minima]):.2f} "
        f"| {np.mean(before):.1f} ± {np.std(before, ddof=1):.1f} → {np.mean(after):.1f} ± {np.std(after, ddof=1):.1f} "
        f"| {acc['mean']:+.1f} [{acc['ci_low']:.1f}, {acc['ci_high']:.1f}], p {acc['p_signflip']:.1g}, BCa [{acc['bca_low']:.1f}, {acc['bca_high']:.1f}], n {acc['n']} |"
    )


def figure(path: str) -> None:
    """Sigmoid's verified minima by layer size: test accuracy at SGD's end points and at the minima, λ_max, and
    the barriers (straight and curved, unaligned and aligned), each network or pair a dot, the mean a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [w for w in (4, 8, 16) if os.path.isdir(os.path.join(HERE, "critical", f"sigmoid_{w}-{w}"))]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for k, w in enumerate(sizes):
        minima = [n for n in load(os.path.join(HERE, "critical", f"sigmoid_{w}-{w}"))[0] if n["verdict"] == "minimum"]
        if not minima:
            continue
        for key, colour, dx in (("before", "tab:gray", -0.1), ("after", "tab:blue", 0.1)):
            acc = [100 * n[key]["test_accuracy"] for n in minima]
            axes[0].scatter(
                [k + dx] * len(acc), acc, s=8, color=colour, label=("SGD end point" if key == "before" else "minimum") if k == 0 else None
            )
        axes[1].scatter([k] * len(minima), [n["lambda_max"] for n in minima], s=8, color="tab:blue")
        path_b = os.path.join(HERE, "critical", f"sigmoid_{w}-{w}", "barriers.json")
        if os.path.exists(path_b):
            with open(path_b) as f:
                rows = json.load(f)["pairs"]
            for j, (key, colour) in enumerate(
                (
                    ("straight_unaligned", "tab:red"),
                    ("straight_aligned", "tab:orange"),
                    ("curve_unaligned", "tab:purple"),
                    ("curve_aligned", "tab:green"),
                )
            ):
                axes[2].scatter(
                    [k + 0.08 * (j - 1.5)] * len(rows),
                    [r[key] for r in rows],
                    s=8,
                    color=colour,
                    label=key.replace("_", ", ") if k == 0 else None,
                )
    for ax, title in zip(axes, ("test accuracy % (n = 20 a size)", "λ_max at the minimum", "barrier between minima (f, disjoint pairs)")):
        ax.set_xticks(range(len(sizes)), [f"[{w},{w}]" for w in sizes])
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7)
    axes[2].legend(fontsize=7)
    fig.suptitle("Sigmoid, λ = 1e-3, first 2,000 training images: verified minima by layer size (experiments/sigmoid_vs_relu)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    lines = [
        "| configuration | networks | minimum / saddle / gradient-flat / escaping / unresolved | distinct minima | at the minima | moved (median) "
        "| test acc %, SGD end → minimum (mean ± sd) | paired difference, points [95% t], sign-flip p, BCa |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for folder in sorted(glob.glob(os.path.join(HERE, "critical", "*", ""))):
        nets, distinct = load(folder)
        if nets:
            lines.append(row(os.path.basename(os.path.dirname(folder)), nets, distinct))
    lines += [
        "",
        "Barriers between verified minima on disjoint pairs of seeds (barriers.py: f on the 2,000 training images; the rise "
        "above the higher end). Mean ± sd over the pairs; aligned − unaligned as a paired difference [95% t], sign-flip p.",
        "",
        "| configuration | pairs | end cost f | straight, unaligned (/ end cost) | straight, aligned (/ unaligned) "
        "| curve, unaligned | curve, aligned | aligned − unaligned, straight |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(glob.glob(os.path.join(HERE, "critical", "*", "barriers.json"))):
        with open(path) as f:
            rows = json.load(f)["pairs"]
        ms = lambda k, rows=rows: (
            f"{np.mean([r[k] for r in rows]):.3g} ± {np.std([r[k] for r in rows], ddof=1):.2g}" if len(rows) > 1 else f"{rows[0][k]:.3g}"
        )
        diff = paired_difference(
            {i: r["straight_aligned"] for i, r in enumerate(rows)}, {i: r["straight_unaligned"] for i, r in enumerate(rows)}
        )
        lines.append(
            f"| {os.path.basename(os.path.dirname(path))} | {len(rows)} | {ms('end_cost')} | {ms('straight_unaligned')} ({ms('straight_unaligned_rel_end')}) "
            f"| {ms('straight_aligned')} ({ms('straight_aligned_rel_unaligned')}) | {ms('curve_unaligned')} | {ms('curve_aligned')} "
            f"| {diff['mean']:+.3g} [{diff['ci_low']:.3g}, {diff['ci_high']:.3g}], p {diff['p_signflip']:.2g}, n {diff['n']} |"
        )
    figure(os.path.join(HERE, "critical", "by_size.png"))
    text = "\n".join(lines)
    with open(os.path.join(HERE, "critical", "summary.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
