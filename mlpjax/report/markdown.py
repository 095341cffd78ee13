"""report.md: the selection on validation, the paired differences, the float32 end-point checks, the table."""

from __future__ import annotations

import os
import statistics

from mlpjax.report.jobs import CHANCE, DIFFERENCES, KIND_COLUMNS, MD_MINIMA, WHEN, _finite
from mlpjax.report.stats import METHODS, MIN_PAIRS_FINDING
from mlpjax.report.table import Sweep, _hidden_str, _num, selected

# --------------------------------------------------------------------------- writing: markdown


def _lr_str(lr) -> str:
    return "?" if lr is None else f"{lr:g}"


def _md_table(head: list[str], lines: list[list[str]]) -> str:
    return "\n".join(
        ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|", *("| " + " | ".join(cells) + " |" for cells in lines)]
    )


def _pm(mean: float, std: float, scale: float, fmt: str) -> str:
    return f"{scale * mean:{fmt}} ± {scale * std:{fmt}}" if _finite(mean) else "—"


def _settings_cells(r: dict, extras: list[str], batch: bool = True, lr: bool = True) -> list[str]:
    cells = [str(r["activation"] or "?"), _hidden_str(r["hidden"])]
    cells += [str(r["batch_size"] if r["batch_size"] is not None else "?")] if batch else []
    return cells + [str(r.get(k)) for k in extras] + ([_lr_str(r["learning_rate"])] if lr else [])


def _seed_cell(r: dict, end: str, split: str) -> str:
    acc = r[f"{end}_val_acc" if split == "validation" else f"{end}_acc"]
    return f"{r[f'{end}_seed']} ({100 * acc:.2f}%)" if r[f"{end}_seed"] is not None and _finite(acc) else "—"


def markdown_table(sweep: Sweep) -> str:
    """Every configuration: report.md's main table (also printed)."""
    md_minima = [k for k in sweep.minima_cols if k in MD_MINIMA]
    split_name = "val" if sweep.split == "validation" else "test"
    head = [
        "activation",
        "hidden",
        "batch",
        *sweep.extras,
        "lr",
        "seeds",
        *(["val acc % (mean ± std)"] if sweep.has_validation else []),
        "test acc % (mean ± std)",
        "train cost (mean ± std)",
        f"best seed ({split_name})",
        f"worst seed ({split_name})",
        "diverged",
        "at chance",
        *(["candidates (polished)"] if sweep.stationary else []),
        *[MD_MINIMA[k] for k in md_minima],
        "status",
    ]
    return _md_table(head, [_table_cells(r, sweep, md_minima) for r in sweep.rows])


def _table_cells(r: dict, sweep: Sweep, md_minima: list[str]) -> list[str]:
    status = r["status"].upper() if r["status"] != "ok" else "ok"
    if r["failed_networks"] and r["status"] != "failed":  # the same configuration also ran in a job that failed
        status += f" (+{r['failed_networks']} in failed jobs)"
    if r["status"] == "failed":  # a dash in every column between seeds and status
        seeds = f"— ({r['failed_networks']} in failed jobs)" if r["failed_networks"] else "—"
        return [*_settings_cells(r, sweep.extras), seeds, *["—"] * (6 + sweep.has_validation + sweep.stationary + len(md_minima)), status]
    val = [_pm(r["val_acc_mean"], r["val_acc_std"], 100, ".2f")] if sweep.has_validation else []
    at_min = [f"{r['candidates_polished']}/{r['checked_polished']}"] if sweep.stationary else []
    return [
        *_settings_cells(r, sweep.extras),
        str(r["seeds"]),
        *val,
        _pm(r["test_acc_mean"], r["test_acc_std"], 100, ".2f").replace("—", "diverged"),
        _pm(r["train_cost_mean"], r["train_cost_std"], 1, ".4f").replace("—", "diverged"),
        _seed_cell(r, "best", sweep.split),
        _seed_cell(r, "worst", sweep.split),
        f"{r['diverged']}/{r['seeds']}",
        f"{round(r['chance_frac'] * r['seeds'])}/{r['seeds']}",
        *at_min,
        *[_num(r.get(k), ".3g") for k in md_minima],
        status,
    ]


def selection_section(sweep: Sweep) -> list[str]:
    """'Selected on validation': per (activation, hidden), the best (batch, η) on validation, then its test accuracy."""
    chosen = selected(sweep)
    if not chosen:
        return []
    on_val = sweep.split == "validation"
    title = "## Selected on validation" if on_val else "## Selected on test (no validation split: chosen on test)"
    text = (
        "For each activation and hidden layers, the configuration (batch, η) with the best mean validation accuracy over its "
        "seeds; the test set played no part in the choice, and is read only here, for the chosen one."
        if on_val
        else "The jobs held out no validation images (`data.validation=0`): "
        "each configuration below is the best on the test set itself, so its test accuracy is optimistic."
    )
    text += (
        " Mean ± sample std over the networks that did not diverge; a configuration where a network diverged is chosen "
        "only when every one has one."
    )
    head = [
        "activation",
        "hidden",
        *sweep.extras,
        "batch, η",
        "seeds (not diverged)",
        *(["validation acc %"] if on_val else []),
        "test acc % (min–max)",
        "train cost",
        *(["candidates (polished)"] if sweep.stationary else []),
    ]
    lines = []
    for r in chosen:
        test = f"{_pm(r['test_acc_mean'], r['test_acc_std'], 100, '.2f')} ({100 * r['test_acc_min']:.2f}–{100 * r['test_acc_max']:.2f})"
        lines.append(
            [
                *_settings_cells(r, sweep.extras, batch=False, lr=False),
                f"{r['batch_size']}, {_lr_str(r['learning_rate'])}",
                f"{r['seeds'] - r['diverged']}/{r['seeds']}",
                *([_pm(r["val_acc_mean"], r["val_acc_std"], 100, ".2f")] if on_val else []),
                test,
                _pm(r["train_cost_mean"], r["train_cost_std"], 1, ".4f"),
                *([f"{r['candidates_polished']}/{r['checked_polished']}"] if sweep.stationary else []),
            ]
        )
    return [title, "", text, "", _md_table(head, lines), ""]


def _interval(d: dict, scale: float, fmt: str) -> str:
    """`mean [t-interval] (n pairs, k dropped; sign-flip p)` of a paired difference; `n < 6: not a finding` below 6 pairs."""
    dropped = f", {d['dropped']} dropped" if d["dropped"] else ""
    pairs = f"{d['n']} pair{'' if d['n'] == 1 else 's'}{dropped}"
    if d["n"] == 0:
        return f"— ({pairs})"
    ci = f" [{scale * d['ci_low']:{fmt}}, {scale * d['ci_high']:{fmt}}]" if _finite(d["ci_low"]) else ""
    p = f"; p {d['p_signflip']:.2g}" if _finite(d.get("p_signflip")) else ""
    few = "" if d.get("finding") else f"; n < {MIN_PAIRS_FINDING}: not a finding"
    return f"{scale * d['mean']:{fmt}}{ci} ({pairs}{p}{few})"


def differences_section(sweep: Sweep, diffs: list[dict]) -> list[str]:
    """'Sigmoid − ReLU at equal settings': the paired differences, one line per setting."""
    if not diffs:
        return []
    present = [d for d in DIFFERENCES if d[0] in diffs[0]]
    head = ["hidden", "batch", *sweep.extras, "η", *[h for _, h, _, _, _ in present]]
    lines = [
        [
            _hidden_str(d["hidden"]),
            str(d["batch_size"]),
            *[str(d.get(k)) for k in sweep.extras],
            _lr_str(d["learning_rate"]),
            *[_interval(d[key], scale, fmt) for key, _, scale, fmt, _ in present],
        ]
        for d in diffs
    ]
    text = (
        "Sigmoid minus ReLU, each pair of networks trained with the same seed (the same data order and the same draw of "
        f"the initialization) at the same hidden layers, batch size and η: {METHODS} (pairs used; p). Fewer than "
        f"{MIN_PAIRS_FINDING} pairs are marked: with them the exact sign-flip p cannot fall below 0.05 (0.0625 at 5 pairs), so "
        "no difference is a finding. Pairs of one sweep at different η share no network, but the same seeds recur across settings. "
        "A pair is dropped when either network diverged "
        "or has no value, and for accuracy, sharpness and seed barrier also when either is at chance "
        f"(test accuracy < {100 * CHANCE:.0f}%): the count is given. Accuracies in percentage points; sharpness at the "
        "polished point where the jobs polished. Also in differences.csv."
    )
    return ["## Sigmoid − ReLU at equal settings", "", text, "", _md_table(head, lines), ""]


def minima_section(sweep: Sweep) -> list[str]:
    """'End points checked in float32': per configuration, the kinds of points after SGD and after the polish."""
    if not sweep.stationary:
        return []
    tols = sorted({j["post"].get("polish_tol") for j in sweep.jobs if j["status"] == "ok" and _finite(j["post"].get("polish_tol"))})
    head = ["activation", "hidden", "batch", *sweep.extras, "η", "checked"]
    for when in ("SGD", "polished"):
        head += [f"{when}: cand. / neg. / desc.", f"{when}: median ‖∇C‖", f"{when}: median λ_min/λ_max"]
    lines = []
    for r in (r for r in sweep.rows if r["checked_sgd"] or r["checked_polished"]):
        cells = [*_settings_cells(r, sweep.extras), str(max(r["checked_sgd"], r["checked_polished"]))]
        for when in WHEN:
            cells += [
                " / ".join(str(r[f"{c}_{when}"]) for c in KIND_COLUMNS.values()),
                _num(r[f"grad_norm_{when}_median"], ".2g"),
                _num(r[f"lambda_ratio_{when}_median"], ".2g"),
            ]
        lines.append(cells)
    text = (
        "Every network that did not diverge, checked at the end of SGD and again after the full-batch L-BFGS polish "
        f"(`minima.kind`, float32, tol = `train.polish_tol` = {', '.join(f'{t:g}' for t in tols) or '?'}): a *candidate* has "
        "‖∇C‖ ≤ tol and a smallest Ritz value (30 Lanczos steps) ≥ −tol·λ_max, *negative curvature* ‖∇C‖ ≤ tol with more "
        "negative curvature, *descending* ‖∇C‖ > tol. None of these is a verified minimum or saddle: that takes "
        "`python -m mlpjax.landscape critical` (float64, ‖∇C‖ ≤ 1e-10, the whole spectrum). ‖∇C‖ and the "
        "Hessian's extreme eigenvalues are of the cost over the whole training split; medians over the checked networks. "
        "report.csv has the medians of λ_min and λ_max too; networks.csv every network's numbers."
    )
    return ["## End points checked in float32 (not verified minima)", "", text, "", _md_table(head, lines), ""]


def _intro(root: str, sweep: Sweep) -> list[str]:
    jobs = sweep.jobs
    ok = [j for j in jobs if j["status"] == "ok"]
    nets = sweep.nets
    n_div = sum(n["diverged"] for n in nets)
    n_chance = sum(n["at_chance"] and not n["diverged"] for n in nets)
    epochs = sorted({j["epochs"] for j in ok if j.get("epochs") is not None})
    walls = [j["wall_seconds"] for j in ok if _finite(j.get("wall_seconds"))]
    on = "validation accuracy" if sweep.split == "validation" else "test accuracy (no validation split: chosen on test)"
    return [
        f"# Sweep report: {os.path.basename(os.path.normpath(os.path.abspath(root)))}",  # no machine path: the report travels with its folder
        "",
        f"{len(jobs)} jobs: {len(ok)} finished, {len(jobs) - len(ok)} FAILED. {len(nets)} networks trained "
        f"({', '.join(map(str, epochs)) or '?'} epochs): {n_div} diverged, {n_chance} more ended at chance "
        f"(test accuracy < {100 * CHANCE:.0f}%)."
        + (f" Job wall time {sum(walls):.0f} s in all, {statistics.median(walls):.1f} s median." if walls else ""),
        "",
        f"Every choice below (best seed, best configuration, the η of the learning curves) is made on {on}.",
        "",
    ]


def _table_section(sweep: Sweep, table: str) -> list[str]:
    split = "validation" if sweep.split == "validation" else "test"
    out = [
        "## All configurations",
        "",
        "Per configuration: accuracies and final train cost are mean ± sample std over the networks that did not "
        "diverge (a diverged network keeps its last finite parameters, so its numbers are not a result); best/worst "
        f"seed by {split} accuracy; *diverged*: networks whose cost or parameter norm blew up; *at chance*: networks "
        f"(diverged included) below {100 * CHANCE:.0f}% test accuracy, i.e. that did not learn (at a large learning "
        "rate usually a collapse to all-zero outputs, cost 1.0).",
    ]
    if sweep.minima_cols:
        out += [
            "",
            "End-point columns (`landscape.analyze_group`, at SGD's end points, or the polished ones; mean over the "
            "surviving seeds; not verified minima): sharpness = top Hessian "
            "eigenvalue on a training subset (Lanczos); sharpness·η (GD is unstable above 2); λ_min = the smallest "
            "Ritz value (< 0: not a minimum); saturated/dead "
            "= fraction of hidden units stuck; init_barrier = cost rise along the straight path from the "
            "initialization; seed_barrier = rise above the line between this end point and the next seed's.",
        ]
    return out + ["", table, ""]


def _failed_section(jobs: list[dict]) -> list[str]:
    failed = [j for j in jobs if j["status"] == "failed"]
    if not failed:
        return []
    out = ["## Failed jobs", ""]
    for j in failed:
        out.append(f"- **{j['name']}** ({' '.join(j['overrides']) or 'no overrides recorded'}): {j['reason']}")
        out += [f"    - log: `{line}`" for line in j["log_tail"]]
    return out + [""]


def write_markdown(path: str, root: str, sweep: Sweep, table: str, diffs: list[dict], plots: list[tuple[str, str]]) -> None:
    out = _intro(root, sweep) + selection_section(sweep) + differences_section(sweep, diffs) + minima_section(sweep)
    out += _table_section(sweep, table) + _failed_section(sweep.jobs)
    if plots:
        out += ["## Plots", ""]
        for name, caption in plots:
            out += [f"- **[{name}]({name})**: {caption}", "", f"  ![{name}]({name})", ""]
    with open(path, "w") as f:
        f.write("\n".join(out))
