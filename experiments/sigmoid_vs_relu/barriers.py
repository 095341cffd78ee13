"""Barriers between verified minima, on disjoint pairs of seeds, from the committed critical points.

    MNIST_IDX_DIR=../shared/data/mnist python experiments/sigmoid_vs_relu/barriers.py [CONFIGURATION ...]

For each configuration folder of critical/ (default: every one with minima) and each disjoint pair of seeds
(0–1, 2–3, …) whose points are both verified minima: the cost f = C + (λ/2)‖θ‖² on the same 2,000 training
images (float64) along
- the straight line from A to B, and from A to B with B's hidden units permuted to match A's (weight matching,
  Ainsworth et al. 2023; Entezari et al. 2022);
- a quadratic Bézier curve from A to B (its middle point trained with Adam on mini-batches of 100, 2,000 steps,
  Garipov et al. 2018), unaligned and aligned.
Each barrier is the rise above the higher end (`landscape.paths.barrier`), given as is, relative to the
unaligned straight barrier, and relative to the mean of the two ends' f. Writes critical/CONFIGURATION/barriers.json
and prints one line per configuration.
"""

from __future__ import annotations

import glob
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from summarize_critical import critical_files  # this folder: a script's own folder is on sys.path

from mlpjax import checkpoint, cost, data
from mlpjax.landscape import geometry, paths

HERE = os.path.dirname(os.path.abspath(__file__))
N_TRAIN, TS = 2000, np.linspace(0.0, 1.0, 41)


def points(folder: str) -> list[tuple[dict, list]]:
    """(the critical.json entry, its parameters) of every network of a configuration, parts merged, by seed."""
    out = []
    for path in critical_files(folder):
        with open(path) as f:
            nets = json.load(f)["networks"]
        with jax.enable_x64(True):
            stacked = checkpoint.load_params(os.path.join(os.path.dirname(path), "params_critical"))
        out += [(n, checkpoint.network(stacked, g)) for g, n in enumerate(nets)]
    return sorted(out, key=lambda p: p[0]["seed"])


def pair_barriers(a, b, x, y, activation: str, l2: float, key) -> dict:
    b_aligned = geometry.aligned(a, b)
    f_end = 0.5 * float(cost.network_cost(a, x, y, activation, "quadratic", l2) + cost.network_cost(b, x, y, activation, "quadratic", l2))
    out = {"end_cost": f_end}
    loss = geometry.minibatch_cost(activation, "quadratic", 100, l2)
    for name, other in (("unaligned", b), ("aligned", b_aligned)):
        line = paths.interpolate(a, other, x, y, activation, "quadratic", TS, l2)
        theta, _ = geometry.fit_bezier(loss, a, other, key, (x, y))
        curve = geometry.curve_costs(a, theta, other, x, y, jnp.asarray(TS), activation, "quadratic", l2)
        out[f"straight_{name}"] = paths.barrier(np.asarray(line))
        out[f"curve_{name}"] = paths.barrier(np.asarray(curve))
    base = out["straight_unaligned"]
    for k in ("straight_unaligned", "straight_aligned", "curve_unaligned", "curve_aligned"):
        out[f"{k}_rel_unaligned"] = out[k] / base if base > 0 else float("nan")
        out[f"{k}_rel_end"] = out[k] / f_end
    return out


def main(argv=None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or [
        os.path.basename(os.path.dirname(d)) for d in sorted(glob.glob(os.path.join(HERE, "critical", "*", "")))
    ]
    mnist = data.load_mnist(os.environ.get("MNIST_IDX_DIR"), os.path.expanduser(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")))
    with jax.enable_x64(True):
        x = jnp.asarray(mnist.x_train_NxD[:N_TRAIN], jnp.float64)
        y = jax.nn.one_hot(jnp.asarray(mnist.labels_train_N[:N_TRAIN]), 10, dtype=jnp.float64)
        for name in names:
            folder = os.path.join(HERE, "critical", name)
            pts = {n["seed"]: (n, p) for n, p in points(folder)}
            pairs = [
                (s, s + 1)
                for s in sorted(pts)
                if s % 2 == 0 and s + 1 in pts and pts[s][0]["verdict"] == pts[s + 1][0]["verdict"] == "minimum"
            ]
            if not pairs:
                print(f"{name}: no pair of verified minima")
                continue
            rows = []
            for s, t in pairs:
                (na, a), (_, b) = pts[s], pts[t]
                r = pair_barriers(a, b, x, y, na["activation"], na["l2"], jax.random.key(s))
                rows.append({"seeds": [s, t]} | r)
            with open(os.path.join(folder, "barriers.json"), "w") as f:
                json.dump({"what": __doc__.split("\n\n")[0], "examples": N_TRAIN, "pairs": rows}, f, indent=1)
            med = lambda k, rows=rows: np.median([r[k] for r in rows])
            print(
                f"{name}: {len(rows)} pairs; median barrier straight {med('straight_unaligned'):.3g} (unaligned), "
                f"{med('straight_aligned'):.3g} (aligned, {med('straight_aligned_rel_unaligned'):.2f} of unaligned); "
                f"curve {med('curve_unaligned'):.3g} / {med('curve_aligned'):.3g}; end cost {med('end_cost'):.3g}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
