"""Check the minima `python -m mlpjax.landscape critical` found, without JAX: NumPy float64 all the way.

    python experiments/critical_points/verify_independent.py RUN CRITICAL_DIR [--examples 2000]

For a run of one hidden layer of sigmoid units under the quadratic cost (e.g. `'model.hidden=[8]'`) and the
critical.json / params_critical/ that `critical` wrote from it, recomputes at each network's end point:
‖∇f‖ by hand-written backpropagation, and the Hessian's smallest eigenvalue from a Hessian built by
central differences of that gradient (h = 1e-5: truncation error ~h²·f''' ≈ 1e-10, rounding ~1e-16/h ≈
1e-11), then prints them beside critical.json's numbers. The data are the run's first N training images,
read from the IDX files in $MNIST_IDX_DIR (no tfds), as float32 pixels as the run saw them (uint8/255).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os

import numpy as np


def read_idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = np.frombuffer(raw[4 : 4 + 4 * ndim], ">u4")
    return np.frombuffer(raw[4 + 4 * ndim :], np.uint8).reshape(dims)


def load_params(path: str, g: int) -> list:
    """Network g of params_critical/, read with orbax (the only library call besides NumPy)."""
    import jax

    from mlpjax import checkpoint

    with jax.enable_x64(True):
        stacked = checkpoint.load_params(path)
        return [(np.asarray(W[g], np.float64), np.asarray(b[g], np.float64)) for W, b in stacked]


def grad(theta, shapes, x, y, l2):
    """∇ of mean Σ(σ(W2 σ(W1 x + b1) + b2) − y)² + (l2/2)‖θ‖², θ = [W1, b1, W2, b2] flattened."""
    (o1, i1), (o2, i2) = shapes
    W1 = theta[: o1 * i1].reshape(o1, i1)
    b1 = theta[o1 * i1 : o1 * i1 + o1]
    rest = theta[o1 * i1 + o1 :]
    W2, b2 = rest[: o2 * i2].reshape(o2, i2), rest[o2 * i2 :]
    a1 = 1 / (1 + np.exp(-(x @ W1.T + b1)))
    a2 = 1 / (1 + np.exp(-(a1 @ W2.T + b2)))
    d2 = 2 * (a2 - y) * a2 * (1 - a2) / x.shape[0]
    d1 = (d2 @ W2) * a1 * (1 - a1)
    return np.concatenate([(d1.T @ x).ravel(), d1.sum(0), (d2.T @ a1).ravel(), d2.sum(0)]) + l2 * theta


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run")
    p.add_argument("critical_dir")
    p.add_argument("--examples", type=int, default=2000)
    args = p.parse_args()
    summary = json.load(open(os.path.join(args.run, "summary.json")))
    result = json.load(open(os.path.join(args.critical_dir, "critical.json")))
    sizes, l2 = summary["sizes"], float(summary.get("l2") or 0.0)
    assert len(sizes) == 3 and summary["activation"] == "sigmoid" and summary["cost"] == "quadratic", (
        "one sigmoid hidden layer, quadratic cost"
    )
    idx = os.environ["MNIST_IDX_DIR"]
    # The pixels as the run saw them: uint8 / 255 in float32 (mlpjax.data), then float64 for the arithmetic.
    pixels = read_idx(os.path.join(idx, "train-images-idx3-ubyte.gz"))[: args.examples].reshape(args.examples, -1)
    x = (pixels.astype(np.float32) / np.float32(255)).astype(np.float64)
    y = np.eye(10)[read_idx(os.path.join(idx, "train-labels-idx1-ubyte.gz"))[: args.examples]]
    shapes = [(sizes[1], sizes[0]), (sizes[2], sizes[1])]
    print("network  verdict  |grad f| (critical.json)  |grad f| (NumPy)  lambda_min (critical.json)  lambda_min (NumPy, differences)")
    for e in result["networks"]:
        params = load_params(os.path.join(args.critical_dir, "params_critical"), e["network"])
        theta = np.concatenate([np.concatenate([W.ravel(), b.ravel()]) for W, b in params])
        g = np.linalg.norm(grad(theta, shapes, x, y, l2))
        lam = float("nan")
        if e["verdict"] == "minimum":
            h, P = 1e-5, theta.size
            H = np.empty((P, P))
            for i in range(P):
                step = np.zeros(P)
                step[i] = h
                H[i] = (grad(theta + step, shapes, x, y, l2) - grad(theta - step, shapes, x, y, l2)) / (2 * h)
            lam = np.linalg.eigvalsh(0.5 * (H + H.T))[0]
        print(f"{e['network']:>7}  {e['verdict']}  {e['grad_norm']:.3e}  {g:.3e}  {e['lambda_min']:.6e}  {lam:.6e}", flush=True)


if __name__ == "__main__":
    main()
