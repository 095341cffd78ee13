"""The drunken walk's figure and summary table, from the numbers `walk.walk` returns (mlpjax/walk.py)."""

from __future__ import annotations

import math

import numpy as np


def _colors(results: dict) -> dict:
    from matplotlib import colormaps

    sgd = [r["batch_size"] for r in results["equal_steps"][:-1]]
    cmap = colormaps["plasma"]
    colors = {B: cmap(0.1 + 0.7 * i / max(len(sgd) - 1, 1)) for i, B in enumerate(sgd)}
    return colors | {results["n_train"]: "black"}


def figure(results: dict, settings: dict):
    """The three panels of walk.png, as a matplotlib Figure."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(18, 5.6), layout="constrained")
    ax_steps, ax_examples, ax_walk = fig.subplots(1, 3)
    colors = _colors(results)
    n = results["n_train"]
    c0 = results["equal_steps"][0]["cost"][0]
    for ax, part, x_key, xlabel, title in [
        (ax_steps, "equal_steps", "steps", "gradient steps", f"(a) equal gradient steps ({settings['steps']:,} each)"),
        (
            ax_examples,
            "equal_examples",
            "examples",
            "training examples seen",
            f"(b) equal examples seen ({plural(settings['epochs'], 'epoch')} each)",
        ),
    ]:
        for r in results[part]:
            x, c = np.array(r[x_key][1:]), np.array(r["cost"][1:])  # step 0 has no place on a log axis
            gd = r["batch_size"] == n
            ax.plot(x, c, "o-" if gd and len(x) < 15 else "-", ms=3, lw=2.2 if gd else 1.6, color=colors[r["batch_size"]], label=r["label"])
        ax.axhline(c0, color="0.6", ls=":", lw=1, label=f"start, C = {c0:.3g}")
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="training cost C (whole training set)", title=title)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(
            FuncFormatter(lambda v, _: f"{v:g}" if round(v / 10 ** math.floor(math.log10(v))) in (2, 3, 5) else "")
        )
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=9)
    if n in [r["batch_size"] for r in results["equal_examples"]]:
        for e in range(1, settings["epochs"] + 1):  # GD's steps sit on the epoch boundaries
            ax_examples.axvline(e * n, color="0.9", lw=0.8, zorder=0)

    w = results["walk"]
    ev = w["explained_variance"]
    P = results["param_count"]
    first_zoom = w["runs"][0]["zoom"]["steps"]
    inset = ax_walk.inset_axes([0.55, 0.69, 0.36, 0.22])
    for r in w["runs"]:
        color = colors[r["batch_size"]]
        gd = r["batch_size"] == n
        style = dict(lw=2.2 if gd else 0.9, alpha=1 if gd else 0.85, color=color, zorder=3 if gd else 2)
        label = f"{r['label']}: {r['drunkenness_plane']:.2f}, {r['drunkenness_full']:.1f}"
        ax_walk.plot(r["pc1"], r["pc2"], "-", label=label, **style)
        ax_walk.plot(r["pc1"][-1], r["pc2"][-1], "X", ms=9, mec="white", mew=0.8, color=color, zorder=4)
        z1, z2 = np.array(r["zoom"]["pc1"]), np.array(r["zoom"]["pc2"])
        inset.plot(z1 - z1[0], z2 - z2[0], "-", **style)  # each from where it stood when the window opens
        inset.plot(z1[-1] - z1[0], z2[-1] - z2[0], "X", ms=7, mec="white", mew=0.6, color=color, zorder=4)
    ax_walk.plot(0, 0, "o", ms=8, color="tab:green", mec="black", zorder=5, label="start θ₀ (all runs)")
    ax_walk.plot([], [], "X", ms=9, color="0.4", ls="none", label=f"end, after {settings['steps']:,} steps")
    ax_walk.set(
        xlabel=f"PC1 of the GD path ({100 * ev[0]:.1f}% of its variance)",
        ylabel=f"PC2 of the GD path ({100 * ev[1]:.1f}% of its variance)",
        title=f"(c) the first {settings['steps']:,} steps, on GD's two principal directions",
    )
    ax_walk.set_aspect("equal", adjustable="datalim")
    ax_walk.grid(True, alpha=0.25)
    ax_walk.legend(fontsize=8, loc="lower right", title=f"path / straight line: in this plane, in all {P:,} dims", title_fontsize=8)
    inset.set_aspect("equal", adjustable="datalim")
    inset.tick_params(labelsize=7)
    inset.plot(0, 0, "o", ms=5, color="0.3", zorder=5)
    inset.grid(True, alpha=0.25)
    every = "every step" if w["snapshot_stride"] == 1 else f"every {w['snapshot_stride']} steps"
    inset.set_title(f"steps {first_zoom[0]:,}–{first_zoom[-1]:,} ({every}), each from where it stood", fontsize=7.5)
    sizes = "-".join(map(str, settings["sizes"]))
    fig.suptitle(
        f"SGD's drunken walk: {sizes} {settings['activation']}, {settings['cost']} cost, η = {settings['lr']:g} (constant), "
        f"{n:,} training images, seed {settings['seed']}, all runs from the same θ₀"
    )
    return fig


def table(results: dict, settings: dict) -> str:
    """The printed summary: per run, final costs at equal steps and equal examples, and how crooked its walk is."""
    header = [
        "run",
        f"C @ {settings['steps']} steps",
        f"C @ {settings['epochs']} epochs",
        "steps",
        "path/straight (PC plane)",
        "path/straight (all P)",
        "in-plane share",
    ]
    rows = []
    for s, e, w in zip(results["equal_steps"], results["equal_examples"], results["walk"]["runs"]):
        rows.append(
            [
                s["label"],
                f"{s['cost'][-1]:.4f}",
                f"{e['cost'][-1]:.4f}",
                f"{e['steps'][-1]:,}",
                f"{w['drunkenness_plane']:.2f}",
                f"{w['drunkenness_full']:.2f}",
                f"{w['in_plane_share']:.2f}",
            ]
        )
    cells = [header] + rows
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    ev = results["walk"]["explained_variance"]
    notes = [
        f"PC1, PC2 of the GD path explain {100 * ev[0]:.1f}% + {100 * ev[1]:.1f}% = {100 * sum(ev):.1f}% of its displacement variance.",
        "path/straight: length of the path over the straight start-to-end distance after the equal-steps run,",
        "in the PC plane and in all parameters; in-plane share: |projection of θ_end − θ_0| / |θ_end − θ_0|.",
    ]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:], *notes])


def plural(k: int, word: str) -> str:
    return f"{k:,} {word}{'' if k == 1 else 's'}"
