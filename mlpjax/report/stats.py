"""Paired sigmoid − ReLU differences by seed, with the intervals and tests of `scipy.stats`."""

from __future__ import annotations

import math

import numpy as np

from mlpjax.report.jobs import DIFFERENCES, PAIRED, _finite
from mlpjax.report.table import Sweep, _grouped

# --------------------------------------------------------------------------- paired differences


def paired_difference(a_by_seed: dict, b_by_seed: dict, n_boot: int = 10000, seed: int = 0) -> dict:
    """a − b over the seeds both have (finite values only): the same seed is the same data order
    and the same draw of the initialization scheme, so each pair differs only in what is compared.

    Returns `n` (pairs), `mean` and `std` (sample) of the differences, `ci_low`/`ci_high`: the 95%
    percentile bootstrap interval of the mean (`n_boot` resamples of the seeds with replacement,
    NumPy generator `seed`; NaN with fewer than 2 pairs), and `pairs`: [(seed, a, b), …].
    """
    seeds = sorted(s for s in a_by_seed.keys() & b_by_seed.keys() if _finite(a_by_seed[s]) and _finite(b_by_seed[s]))
    pairs = [(s, float(a_by_seed[s]), float(b_by_seed[s])) for s in seeds]
    d = np.array([a - b for _, a, b in pairs], dtype=float)
    out = {"n": len(d), "mean": math.nan, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan, "pairs": pairs}
    if len(d) == 0:
        return out
    out["mean"], out["std"] = float(d.mean()), float(d.std(ddof=1)) if len(d) > 1 else 0.0
    if len(d) > 1:
        means = d[np.random.default_rng(seed).integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
        out["ci_low"], out["ci_high"] = (float(v) for v in np.percentile(means, [2.5, 97.5]))
    return out


def _by_seed(nets: list[dict], key: str, drop_chance: bool) -> dict:
    """seed → value of `key` of the networks whose value is a result (not diverged; not at chance if asked)."""
    return {
        n["seed"]: float(n[key])
        for n in nets
        if n["seed"] is not None and not n["diverged"] and not (drop_chance and n["at_chance"]) and _finite(n.get(key))
    }


def differences(sweep: Sweep) -> list[dict]:
    """sigmoid − ReLU at every (hidden, batch, extras, η) both trained: per quantity of DIFFERENCES
    present in the sweep, `paired_difference` and `dropped` (seeds both have, minus pairs used)."""
    a, b = PAIRED
    keys = ["hidden", "batch_size", *sweep.extras, "learning_rate"]
    present = [d for d in DIFFERENCES if any(_finite(n.get(d[0])) for n in sweep.nets)]
    out = []
    for setting, rs in _grouped([r for r in sweep.rows if r["_nets"]], keys).items():
        by_act = {r["activation"]: r["_nets"] for r in rs}
        if a not in by_act or b not in by_act:
            continue
        both = {n["seed"] for n in by_act[a]} & {n["seed"] for n in by_act[b]} - {None}
        entry = dict(zip(keys, setting))
        for key, _, _, _, drop_chance in present:
            d = paired_difference(_by_seed(by_act[a], key, drop_chance), _by_seed(by_act[b], key, drop_chance))
            entry[key] = d | {"dropped": len(both) - d["n"]}
        out.append(entry)
    return out
