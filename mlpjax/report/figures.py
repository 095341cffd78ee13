"""The report's figures: facets by hidden layers and batch size, one file each."""

from __future__ import annotations

import collections
import os
import statistics
import textwrap
import warnings
from typing import Any

import numpy as np

from mlpjax.report.jobs import CHANCE, _alive, _finite
from mlpjax.report.table import Sweep, _batch_order, _grouped, _hidden_str, _settings, select_best

# --------------------------------------------------------------------------- plots


def _panels(rows: list[dict]):
    """(batch sizes, hidden configs) of the grid of panels, in table order."""
    batches = sorted({r["batch_size"] for r in rows if r["batch_size"] is not None}, key=_batch_order)
    hiddens = sorted(
        {r["hidden"] for r in rows if r["hidden"] is not None}, key=lambda h: (min(r["_params"] for r in rows if r["hidden"] == h), str(h))
    )
    return batches, hiddens


def _line_key(r: dict, extras: list[str]) -> str:
    return " ".join([str(r["activation"])] + [f"{k.split('.')[-1]}={r.get(k)}" for k in extras])


# Neutral styles of the legend's marker kinds (the colour is the activation's).
ONE = {"marker": "o", "ls": "", "color": "gray", "ms": 4}
HOLLOW = {"marker": "o", "ls": "", "color": "gray", "mfc": "none", "ms": 5}
MEDIAN = {"color": "gray", "lw": 1.5, "marker": "_", "ms": 10}  # the tick shows a median of one x too
BATCH_MARKERS = "os^Dv<>p*h"


class _Grid:
    """What every plot shares: panels, a colour per line, a legend of only what was drawn."""

    def __init__(self, root: str, rows: list[dict], extras: list[str]):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        self.plt, self.root, self.extras = plt, root, extras
        self.batches, self.hiddens = _panels(rows)
        self.line_keys = sorted({_line_key(r, extras) for r in rows if r["activation"] is not None})
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        self.color_of = {k: colors[i % len(colors)] for i, k in enumerate(self.line_keys)}
        # Lines side by side around each x (in decades), so that their points do not hide each other.
        self.offset = {k: (i - (len(self.line_keys) - 1) / 2) * 0.05 for i, k in enumerate(self.line_keys)}
        self.entries: dict[str, dict] = {}  # the current figure's legend: label → style
        self.legends: dict[str, list[str]] = {}  # file name → its legend's labels
        self.rng = np.random.default_rng(0)

    def figure(self, title: str, rows=None, cols=None, panel_title=None):
        """A new figure and its panels `axes[i][j]`: by default batch size × hidden layers."""
        rows = self.batches if rows is None else rows
        cols = self.hiddens if cols is None else cols
        panel_title = panel_title or (lambda b, h: f"hidden {_hidden_str(h)}, batch {b}")
        nr, nc = len(rows), len(cols)
        width = 3.2 * nc + 1.6
        fig, axes = self.plt.subplots(nr, nc, figsize=(width, 2.6 * nr + 1), sharex=True, sharey=True, squeeze=False)
        fig.suptitle(title, fontsize=9)
        for i, a in enumerate(rows):
            for j, b in enumerate(cols):
                axes[i][j].set_title(panel_title(a, b), fontsize=8)
                axes[i][j].grid(alpha=0.3)
        self.entries = {}
        return fig, axes

    def panel(self, axes, r: dict):
        """The panel of row `r` in a batch × hidden figure."""
        return axes[self.batches.index(r["batch_size"])][self.hiddens.index(r["hidden"])]

    def lines(self, axes, rows: list[dict]):
        """(panel, line key, the line's rows in that panel) for every panel and line, empty ones too."""
        for i, b in enumerate(self.batches):
            for jj, h in enumerate(self.hiddens):
                for k in self.line_keys:
                    rs = [r for r in rows if _line_key(r, self.extras) == k and r["batch_size"] == b and r["hidden"] == h]
                    yield axes[i][jj], k, rs

    def mark(self, label: str, style: dict) -> None:
        """Put `label` in the figure's legend (once), drawn with `style`."""
        self.entries.setdefault(label, style)

    def use(self, key: str) -> str:
        """The colour of line `key`, which is now in the legend."""
        self.mark(key, {"color": self.color_of[key], "marker": "o", "lw": 1.5})
        return self.color_of[key]

    def points(self, ax, x0: float, ys: list[float], key: str, hollow: bool = False, label: str = "one network (jittered in x)") -> None:
        """One marker per value at `x0`, shifted by the line's offset and jittered (log x)."""
        if not ys:
            return
        color = self.use(key)
        xs = x0 * 10 ** (self.offset[key] + self.rng.uniform(-0.015, 0.015, len(ys)))
        ax.plot(xs, ys, "o", ls="", color=color, mfc="none" if hollow else color, ms=4 if hollow else 3, alpha=0.8)
        self.mark(label, HOLLOW if hollow else ONE)

    def edge(self, ax, x0: float, count: int, y: float, marker: str, label: str, key: str | None = None) -> None:
        """`count` markers at `x0` on the panel's bottom (y=0) or top (y=1) edge: no value to draw them at."""
        if not count:
            return
        color = self.use(key) if key else "r"
        xs = x0 * 10 ** ((self.offset[key] if key else 0.0) + self.rng.uniform(-0.015, 0.015, count))
        ax.plot(
            xs,
            [y] * count,
            marker,
            ls="",
            color=color,
            mfc="none" if marker == "v" else color,
            ms=6,
            transform=ax.get_xaxis_transform(),
            clip_on=False,
        )
        self.mark(label, {"marker": marker, "ls": "", "color": "gray" if key else "r", "mfc": "none" if marker == "v" else None})

    def median(self, ax, xs: list[float], ys: list[float], key: str) -> None:
        if xs:
            ax.plot([x * 10 ** self.offset[key] for x in xs], ys, "-", marker="_", ms=10, color=self.use(key), lw=1.5)
            self.mark("median over seeds", MEDIAN)

    def save(self, fig, axes, name: str, xlabel: str, ylabel: str) -> str:
        """Label the outer axes, add the legend of what was drawn, write `root/name` (150 dpi); returns `name`."""
        for ax in axes[-1]:
            ax.set_xlabel(xlabel)
        for row in axes:
            row[0].set_ylabel(ylabel)
        # A one-column figure is narrow: its title wraps rather than running off both edges.
        fig.suptitle(textwrap.fill(fig.get_suptitle(), width=int(fig.get_figwidth() * 13)), fontsize=9)
        for ax in np.ravel(axes):
            if ax.get_xscale() == "log":  # labelled minor ticks of a short log axis run into each other
                ax.xaxis.set_minor_formatter(self.plt.NullFormatter())
        # The lines (activations) first, then the kinds of marks, each as first drawn.
        labels = [k for k in self.line_keys if k in self.entries] + [k for k in self.entries if k not in self.line_keys]
        styles = [{k: v for k, v in self.entries[label].items() if v is not None} for label in labels]
        handles = [self.plt.Line2D([], [], label=label, **style) for label, style in zip(labels, styles)]
        self.legends[name] = labels
        width = 0.0  # of the legend, in inches: the panels keep clear of it
        if handles:
            legend = fig.legend(handles=handles, loc="center right", fontsize=7)
            width = legend.get_window_extent(fig.canvas.get_renderer()).width / fig.dpi + 0.1  # no need to draw the figure
        fig.tight_layout(rect=(0, 0, 1 - width / fig.get_figwidth(), 0.95))
        fig.savefig(os.path.join(self.root, name), dpi=150)
        self.plt.close(fig)
        return name


def plot_all(root: str, sweep: Sweep) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """Draw the report's plots into `root` (see the module docstring).

    Returns (file name, caption) of each plot written, and each one's legend labels by file name.
    """
    grid = _Grid(root, sweep.rows, sweep.extras)
    if not grid.batches or not grid.hiddens:
        return [], {}
    # A failed job whose config was unreadable has no place on the axes.
    plotted = [r for r in sweep.rows if r["batch_size"] is not None and r["hidden"] is not None and r["learning_rate"] is not None]
    written = [_plot_accuracy(grid, plotted, sweep.split), _plot_learning_curves(grid, plotted, sweep), _plot_cost_spread(grid, plotted)]
    if "sharpness" in sweep.minima_cols:
        written += [_plot_sharpness_vs_lr(grid, plotted), _plot_sharpness_vs_cost(grid, plotted), _plot_sharpness_vs_batch(grid, plotted)]
    return written, grid.legends


def _plot_accuracy(grid: _Grid, plotted: list[dict], split: str) -> tuple[str, str]:
    """accuracy_vs_lr.png: every network's validation (or test) accuracy against η, and the median."""
    key = f"{split}_accuracy"
    fig, axes = grid.figure(f"final {split} accuracy of every network; line: median over seeds; dotted: 10%")
    for ax, k, rs in grid.lines(axes, plotted):
        med_x, med_y = [], []
        for r in rs:
            grid.edge(ax, r["learning_rate"], int(r["status"] == "failed"), 1.0, "s", "failed job (top edge)")
            alive = [n for n in _alive(r["_nets"]) if _finite(n.get(key))]
            grid.points(ax, r["learning_rate"], [100 * n[key] for n in alive if not n["at_chance"]], k)
            grid.points(
                ax,
                r["learning_rate"],
                [100 * n[key] for n in alive if n["at_chance"]],
                k,
                hollow=True,
                label=f"at chance (test < {100 * CHANCE:.0f}%), at its value",
            )
            grid.edge(ax, r["learning_rate"], r["diverged"], 0.0, "x", "diverged (bottom edge)", k)
            if alive:
                med_x.append(r["learning_rate"])
                med_y.append(statistics.median(100 * n[key] for n in alive))
        grid.median(ax, med_x, med_y, k)
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_ylim(0, 100)
        ax.axhline(10, color="gray", lw=0.8, ls=":")
    name = grid.save(fig, axes, "accuracy_vs_lr.png", "learning rate η", f"{split} accuracy %")
    return name, (
        f"final {split} accuracy of every network (one dot per seed, jittered in η) and the median over the "
        "seeds that did not diverge, per batch size and hidden layers; hollow: at chance, drawn at its value; "
        "x on the bottom edge: diverged (no value)."
    )


def _plot_learning_curves(grid: _Grid, plotted: list[dict], sweep: Sweep) -> tuple[str, str]:
    """learning_curves.png: validation (or test) error per epoch at each line's η chosen on that split."""
    from matplotlib.ticker import MaxNLocator

    split = sweep.split
    fig, axes = grid.figure(f"{split} error per epoch (log) at the η chosen on {split}; thin: one seed, thick: median")
    curves = _curves(sweep.jobs, sweep.extras, split)
    for ax, k, rs in grid.lines(axes, plotted):
        best = select_best([r for r in rs if r["_nets"]], split)
        acc_ExS = curves.get((k, best["hidden"], best["batch_size"], best["learning_rate"])) if best else None
        if acc_ExS is None or acc_ExS.size == 0:
            continue
        err_ExS = np.where(acc_ExS < 1, 100 * (1 - acc_ExS), np.nan)  # a log axis has no 0
        ep, color = np.arange(1, err_ExS.shape[0] + 1), grid.use(k)
        ax.plot(ep, err_ExS, "-", color=color, lw=0.6, alpha=0.5)
        with warnings.catch_warnings():  # an epoch where every seed diverged: no median
            warnings.simplefilter("ignore", RuntimeWarning)
            ax.plot(ep, np.nanmedian(err_ExS, axis=1), "-", color=color, lw=2, label=f"{k} η={best['learning_rate']:g}")
        grid.mark("one seed", {"color": "gray", "lw": 0.6})
        grid.mark("median over seeds", {"color": "gray", "lw": 2})
    for ax in axes.flat:
        if ax.lines:
            ax.legend(fontsize=6, loc="upper right")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter("{x:g}")
        ax.yaxis.set_minor_formatter("{x:g}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    name = grid.save(fig, axes, "learning_curves.png", "epoch", f"{split} error % (log)")
    return name, (
        f"{split} error (100 − accuracy, %, log scale) per epoch at the η chosen on {split} for each activation, "
        "batch size and hidden layers: one thin line per seed, thick: the median; a diverged network's line stops."
    )


def _plot_cost_spread(grid: _Grid, plotted: list[dict]) -> tuple[str, str]:
    """cost_spread.png: every network's final train cost against η."""
    fig, axes = grid.figure("final train cost of every network (hollow: at chance; x on the top edge: diverged)")
    for r in plotted:
        ax, k, lr = grid.panel(axes, r), _line_key(r, grid.extras), r["learning_rate"]
        grid.edge(ax, lr, int(r["status"] == "failed"), 1.0, "s", "failed job (top edge)")
        alive = [n for n in _alive(r["_nets"]) if _finite(n.get("train_cost"))]
        grid.points(ax, lr, [float(n["train_cost"]) for n in alive if not n["at_chance"]], k)
        grid.points(
            ax,
            lr,
            [float(n["train_cost"]) for n in alive if n["at_chance"]],
            k,
            hollow=True,
            label=f"at chance (test < {100 * CHANCE:.0f}%)",
        )
        grid.edge(ax, lr, r["diverged"], 1.0, "x", "diverged (top edge)", k)
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_yscale("log")
    name = grid.save(fig, axes, "cost_spread.png", "learning rate η", "final train cost")
    return name, (
        "final train cost of every network against η (one dot per seed); hollow: at chance (test accuracy "
        f"< {100 * CHANCE:.0f}%); x on the top edge: diverged; red square: a failed job."
    )


def _sharpness_nets(nets: list[dict], excluded: collections.Counter) -> list[dict]:
    """The networks whose sharpness is a result (analyzed, not diverged, not at chance); counts the others in `excluded`."""
    out = []
    for n in nets:
        if n["diverged"]:
            excluded["diverged"] += 1
        elif _finite(n.get("sharpness")) and n["at_chance"]:
            excluded["at chance"] += 1
        elif _finite(n.get("sharpness")):
            out.append(n)
    return out


def _excluded(excluded: collections.Counter) -> str:
    said = ", ".join(f"{c} {what}" for what, c in sorted(excluded.items()) if c and what != "≤ 0")
    floor = f"; {excluded['≤ 0']} with sharpness ≤ 0 as ▽ on the bottom edge" if excluded["≤ 0"] else ""
    return f"left out: {said or 'none'}{floor}"


def _draw_sharpness(grid: _Grid, ax, x0: float, nets: list[dict], key: str, excluded: collections.Counter) -> float | None:
    """Each network's sharpness at `x0` (≤ 0: ▽ on the bottom edge, counted); returns the median, None if none."""
    vals = [float(n["sharpness"]) for n in nets]
    grid.points(ax, x0, [v for v in vals if v > 0], key)
    excluded["≤ 0"] += sum(v <= 0 for v in vals)
    grid.edge(ax, x0, sum(v <= 0 for v in vals), 0.0, "v", "sharpness ≤ 0 (bottom edge)", key)
    return statistics.median(vals) if vals else None


def _draw_sharpness_line(grid: _Grid, ax, xs_nets: list[tuple[float, list[dict]]], key: str, excluded) -> None:
    """The sharpness of each x's networks, and the line through the positive medians."""
    med = [(x, _draw_sharpness(grid, ax, x, nets, key, excluded)) for x, nets in xs_nets]
    med = [(x, m) for x, m in med if m is not None and m > 0]
    grid.median(ax, [x for x, _ in med], [m for _, m in med], key)


def _plot_sharpness_vs_lr(grid: _Grid, plotted: list[dict]) -> tuple[str, str]:
    """sharpness_vs_lr.png: sharpness against η, both activations on the same axes, with the 2/η line."""
    fig, axes = grid.figure("")
    excluded = collections.Counter()
    for ax, k, rs in grid.lines(axes, plotted):
        _draw_sharpness_line(grid, ax, [(r["learning_rate"], _sharpness_nets(r["_nets"], excluded)) for r in rs], k, excluded)
    lrs = sorted({r["learning_rate"] for r in plotted})
    for ax in axes.flat:
        ax.plot(lrs, [2 / lr for lr in lrs], "--", color="gray", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
    grid.mark("2/η (GD's stability edge)", {"color": "gray", "ls": "--", "lw": 0.8})
    fig.suptitle(f"sharpness (top Hessian eigenvalue) of every network; {_excluded(excluded)}", fontsize=9)
    name = grid.save(fig, axes, "sharpness_vs_lr.png", "learning rate η", "sharpness")
    return name, (
        "sharpness (top Hessian eigenvalue of the training cost, at the polished point where polished) of every "
        "network against η, both activations on the same axes, one dot per seed and the median; dashed: 2/η; "
        f"networks at chance or diverged left out ({_excluded(excluded)})."
    )


def _cost_at_sharpness(n: dict) -> Any:
    """The train cost where the sharpness was measured: the polished point's when polished."""
    return n.get("polished_train_cost", n.get("train_cost"))


def _plot_sharpness_vs_cost(grid: _Grid, plotted: list[dict]) -> tuple[str, str]:
    """sharpness_vs_cost.png: sharpness against final train cost, per network; colour activation, marker batch size."""
    fig, axes = grid.figure("", rows=[None], panel_title=lambda _, h: f"hidden {_hidden_str(h)}")
    excluded = collections.Counter()
    for r in plotted:
        nets = _sharpness_nets(r["_nets"], excluded)
        drawn = [n for n in nets if float(n["sharpness"]) > 0 and _finite(_cost_at_sharpness(n)) and _cost_at_sharpness(n) > 0]
        excluded["without a positive sharpness and cost"] += len(nets) - len(drawn)
        if not drawn:
            continue
        k, b = _line_key(r, grid.extras), grid.batches.index(r["batch_size"])
        marker = BATCH_MARKERS[b % len(BATCH_MARKERS)]
        axes[0][grid.hiddens.index(r["hidden"])].plot(
            [_cost_at_sharpness(n) for n in drawn], [n["sharpness"] for n in drawn], marker, ls="", color=grid.use(k), ms=4, alpha=0.7
        )
        grid.mark(f"batch {r['batch_size']}", {"marker": marker, "ls": "", "color": "gray"})
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_yscale("log")
    fig.suptitle(f"sharpness against final train cost, every network; {_excluded(excluded)}", fontsize=9)
    name = grid.save(fig, axes, "sharpness_vs_cost.png", "final train cost (polished where polished)", "sharpness")
    return name, (
        "sharpness against the final train cost at the same point (log–log), one marker per network, colour: "
        "activation, marker: batch size, one panel per hidden layers: networks of equal cost compared; networks "
        f"at chance or diverged, and those without a positive value, left out ({_excluded(excluded)})."
    )


def _plot_sharpness_vs_batch(grid: _Grid, plotted: list[dict]) -> tuple[str, str]:
    """sharpness_vs_batch.png: sharpness against batch size, a panel per (hidden layers, η), both activations."""
    lrs = sorted({r["learning_rate"] for r in plotted})
    numeric = [b for b in grid.batches if b != "full"]
    x_of = {b: (b if b != "full" else 4 * max(numeric, default=1)) for b in grid.batches}
    fig, axes = grid.figure("", rows=grid.hiddens, cols=lrs, panel_title=lambda h, lr: f"hidden {_hidden_str(h)}, η {lr:g}")
    excluded = collections.Counter()
    for (h, lr, *_), rs in _grouped(plotted, ["hidden", "learning_rate", "activation", *grid.extras]).items():
        rs = sorted(rs, key=lambda r: _batch_order(r["batch_size"]))
        xs_nets = [(x_of[r["batch_size"]], _sharpness_nets(r["_nets"], excluded)) for r in rs]
        _draw_sharpness_line(grid, axes[grid.hiddens.index(h)][lrs.index(lr)], xs_nets, _line_key(rs[0], grid.extras), excluded)
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([x_of[b] for b in grid.batches], [str(b) for b in grid.batches])
        ax.minorticks_off()
    fig.suptitle(f"sharpness against batch size at each η; {_excluded(excluded)}", fontsize=9)
    name = grid.save(fig, axes, "sharpness_vs_batch.png", "batch size", "sharpness")
    return name, (
        "sharpness against batch size (full: the whole training split) at each η and hidden layers, both "
        "activations, one dot per seed and the median; networks at chance or diverged left out "
        f"({_excluded(excluded)})."
    )


def _curves(jobs: list[dict], extras: list[str], split: str) -> dict:
    """(line key, hidden, batch, lr) → `split` accuracy array (epochs × networks), diverged networks as NaN."""
    out: dict[tuple, list] = {}
    for j in jobs:
        if j["status"] != "ok" or not j["metrics"]:
            continue
        k = _line_key(_settings(j, extras), extras)
        acc = np.array([rec.get(f"{split}_accuracy", []) for rec in j["metrics"]], dtype=float)
        if acc.ndim != 2 or acc.shape[1] != len(j["models"]):
            continue
        div = np.array([rec.get("diverged", [False] * acc.shape[1]) for rec in j["metrics"]], dtype=bool)
        acc[div] = np.nan
        for g, m in enumerate(j["models"]):
            out.setdefault((k, j["hidden"], j["batch_size"], float(m["learning_rate"])), []).append(acc[:, g])
    return {key: np.stack(cols, axis=1) for key, cols in out.items() if len({len(c) for c in cols}) == 1}
