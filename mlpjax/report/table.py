"""One row per configuration (`aggregate`: pandas groupby over the networks), the choice on validation,
and report.csv / networks.csv / differences.csv."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pandas as pd

from mlpjax import config, model
from mlpjax.report.jobs import (
    DIFFERENCES,
    KIND_COLUMNS,
    MINIMA_ORDER,
    MNIST_SIZES,
    NETWORK_NUMBERS,
    OWN_COLUMNS,
    PAIRED,
    POINT_KEYS,
    WHEN,
    _alive,
    _finite,
    network_record,
    selection_split,
)

# --------------------------------------------------------------------------- aggregating


@dataclasses.dataclass
class Sweep:
    """Everything the report writes from: the jobs, one row per configuration (with its networks
    in `row["_nets"]`), the columns the sweep needs, and the split every choice is made on."""

    jobs: list[dict]
    rows: list[dict]
    extras: list[str]  # other settings that differ between jobs
    minima_cols: list[str]  # numeric minima keys (report.csv)
    minima_keys: list[str]  # every minima key (networks.csv)
    split: str  # "validation" or "test"
    has_validation: bool
    stationary: bool  # some network has a checked stationary point

    @property
    def nets(self) -> list[dict]:
        return [n for r in self.rows for n in r["_nets"]]


def _extras(jobs: list[dict]) -> list[str]:
    """Settings besides the own columns that differ between jobs: more columns of the table."""
    keys = set().union(*(j["config"] for j in jobs)) - OWN_COLUMNS - set(config.NOT_CONFIGURATION)
    varied = []
    for k in sorted(keys):
        values = {json.dumps(j["config"].get(k), sort_keys=True) for j in jobs if j["config"]}
        if len(values) > 1:
            varied.append(k)
    return varied


def _fmt_value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(map(str, v)) + "]"
    return str(v)


def _param_count(hidden, sizes) -> int:
    """Weights and biases of a network with these hidden layers, and `sizes`' first and last size."""
    return model.count_for_sizes([sizes[0], *(hidden or ()), sizes[-1]])


def aggregate(jobs: list[dict]) -> Sweep:
    """One row per configuration, sorted, and what the report needs to know about the sweep."""
    extras = _extras(jobs)
    configurations = _configurations(jobs, extras)
    nets = [n for g in configurations for n in g["nets"]]
    minima_keys = _minima_keys(jobs)
    # report.csv's means: of the numeric keys, but not of seed_barrier_to (a seed).
    minima_cols = [k for k in minima_keys if k != "seed_barrier_to" and any(_finite(n.get(k)) for n in nets)]
    split = selection_split(nets)
    # A failed job left no sizes: its configuration's networks have those of the sweep's others.
    sweep_sizes = next((j["sizes"] for j in jobs if j.get("sizes")), MNIST_SIZES)
    by_config = configuration_statistics(network_frame(configurations), minima_cols)
    rows = [_row(c, by_config.loc[i] if i in by_config.index else None, sweep_sizes, split) for i, c in enumerate(configurations)]
    rows.sort(key=lambda r: _row_order(r, extras))
    return Sweep(
        jobs,
        rows,
        extras,
        minima_cols,
        minima_keys,
        split,
        has_validation=any(_finite(n.get("validation_accuracy")) for n in nets),
        stationary=any(f"{w}_kind" in n for n in nets for w in WHEN),
    )


def _settings(job: dict, extras: list[str]) -> dict:
    """A job's settings: activation, hidden, batch size and the `extras` (as strings)."""
    return {"activation": job["activation"], "hidden": job["hidden"], "batch_size": job["batch_size"]} | {
        k: _fmt_value(job["config"].get(k)) for k in extras
    }


def _configurations(jobs: list[dict], extras: list[str]) -> list[dict]:
    """The networks of the jobs, and the failed jobs, per configuration, in the order first met.

    A configuration is its settings (the own columns and `extras`) and a learning rate; it
    holds `nets` (`network_record`s), `jobs` (names of the jobs they came from),
    `failed` (failed jobs, once per learning rate they were to train) and `sizes` (or None).
    """
    groups: dict[tuple, dict] = {}

    def group(settings: dict, lr: float | None, job: dict) -> dict:
        empty = {"learning_rate": lr, "nets": [], "jobs": [], "failed": [], "sizes": None}
        g = groups.setdefault((*settings.values(), lr), settings | empty)
        g["sizes"] = g["sizes"] or job.get("sizes")
        return g

    for j in jobs:
        settings = _settings(j, extras)
        if j["status"] != "ok":
            for lr in j["learning_rates"] or [None]:
                group(settings, lr, j)["failed"].append(j)
            continue
        for m in j["models"]:
            g = group(settings, float(m["learning_rate"]), j)
            g["nets"].append(network_record(j, m, settings))
            if j["name"] not in g["jobs"]:
                g["jobs"].append(j["name"])
    return list(groups.values())


def _minima_keys(jobs: list[dict]) -> list[str]:
    """Every `minima` key of any network: those of MINIMA_ORDER in its order, then the rest sorted."""
    keys = {k for j in jobs if j["status"] == "ok" for m in j["models"] if isinstance(m.get("minima"), dict) for k in m["minima"]}
    return [k for k in MINIMA_ORDER if k in keys] + sorted(keys - set(MINIMA_ORDER))


def network_frame(configurations: list[dict]) -> pd.DataFrame:
    """One row per network (its `network_record`), `_config` the index of its configuration."""
    return pd.DataFrame.from_records([n | {"_config": i} for i, c in enumerate(configurations) for n in c["nets"]])


# report.csv's statistics over a configuration's networks that did not diverge: (column, network key, how).
STATISTICS = (
    ("val_acc_mean", "validation_accuracy", "mean"),
    ("val_acc_std", "validation_accuracy", "std"),
    ("test_acc_mean", "test_accuracy", "mean"),
    ("test_acc_std", "test_accuracy", "std"),
    ("test_acc_min", "test_accuracy", "min"),
    ("test_acc_max", "test_accuracy", "max"),
    ("train_cost_mean", "train_cost", "mean"),
    ("train_cost_std", "train_cost", "std"),
    *((f"{k}_{when}_median", f"{when}_{k}", "median") for when in WHEN for k in (*POINT_KEYS, "lambda_ratio")),
)


def configuration_statistics(frame: pd.DataFrame, minima_cols: list[str]) -> pd.DataFrame:
    """Per configuration (index `_config`), over its networks that did not diverge and only their finite
    values: the STATISTICS columns and the mean of each of `minima_cols`. The sample std (ddof 1) of one
    network is 0; a statistic of no value is NaN."""
    if frame.empty:
        return pd.DataFrame()
    alive = frame[~frame["diverged"].astype(bool)].copy()
    for when in WHEN:  # λ_min/λ_max where λ_max > 0
        lo, hi = _numbers(alive, f"{when}_lambda_min"), _numbers(alive, f"{when}_lambda_max")
        alive[f"{when}_lambda_ratio"] = (lo / hi).where(hi > 0)
    keys = list(dict.fromkeys([key for _, key, _ in STATISTICS] + minima_cols))
    values = pd.DataFrame({k: _numbers(alive, k) for k in keys}, index=alive.index)
    grouped = values.groupby(alive["_config"])
    out = pd.DataFrame(index=grouped.size().index)
    for col, key, how in STATISTICS:
        out[col] = grouped[key].agg(how)
        if how == "std":
            out[col] = out[col].where(grouped[key].count() != 1, 0.0)
    for k in minima_cols:
        out[k] = grouped[k].mean()
    return out


def _numbers(frame: pd.DataFrame, key: str) -> pd.Series:
    """`frame[key]` as floats, NaN where missing, not a number, a bool or not finite."""
    if key not in frame:
        return pd.Series(math.nan, index=frame.index, dtype=float)
    col = frame[key].map(lambda v: float(v) if _finite(v) else math.nan)
    return col.astype(float)


def _row(g: dict, stats: pd.Series | None, sweep_sizes, split: str) -> dict:
    """One configuration's line of the table: its settings, statistics over its networks (`stats`, a row of
    `configuration_statistics`; None when none survived), its status."""
    nets = g["nets"]
    alive = _alive(nets)
    n_diverged = len(nets) - len(alive)
    row = {k: v for k, v in g.items() if k not in ("nets", "jobs", "failed", "sizes")}
    row["seeds"] = len(nets)
    row |= {col: float(stats[col]) if stats is not None and col in stats else math.nan for col, _, _ in STATISTICS}
    row |= _best_and_worst(alive, split)
    row |= {
        "diverged": n_diverged,
        "diverged_frac": n_diverged / len(nets) if nets else math.nan,
        "chance_frac": sum(n["at_chance"] for n in nets) / len(nets) if nets else math.nan,
        "status": _status(nets, alive, g["failed"]),
        "failed_networks": sum(len(f["models"]) if "models" in f else (f.get("seeds") or 0) for f in g["failed"]),
        "jobs": " ".join(g["jobs"] + [f["name"] for f in g["failed"]]),
        "error": " | ".join(f"{f['name']}: {f['reason']}" for f in g["failed"]),
    }
    row |= _kind_counts(nets)
    if stats is not None:
        row |= {k: float(stats[k]) for k in stats.index if k not in row}
    row["_nets"] = nets
    row["_params"] = math.inf if g["hidden"] is None else _param_count(g["hidden"], g["sizes"] or sweep_sizes)
    return row


def _best_and_worst(alive: list[dict], split: str) -> dict:
    """The seeds of the best and the worst network by `split` accuracy, with their validation and test accuracy."""
    key = f"{split}_accuracy"
    ranked = sorted((n for n in alive if _finite(n.get(key))), key=lambda n: -float(n[key]))
    out = {}
    for end, n in (("best", ranked[0] if ranked else {}), ("worst", ranked[-1] if ranked else {})):
        out[f"{end}_seed"] = n.get("seed")
        out[f"{end}_val_acc"] = float(n["validation_accuracy"]) if _finite(n.get("validation_accuracy")) else math.nan
        out[f"{end}_acc"] = float(n["test_accuracy"]) if _finite(n.get("test_accuracy")) else math.nan
    return out


def _kind_counts(nets: list[dict]) -> dict:
    """`checked_sgd`, `candidates_sgd`, `negative_curvature_sgd`, `descending_sgd` and the same `_polished`."""
    out = {}
    for when in WHEN:
        kinds = [n.get(f"{when}_kind") for n in nets]
        out[f"checked_{when}"] = sum(k is not None for k in kinds)
        out |= {f"{col}_{when}": kinds.count(k) for k, col in KIND_COLUMNS.items()}
    return out


def _status(nets: list[dict], alive: list[dict], failed: list[dict]) -> str:
    if not nets:
        return "failed"
    if not alive:
        return "diverged"
    return "partly failed" if failed else "ok"


def _row_order(r: dict, extras: list[str]) -> tuple:
    """Table order: activation, parameter count, hidden, batch size, extra settings, learning rate; unknowns last."""
    return (
        str(r["activation"]),
        r["_params"],
        str(r["hidden"]),
        _batch_order(r["batch_size"]),
        tuple(str(r.get(k)) for k in extras),
        math.inf if r["learning_rate"] is None else r["learning_rate"],
    )


def _batch_order(b: Any) -> float:
    return math.inf if b in ("full", None) else b


def select_best(rows: list[dict], split: str) -> dict | None:
    """The row with the best mean `split` accuracy over its seeds.

    A configuration in which a network diverged is chosen only when every one has such a
    network: its mean leaves the diverged networks out, which would flatter it.
    """
    col = "val_acc_mean" if split == "validation" else "test_acc_mean"
    scored = [r for r in rows if _finite(r.get(col))]
    clean = [r for r in scored if not r["diverged"]] or scored
    return max(clean, key=lambda r: r[col], default=None)


def _grouped(rows: list[dict], keys: list[str]) -> dict[tuple, list[dict]]:
    """The rows by their values of `keys`, in the order first met."""
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return out


def selected(sweep: Sweep) -> list[dict]:
    """Per (activation, hidden layers, extra settings): the configuration chosen on `sweep.split`."""
    groups = _grouped([r for r in sweep.rows if r["_nets"]], ["activation", "hidden", *sweep.extras])
    return [best for rs in groups.values() if (best := select_best(rs, sweep.split)) is not None]


# --------------------------------------------------------------------------- writing: CSV


def _hidden_str(h) -> str:
    return "?" if h is None else ("[" + ",".join(map(str, h)) + "]")


def _num(v: Any, fmt: str) -> str:
    return format(v, fmt) if _finite(v) else ""


def _csv_cell(col: str, v: Any) -> Any:
    if col == "hidden":
        return _hidden_str(v)
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else ""
    if v is None:
        return ""
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v)
    return v


def _write_csv(path: str, cols: list[str], records: list[dict]) -> None:
    """One header, one line per record (a pandas DataFrame's `to_csv`); floats to 6 significant digits, NaN and None empty."""
    frame = pd.DataFrame([[_csv_cell(c, r.get(c)) for c in cols] for r in records], columns=cols, dtype=object)
    frame.to_csv(path, index=False, lineterminator="\r\n")


def _settings_columns(sweep: Sweep) -> list[str]:
    return ["activation", "hidden", "batch_size", *sweep.extras, "learning_rate"]


def report_columns(sweep: Sweep) -> list[str]:
    """report.csv's columns: validation, stationary and minima ones only where the sweep has them."""
    val = ["val_acc_mean", "val_acc_std"] if sweep.has_validation else []
    best = (
        ["best_seed", "best_val_acc", "best_acc", "worst_seed", "worst_val_acc", "worst_acc"]
        if sweep.has_validation
        else ["best_seed", "best_acc", "worst_seed", "worst_acc"]
    )
    stationary = []
    if sweep.stationary:
        for when in WHEN:
            stationary += [
                f"checked_{when}",
                *[f"{c}_{when}" for c in KIND_COLUMNS.values()],
                *[f"{k}_{when}_median" for k in (*POINT_KEYS, "lambda_ratio")],
            ]
    return [
        *_settings_columns(sweep),
        "seeds",
        "selected_on",
        *val,
        "test_acc_mean",
        "test_acc_std",
        "test_acc_min",
        "test_acc_max",
        "train_cost_mean",
        "train_cost_std",
        *best,
        "diverged",
        "diverged_frac",
        "chance_frac",
        *stationary,
        *sweep.minima_cols,
        "status",
        "failed_networks",
        "jobs",
        "error",
    ]


def write_report_csv(path: str, sweep: Sweep) -> None:
    _write_csv(path, report_columns(sweep), [r | {"selected_on": sweep.split} for r in sweep.rows])


def network_columns(sweep: Sweep) -> list[str]:
    """networks.csv's columns: settings, seed, summary numbers, at_chance, the stationary points, the minima keys."""
    numbers = [k for k in NETWORK_NUMBERS if sweep.has_validation or not k.startswith("validation")]
    # The stationary keys in the order summary.json has them, `kind` last.
    prefixes = tuple(f"{w}_" for w in WHEN)
    point_cols = list(dict.fromkeys(k for n in sweep.nets for k in n if k.startswith(prefixes) and not k.endswith("_kind")))
    ordered = [c for when in WHEN for c in [*(c for c in point_cols if c.startswith(f"{when}_")), f"{when}_kind"]] if point_cols else []
    return ["job", *_settings_columns(sweep), "seed", *numbers, "at_chance", *ordered, *sweep.minima_keys]


# differences.csv's statistics per quantity (`stats.paired_difference`): t-interval, p-values, BCa interval.
PAIRED_STATS = ("mean", "std", "ci_low", "ci_high", "n", "p_t", "p_signflip", "bca_low", "bca_high")


def difference_columns(sweep: Sweep, diffs: list[dict]) -> list[str]:
    present = [d[0] for d in DIFFERENCES if diffs and d[0] in diffs[0]]
    stats = (*PAIRED_STATS, "dropped", "seeds")
    return ["difference", "hidden", "batch_size", *sweep.extras, "learning_rate", *[f"{k}_{s}" for k in present for s in stats]]


def write_differences_csv(path: str, sweep: Sweep, diffs: list[dict]) -> None:
    """differences.csv: one line per setting, for each quantity the statistics of `paired_difference`."""
    records = []
    for d in diffs:
        rec = {"difference": " - ".join(PAIRED)} | {k: v for k, v in d.items() if not isinstance(v, dict)}
        for key, stats in ((k, v) for k, v in d.items() if isinstance(v, dict)):
            rec |= {f"{key}_{s}": stats[s] for s in (*PAIRED_STATS, "dropped")}
            rec[f"{key}_seeds"] = " ".join(str(s) for s, _, _ in stats["pairs"])
        records.append(rec)
    _write_csv(path, difference_columns(sweep, diffs), records)
