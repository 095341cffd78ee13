"""Paired sigmoid − ReLU differences by seed, with the intervals and tests of `scipy.stats`."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats

from mlpjax.report.jobs import DIFFERENCES, PAIRED, _finite
from mlpjax.report.table import Sweep, _grouped

# --------------------------------------------------------------------------- paired differences


# Methods, named in report.md: every interval and p-value comes from scipy.stats.
METHODS = (
    "mean difference [95% paired t-interval of the mean, scipy.stats.ttest_1samp], exact two-sided sign-flip "
    "permutation p of the mean (scipy.stats.permutation_test, every one of the 2^n sign patterns up to n = 16), "
    "and from n = 10 pairs the 95% BCa bootstrap interval (scipy.stats.bootstrap, 10,000 resamples) in differences.csv"
)
MIN_PAIRS_FINDING = 6  # the least n at which an exact two-sided sign-flip p can fall below 0.05 (2/2^6 = 0.031)
MIN_PAIRS_BCA = 10  # BCa's bias and acceleration from fewer pairs are too rough to report
EXACT_UP_TO = 16  # 2^16 sign patterns: exact; beyond, `n_boot` random ones


def paired_difference(a_by_seed: dict, b_by_seed: dict, n_boot: int = 10000, seed: int = 0) -> dict:
    """a − b over the seeds both have (finite values only): the same seed is the same data order
    and the same draw of the initialization scheme, so each pair differs only in what is compared.

    Returns `n` (pairs), `mean` and `std` (sample) of the differences, `pairs`: [(seed, a, b), …], and
    from `scipy.stats` (NaN where n is too small):
      ci_low, ci_high     the 95% paired t-interval of the mean (n ≥ 2)
      p_t                 the two-sided paired t-test's p (n ≥ 2)
      p_signflip          the two-sided sign-flip permutation p of the mean: exact (all 2^n sign
                          patterns) for n ≤ 16, else `n_boot` random ones (generator `seed`) (n ≥ 1)
      bca_low, bca_high   the 95% BCa bootstrap interval, `n_boot` resamples (n ≥ 10)
      finding             n ≥ 6: only then can the exact sign-flip p fall below 0.05 (at n = 5 its least value is 0.0625)
    """
    seeds = sorted(s for s in a_by_seed.keys() & b_by_seed.keys() if _finite(a_by_seed[s]) and _finite(b_by_seed[s]))
    pairs = [(s, float(a_by_seed[s]), float(b_by_seed[s])) for s in seeds]
    d = np.array([a - b for _, a, b in pairs], dtype=float)
    nan = math.nan
    out = {"n": len(d), "mean": nan, "std": nan, "ci_low": nan, "ci_high": nan, "p_t": nan, "p_signflip": nan}
    out |= {"bca_low": nan, "bca_high": nan, "finding": len(d) >= MIN_PAIRS_FINDING, "pairs": pairs}
    if len(d) == 0:
        return out
    out["mean"], out["std"] = float(d.mean()), float(d.std(ddof=1)) if len(d) > 1 else 0.0
    rng = np.random.default_rng(seed)
    if len(d) == 1 or np.all(d == 0):  # every sign pattern gives the same |mean|: p = 1, and t is undefined
        return out | {"p_signflip": 1.0}
    exact = len(d) <= EXACT_UP_TO
    flip = stats.permutation_test(
        (d,), np.mean, permutation_type="samples", n_resamples=np.inf if exact else n_boot, alternative="two-sided", rng=rng
    )
    out["p_signflip"] = float(flip.pvalue)
    if len(d) > 1 and out["std"] > 0:
        t = stats.ttest_1samp(d, 0.0)
        ci = t.confidence_interval(0.95)
        out |= {"ci_low": float(ci.low), "ci_high": float(ci.high), "p_t": float(t.pvalue)}
    if len(d) >= MIN_PAIRS_BCA:
        with warnings.catch_warnings():  # BCa warns on degenerate resamples; the NaN it returns says so
            warnings.simplefilter("ignore")
            bca = stats.bootstrap((d,), np.mean, n_resamples=n_boot, method="BCa", confidence_level=0.95, rng=rng)
        out["bca_low"], out["bca_high"] = float(bca.confidence_interval.low), float(bca.confidence_interval.high)
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
