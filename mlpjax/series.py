"""What the 3Blue1Brown videos show about a trained network, one command each.

    python -m mlpjax.series WHAT RUN_DIR [RUN_B] [--out DIR] [--network G]

  noise      10,000 uniform-noise images still get a confident digit; test digits beside them
  weights    each first-layer neuron's 784 weights as a 28x28 image (RUN_B: a second run beside it)
  gradients  |∂C/∂w| over every parameter on the training set, at initialization and at the end
  dream      gradient ascent on the input, for the image the network is surest is each digit
  all        all four

RUN_DIR is what `mlpjax.train` wrote (summary.json, params/, .hydra/config.yaml). Of a run
with several networks, `--network G` picks one (default: the best validation accuracy; the best
test accuracy for a run without a validation split). Each command writes WHAT.png and
WHAT.json into --out (default RUN_DIR/series) and prints its numbers. MNIST comes from the run's
data.idx_dir where that folder exists here, else $MNIST_IDX_DIR, prepared under the run's data.data_dir.
Mistakes end in one line on stderr and exit code 2.

The pure functions (`noise_confidence`, `first_layer_images`, `gradient_magnitudes`, `dream`)
take parameters and arrays and return numbers, so they work without any files.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlpjax import cli, model, outputs, rundir
from mlpjax import cost as cost_lib
from mlpjax.rundir import Run, RunError

WHATS = ("noise", "weights", "gradients", "dream")

_forward = jax.jit(model.forward, static_argnames=("activation", "output"))


def confidence(out_BxK: jax.Array, output: str) -> jax.Array:
    """The outputs as numbers in [0, 1]: sigmoid activations as they are, log-softmax as probabilities."""
    return out_BxK if output == "sigmoid" else jnp.exp(out_BxK)


# --------------------------------------------------------------------------- noise


def _distribution(conf_BxK: np.ndarray, bin_edges: np.ndarray) -> dict:
    top_B, pred_B = conf_BxK.max(axis=1), conf_BxK.argmax(axis=1)
    B, K = conf_BxK.shape
    counts, _ = np.histogram(top_B, bin_edges)  # the last bin includes 1.0
    return {
        "n": int(B),
        "top_fractions": (counts / B).tolist(),  # per bin of the top output; sums to 1
        "class_fractions": (np.bincount(pred_B, minlength=K) / B).tolist(),  # per predicted digit; sums to 1
        "mean_top": float(top_B.mean()),
        "median_top": float(np.median(top_B)),
        "above_half": float((top_B > 0.5).mean()),  # fraction whose top output exceeds 0.5
        "above_0.9": float((top_B > 0.9).mean()),
    }


def noise_confidence(
    params: model.Params,
    activation: str,
    output: str,
    key: jax.Array,
    n: int = 10_000,
    x_digits_NxD: np.ndarray | None = None,
    bins: int = 20,
) -> dict:
    """How sure the network is on `n` images of i.i.d. uniform [0, 1] pixels, and on `x_digits_NxD`.

    The top output is the largest of the `confidence` outputs. Returns `{"bin_edges": bins+1
    edges over [0, 1], "noise": dist, "digits": dist (only with x_digits_NxD)}`, where dist is
    `{"n", "top_fractions" (per bin), "class_fractions" (per predicted digit), "mean_top",
    "median_top", "above_half", "above_0.9"}`; both fraction lists sum to 1.
    """
    D = params[0][0].shape[1]
    bin_edges = np.linspace(0.0, 1.0, bins + 1)
    x_noise_NxD = jax.random.uniform(key, (n, D), jnp.float32)
    result = {"bin_edges": bin_edges.tolist()}
    sets = {"noise": x_noise_NxD} | ({} if x_digits_NxD is None else {"digits": jnp.asarray(x_digits_NxD)})
    for name, x_NxD in sets.items():
        conf_NxK = np.asarray(confidence(_forward(params, x_NxD, activation, output), output), np.float64)
        result[name] = _distribution(conf_NxK, bin_edges)
    return result


# --------------------------------------------------------------------------- weights


def first_layer_images(params: model.Params) -> np.ndarray:
    """Each first-layer neuron's incoming weights as a 28×28 image: `W_HxD` reshaped to (H, 28, 28).

    Pixel (r, c) of image h is the weight from input pixel 28·r + c (row-major, as MNIST stores it).
    """
    W_HxD = np.asarray(params[0][0])
    if W_HxD.shape[1] != 28 * 28:
        raise ValueError(f"the first layer has {W_HxD.shape[1]} inputs; images need 784 (28x28)")
    return W_HxD.reshape(-1, 28, 28)


def weight_stats(images_Hx28x28: np.ndarray) -> dict:
    """Mean |w| on the central 20×20 box (where MNIST centres its digits) and on the border around it.

    Border pixels are almost always 0, so their weights get almost no gradient and keep
    roughly their initial values.
    """
    center = np.zeros((28, 28), bool)
    center[4:24, 4:24] = True
    a = np.abs(images_Hx28x28)
    c, b = a[:, center].mean(), a[:, ~center].mean()
    return {"hidden": int(a.shape[0]), "center_mean_abs": float(c), "border_mean_abs": float(b), "max_abs": float(a.max())}


# --------------------------------------------------------------------------- gradients


@functools.partial(jax.jit, static_argnames=("activation", "cost"))
def _grad(params, x_NxD, y_NxK, activation, cost):
    return jax.grad(cost_lib.network_cost)(params, x_NxD, y_NxK, activation, cost)


def gradient_magnitudes(
    params: model.Params,
    x_NxD,
    y_NxK,
    activation: str = "sigmoid",
    cost: str = "quadratic",
    bins: int = 40,
    top_k: int = 10,
) -> dict:
    """`|∂C/∂w|` of every weight and bias, C the mean cost over `(x_NxD, y_NxK)`.

    Returns a dict of:
    `abs_grads_P` (float64, `ravel_pytree` order: W1, b1, W2, b2, …);
    `bin_edges`, `fractions`: a histogram over `bins` log-spaced bins spanning the nonzero
    values, as fractions of all P parameters; `zero_fraction` the rest (exactly 0, e.g. weights
    from always-black pixels), so both together sum to 1;
    `median`, `max`, `norm` (L2), `ratio_max_to_median` (inf when the median is 0);
    `per_param`: `[{"param": "W1", "mean", "median", "max"}, …]` per weight matrix and bias vector;
    `weights`, `biases`: `{"count", "mean", "median", "max", "zero"}` over all weight entries and all biases;
    `zeros`: why components are exactly 0: `blank_pixel` (W1 entries from pixels that are 0 in every
    example), `dead_unit` (parameters into or out of a hidden unit whose activation is 0 on every
    example: ReLU units that never fire), `other`;
    `top`: the `top_k` largest as `{"param", "index", "abs_grad"}`;
    `first_layer_sum_D`: `Σ_h |∂C/∂W1[h, d]|` over the first layer's neurons, one per input pixel.
    """
    grads = _grad(params, jnp.asarray(x_NxD), jnp.asarray(y_NxK), activation, cost)
    names, arrays = [], []
    for layer, (gW_OxI, gb_O) in enumerate(grads, start=1):
        names += [f"W{layer}", f"b{layer}"]
        arrays += [np.abs(np.asarray(gW_OxI, np.float64)), np.abs(np.asarray(gb_O, np.float64))]
    g_P = np.concatenate([a.ravel() for a in arrays])
    nonzero = g_P[g_P > 0]
    if nonzero.size:
        lo, hi = math.floor(math.log10(nonzero.min())), math.ceil(math.log10(nonzero.max()))
        bin_edges = np.logspace(lo, max(hi, lo + 1), bins + 1)
    else:
        bin_edges = np.logspace(-8, 0, bins + 1)
    counts, _ = np.histogram(nonzero, bin_edges)
    median = float(np.median(g_P))
    order = np.argsort(g_P)[::-1][:top_k]
    offsets = np.cumsum([0] + [a.size for a in arrays])
    top = []
    for flat in order:
        i = int(np.searchsorted(offsets, flat, side="right") - 1)
        index = np.unravel_index(flat - offsets[i], arrays[i].shape)
        top.append({"param": names[i], "index": [int(j) for j in index], "abs_grad": float(g_P[flat])})
    return {
        "abs_grads_P": g_P,
        "bin_edges": bin_edges,
        "fractions": counts / g_P.size,
        "zero_fraction": float((g_P == 0).mean()),
        "median": median,
        "max": float(g_P.max()),
        "norm": float(np.linalg.norm(g_P)),
        "ratio_max_to_median": float(g_P.max() / median) if median > 0 else math.inf,
        "per_param": [
            {"param": n, "mean": float(a.mean()), "median": float(np.median(a)), "max": float(a.max())} for n, a in zip(names, arrays)
        ],
        "weights": _magnitudes(np.concatenate([a.ravel() for a in arrays[0::2]])),
        "biases": _magnitudes(np.concatenate([a.ravel() for a in arrays[1::2]])),
        "zeros": _zero_reasons(params, np.asarray(x_NxD), arrays, activation),
        "top": top,
        "first_layer_sum_D": arrays[0].sum(axis=0),
    }


def _magnitudes(g: np.ndarray) -> dict:
    return {
        "count": int(g.size),
        "mean": float(g.mean()),
        "median": float(np.median(g)),
        "max": float(g.max()),
        "zero": int((g == 0).sum()),
    }


def _zero_reasons(params: model.Params, x_NxD: np.ndarray, abs_grads: list[np.ndarray], activation: str) -> dict:
    """How many gradient components are exactly 0, by cause; `abs_grads` = [|∂W1|, |∂b1|, |∂W2|, …]."""
    explained = [np.zeros(a.shape, bool) for a in abs_grads]
    explained[0] |= np.all(x_NxD == 0, axis=0)[None, :]  # W1[h, d] · x_d with x_d = 0 always
    blank = int((explained[0] & (abs_grads[0] == 0)).sum())
    hidden = jax.jit(model.hidden_activations, static_argnames="activation")(params, jnp.asarray(x_NxD), activation)
    for layer, a_NxH in enumerate(hidden):
        dead_H = np.asarray(jnp.all(a_NxH == 0, axis=0))
        explained[2 * layer] |= dead_H[:, None]  # the weights into a dead unit
        explained[2 * layer + 1] |= dead_H  # its bias
        explained[2 * layer + 2] |= dead_H[None, :]  # the weights out of it
    zero_explained = sum(int((e & (a == 0)).sum()) for e, a in zip(explained, abs_grads))
    zero = sum(int((a == 0).sum()) for a in abs_grads)
    return {"zero": zero, "blank_pixel": blank, "dead_unit": zero_explained - blank, "other": zero - zero_explained}


# --------------------------------------------------------------------------- dream


def _log_likelihood(params, x_BxD, y_BxK, activation, output):
    """log P(label | image) under the network's outputs, per image; shape (B,).

    Sigmoid outputs count as K independent yes/no answers: Σ_k y_k log ŷ_k + (1−y_k) log(1−ŷ_k),
    computed from the pre-activations z (log σ(z) = −softplus(−z)) so it stays finite and its
    gradient z-wise, y − σ(z), does not vanish when an output is saturated.
    """
    if output == "log_softmax":
        return jnp.sum(y_BxK * model.forward(params, x_BxD, activation, output), axis=-1)
    a_BxI = (model.hidden_activations(params, x_BxD, activation) or [x_BxD])[-1]
    W_KxI, b_K = params[-1]
    z_BxK = a_BxI @ W_KxI.T + b_K
    return -jnp.sum(y_BxK * jax.nn.softplus(-z_BxK) + (1 - y_BxK) * jax.nn.softplus(z_BxK), axis=-1)


@functools.partial(jax.jit, static_argnames=("activation", "output", "steps"))
def _dream(params, x0_BxD, targets_BxK, lr, activation, output, steps):
    # Images are independent, so the gradient of the sum is each image's own gradient.
    grad_fn = jax.grad(lambda x_BxD: jnp.sum(_log_likelihood(params, x_BxD, targets_BxK, activation, output)))

    # Adam, not plain steps: its per-pixel step is about `lr` whatever the gradient's scale,
    # which spans decades between a saturated sigmoid net and a ReLU net (where plain steps
    # that fit one overshoot into dead units, or crawl, in the other).
    opt = optax.adam(lr)

    def step(carry, _):
        x_BxD, state = carry
        updates, state = opt.update(jax.tree.map(jnp.negative, grad_fn(x_BxD)), state, x_BxD)
        # Projected: pixels stay in [0, 1], like MNIST's.
        return (jnp.clip(optax.apply_updates(x_BxD, updates), 0.0, 1.0), state), None

    (x_BxD, _), _ = jax.lax.scan(step, (x0_BxD, opt.init(x0_BxD)), None, length=steps)
    return x_BxD


def dream(
    params: model.Params,
    activation: str,
    output: str,
    digits=tuple(range(10)),
    steps: int = 300,
    lr: float = 0.03,
    key: jax.Array | None = None,
    noise_starts: int = 6,
) -> dict:
    """For each digit d, the image the network is surest is a d, by gradient ascent on the pixels.

    "Surest" means the largest log-likelihood of the label d (`_log_likelihood`): output d
    high and the others low. (The quadratic cost would do as a score, but through a
    saturated sigmoid output its gradient all but vanishes.) Each digit starts from a black
    image, a uniform gray 0.5 one and `noise_starts` uniform-noise ones (drawn with `key`,
    default `jax.random.key(0)`), takes `steps` Adam steps (size `lr`, in pixel units) up the
    log-likelihood, each followed by clipping the pixels to [0, 1], and keeps the best end:
    the ascent stalls in some starts (dead ReLUs, saturated sigmoids), rarely in all.
    Returns `{"digits": [d…], "images_BxD", "confidence_BxK"`: every output of each image as in
    `confidence`, `"target"`: output d of image d, `"target_start"`: output d of the start it
    came from, `"start"`: which start ("black", "gray", "noise i"), `"predicted"`: argmax digit}.
    """
    D = params[0][0].shape[1]
    K = params[-1][0].shape[0]
    key = jax.random.key(0) if key is None else key
    digits = [int(d) for d in np.atleast_1d(digits)]
    B = len(digits)
    starts_SxD = jnp.concatenate([jnp.zeros((1, D)), jnp.full((1, D), 0.5), jax.random.uniform(key, (noise_starts, D))]).astype(jnp.float32)
    start_names = ["black", "gray"] + [f"noise {i}" for i in range(noise_starts)]
    S = starts_SxD.shape[0]
    # Every (start, digit) pair as one row: row s·B + b is digit b from start s.
    x0_RxD = jnp.repeat(starts_SxD, B, axis=0)
    targets_RxK = jnp.tile(jax.nn.one_hot(jnp.array(digits), K), (S, 1))
    x_RxD = _dream(params, x0_RxD, targets_RxK, jnp.float32(lr), activation, output, steps)
    loglik_SxB = np.asarray(_log_likelihood(params, x_RxD, targets_RxK, activation, output)).reshape(S, B)
    best_B = np.argmax(loglik_SxB, axis=0)
    rows_B = best_B * B + np.arange(B)
    x_BxD = x_RxD[rows_B]
    conf_BxK = np.asarray(confidence(_forward(params, x_BxD, activation, output), output), np.float64)
    conf0_SxK = np.asarray(confidence(_forward(params, starts_SxD, activation, output), output), np.float64)
    return {
        "digits": digits,
        "images_BxD": np.asarray(x_BxD),
        "confidence_BxK": conf_BxK,
        "target": [float(conf_BxK[b, d]) for b, d in enumerate(digits)],
        "target_start": [float(conf0_SxK[best_B[b], d]) for b, d in enumerate(digits)],
        "start": [start_names[s] for s in best_B],
        "predicted": conf_BxK.argmax(axis=1).tolist(),
    }


# --------------------------------------------------------------------------- the commands


def run_noise(run: Run, mnist, out_dir: str) -> dict:
    result = noise_confidence(run.params, run.activation, run.output, jax.random.key(0), 10_000, mnist.x_test_NxD)
    edges = np.array(result["bin_edges"])
    fig = outputs.figure(11, 6.5)
    axes = fig.subplots(2, 2)
    for col, (name, title) in enumerate([("noise", "10,000 uniform-noise images"), ("digits", "test digits")]):
        d = result[name]
        axes[0, col].bar(edges[:-1], d["top_fractions"], width=np.diff(edges), align="edge", edgecolor="white")
        axes[0, col].set(
            title=f"{title}: top output (mean {d['mean_top']:.2f})", xlabel="top output", ylabel="fraction of images", xlim=(0, 1)
        )
        axes[1, col].bar(range(len(d["class_fractions"])), d["class_fractions"], color="tab:orange")
        axes[1, col].set(
            title=f"{title}: predicted digit", xlabel="digit", ylabel="fraction of images", xticks=range(len(d["class_fractions"]))
        )
    fig.suptitle(run.label())
    numbers = {"run": run.dir, "network": run.network, "output": run.output} | result
    outputs.write(out_dir, "noise", fig, numbers)
    n, t = result["noise"], result["digits"]
    rows = [
        ["mean top output", n["mean_top"], t["mean_top"]],
        ["median top output", n["median_top"], t["median_top"]],
        ["top output > 0.5", n["above_half"], t["above_half"]],
        ["top output > 0.9", n["above_0.9"], t["above_0.9"]],
        ["most common digit", _mode(n["class_fractions"]), _mode(t["class_fractions"])],
    ]
    print(outputs.table(rows, ["", "noise", "test digits"]))
    return numbers


def _mode(fractions: list[float]) -> str:
    k = int(np.argmax(fractions))
    return f"{k} ({100 * fractions[k]:.0f}%)"


def run_weights(runs: list[Run], out_dir: str) -> dict:
    """What training wrote into each first-layer neuron: W1 − W1₀ as 28×28 images, every panel of
    every run on one colour scale (the untouched initial noise, which dominates W1 at the border, cancels)."""
    try:
        images = [first_layer_images(run.params) for run in runs]
        changes = [w - first_layer_images(rundir.init_params_of(run)) for run, w in zip(runs, images)]
    except ValueError as e:
        raise RunError(str(e)) from None
    vmax = max(float(np.abs(c).max()) for c in changes)  # blue negative, red positive, as in the video
    fig = outputs.figure(5.5 * len(runs), 6)
    numbers, rows = {"runs": [], "colour_scale": [-vmax, vmax]}, []
    for run, w, change, sub in zip(runs, images, changes, np.atleast_1d(fig.subfigures(1, len(runs)))):
        H = change.shape[0]
        ncols = math.ceil(math.sqrt(H))
        axes = np.atleast_1d(sub.subplots(math.ceil(H / ncols), ncols)).ravel()
        for h, ax in enumerate(axes):
            ax.set_axis_off()
            if h < H:
                im = ax.imshow(change[h], cmap="bwr", vmin=-vmax, vmax=vmax)
        sub.colorbar(im, ax=list(axes), shrink=0.6)
        sub.suptitle(f"{run.label()}\nW1 − W1 at initialization")
        stats, moved = weight_stats(w), weight_stats(change)
        numbers["runs"].append(
            {"run": run.dir, "network": run.network, "activation": run.activation}
            | stats
            | {f"change_{k}": v for k, v in moved.items() if k != "hidden"}
        )
        rows.append(
            [run.label(), H, stats["center_mean_abs"], stats["border_mean_abs"], moved["center_mean_abs"], moved["border_mean_abs"]]
        )
    outputs.write(out_dir, "weights", fig, numbers)
    print(outputs.table(rows, ["first layer of", "neurons", "mean |w| centre 20x20", "border", "mean |w − w0| centre", "border"]))
    return numbers


def run_gradients(run: Run, mnist, out_dir: str) -> dict:
    x_NxD = jnp.asarray(mnist.x_train_NxD)
    y_NxK = jax.nn.one_hot(jnp.asarray(mnist.labels_train_N), run.summary["sizes"][-1])
    stages = {"init": rundir.init_params_of(run), "final": run.params}
    results = {s: gradient_magnitudes(p, x_NxD, y_NxK, run.activation, run.cost) for s, p in stages.items()}
    fig = outputs.figure(15, 4.5)
    ax_hist, *ax_maps = fig.subplots(1, 3)
    positive = np.concatenate([r["abs_grads_P"][r["abs_grads_P"] > 0] for r in results.values()])
    edges = np.logspace(math.floor(math.log10(positive.min())), math.ceil(math.log10(positive.max())), 41)
    for stage, r in results.items():
        g = r["abs_grads_P"]
        ax_hist.hist(
            g[g > 0],
            edges,
            weights=np.full((g > 0).sum(), 1 / g.size),
            histtype="step",
            linewidth=1.5,
            label=f"{stage} (median {r['median']:.2g})",
        )
    ax_hist.set(
        xscale="log",
        xlabel="|∂C/∂w|",
        ylabel="fraction of parameters",
        title=f"all {results['final']['abs_grads_P'].size:,} parameters, {x_NxD.shape[0]:,} training images",
    )
    ax_hist.legend()
    for ax, (stage, r) in zip(ax_maps, results.items()):
        im = ax.imshow(r["first_layer_sum_D"].reshape(28, 28), cmap="magma")
        ax.set(title=f"{stage}: Σ_h |∂C/∂W1[h, pixel]|")
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(run.label())
    numbers = {"run": run.dir, "network": run.network, "examples": int(x_NxD.shape[0]), "init_scheme": str(run.setting("model.init"))}
    for stage, r in results.items():
        numbers[stage] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items() if k != "abs_grads_P"}
        numbers[stage]["first_layer_sum_28x28"] = np.asarray(numbers[stage].pop("first_layer_sum_D")).reshape(28, 28).tolist()
    outputs.write(out_dir, "gradients", fig, numbers)
    keys = [
        ("median", "median |∂C/∂w|"),
        ("max", "max |∂C/∂w|"),
        ("ratio_max_to_median", "max / median"),
        ("norm", "‖∇C‖"),
        ("zero_fraction", "fraction exactly 0"),
    ]
    rows = [[label, results["init"][k], results["final"][k]] for k, label in keys]
    for part in ("weights", "biases"):
        rows += [[f"{part}: {k} |∂C/∂·|", results["init"][part][k], results["final"][part][k]] for k in ("median", "max")]
    rows += [[f"zeros: {k}", results["init"]["zeros"][k], results["final"]["zeros"][k]] for k in ("blank_pixel", "dead_unit", "other")]
    print(outputs.table(rows, ["", "init", "final"]))
    for stage, r in results.items():
        print(f"largest at {stage}: " + ", ".join(f"{t['param']}{t['index']} {t['abs_grad']:.3g}" for t in r["top"][:5]))
    return numbers


def run_dream(run: Run, out_dir: str) -> dict:
    if run.params[0][0].shape[1] != 784:
        raise RunError(f"{run.dir}: the first layer has {run.params[0][0].shape[1]} inputs; images need 784 (28x28)")
    result = dream(run.params, run.activation, run.output)
    fig = outputs.figure(16, 2.4)
    axes = fig.subplots(1, len(result["digits"]))
    for ax, d, img_D, conf in zip(axes, result["digits"], result["images_BxD"], result["target"]):
        ax.imshow(img_D.reshape(28, 28), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{d}: {conf:.3f}")
        ax.set_axis_off()
    fig.suptitle(f"{run.label()}: the input that makes each output surest (output shown)")
    numbers = {"run": run.dir, "network": run.network} | {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in result.items()}
    outputs.write(out_dir, "dream", fig, numbers)
    rows = [
        [
            str(d),
            result["start"][b],
            result["target_start"][b],
            result["target"][b],
            str(result["predicted"][b]),
            float(np.sort(result["confidence_BxK"][b])[-2]),
        ]
        for b, d in enumerate(result["digits"])
    ]
    print(outputs.table(rows, ["digit", "best start", "output at start", "output at end", "predicted", "next highest output"]))
    return numbers


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = cli.one_line_parser(
        RunError,
        prog="python -m mlpjax.series",
        description=__doc__.split("\n\nThe pure functions")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("what", choices=[*WHATS, "all"])
    p.add_argument("run_dir", help="a training run's output dir (summary.json, params/)")
    p.add_argument("run_b", nargs="?", help="weights: a second run to show beside the first")
    p.add_argument("--out", help="where to write WHAT.png and WHAT.json (default RUN_DIR/series)")
    p.add_argument("--network", type=int, help="which network of RUN_DIR (default: best validation accuracy; RUN_B shows its best)")
    args = p.parse_args(argv)
    if args.run_b is not None and args.what not in ("weights", "all"):
        raise RunError(f"a second run dir is only for weights (or all), not {args.what}")
    return args


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (2 for a one-line error)."""
    return cli.one_line_errors(lambda: run(sys.argv[1:] if argv is None else argv), (RunError,))


def run(argv: list[str]) -> None:
    """Parse `argv` and draw the figures it asks for."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    run = rundir.load_run(args.run_dir, args.network)
    # --network picks from the first run; the second shows its own best.
    runs = [run] + ([rundir.load_run(args.run_b)] if args.run_b else [])
    out_dir = args.out or os.path.join(args.run_dir, "series")
    whats = WHATS if args.what == "all" else (args.what,)
    mnist = rundir.load_data(run) if {"noise", "gradients"} & set(whats) else None
    for what in whats:
        print(f"== {what}: {run.label()}")
        if what == "noise":
            run_noise(run, mnist, out_dir)
        elif what == "weights":
            run_weights(runs, out_dir)
        elif what == "gradients":
            run_gradients(run, mnist, out_dir)
        else:
            run_dream(run, out_dir)


if __name__ == "__main__":
    sys.exit(main())
