"""Seconds per MNIST epoch of the 784-16-16-10 sigmoid network, several ways, in one run.

    python benchmarks/epoch_speed.py [--quick] [--groups 1,8,64,256] [--batches 10,128] [--out results.json]

Every method trains the same network (mlpjax's `lecun` init, seed 0) with the same data
order (`fit.permutations`) by plain SGD, learning rate `--lr`, on the series' cost: the
mean over the mini-batch of `Σ(ŷ−y)²` (no ½). Only full mini-batches are used, so an epoch
at batch B is `60000 // B` steps. Methods:

- `mlpjax K=1`:  `fit.train_epoch` with one network, an epoch as one compiled program;
- `mlpjax K=k`:  the same for a group of k networks (seeds 0..k-1), vmapped, shared order;
- `NumPy`:      per-example backprop in the style of Nielsen's `network.py` (`nielsen_numpy.py`);
- `JAX loop`:   one jitted step per mini-batch called from Python, as JAX's `mnist_classifier.py`;
- `PyTorch`:    an eager `torch.optim.SGD` loop (`torch_eager.py`), when torch imports.

Each timing is one warm-up epoch (compilation), then the median of `--repeats` epochs.
After them, every trained network's cost on the first `--eval-examples` training examples
is computed by an independent NumPy forward pass and must be below its initial cost.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # sibling modules, also when imported

import jax_loop  # noqa: E402
import nielsen_numpy  # noqa: E402

from mlpjax import checkpoint, fit  # noqa: E402

SIZES = (784, 16, 16, 10)
EPOCH = 60_000  # examples in an MNIST training epoch
INIT = "lecun"  # the project's default init


def matmul_flop_per_example(sizes=SIZES) -> dict:
    """Matmul FLOPs of one example's forward and backward pass (multiply-add = 2 FLOPs).

    forward `W a`: 2·Σ O·I; weight gradients `δ aᵀ`: 2·Σ O·I; deltas sent back `Wᵀ δ`:
    2·Σ O·I over every layer but the first (nothing needs the gradient of the input).
    Biases, sigmoids and the SGD update are not matmuls and are not counted.
    """
    pairs = list(zip(sizes[:-1], sizes[1:]))
    weights = sum(i * o for i, o in pairs)
    back = sum(i * o for i, o in pairs[1:])
    per_example = 2 * weights + 2 * weights + 2 * back
    formula = (
        f"per example: forward 2·{weights} + weight grads 2·{weights} + back-propagated deltas 2·{back} "
        f"= {per_example:,} FLOP (weights {'+'.join(f'{i}·{o}' for i, o in pairs)} = {weights:,}); "
        f"per epoch at batch B: (60000 // B)·B examples × {per_example:,}"
    )
    return {"per_example": per_example, "formula": formula}


def epoch_flop(batch: int, per_example: int) -> int:
    return (EPOCH // batch) * batch * per_example


# ---------------------------------------------------------------- machine and data


def machine_info() -> dict:
    cpu_model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu_model)
    except OSError:
        pass
    dev = jax.devices()[0]
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "loadavg_1min_at_start": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "jax_backend": jax.default_backend(),
        "device_kind": dev.device_kind,
        "device_count": jax.device_count(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "torch": None,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except ImportError:
        pass
    return info


def load_data(args) -> tuple[np.ndarray, np.ndarray, str]:
    """`x_NxD` float32 in [0, 1] (60000, 784), `labels_N` int32, and where they came from."""
    if args.synthetic:
        rng = np.random.default_rng(0)
        x = rng.random((EPOCH, SIZES[0]), dtype=np.float32)
        labels = rng.integers(0, SIZES[-1], EPOCH).astype(np.int32)
        return x, labels, "synthetic: uniform pixels, random labels (seed 0)"
    from mlpjax import data

    m = data.load_mnist(args.idx_dir, os.path.expanduser(args.data_dir))
    return m.x_train_NxD, m.labels_train_N, f"MNIST train, {m.source}"


# ---------------------------------------------------------------- timing and checking


def time_epochs(train_epoch, orders: list[np.ndarray], warmup_order, repeats: int) -> list[float]:
    """Run `train_epoch(warmup_order)` untimed, then time `train_epoch(order)` for `repeats` orders (seconds)."""
    train_epoch(warmup_order)
    times = []
    for order in orders[:repeats]:
        start = time.perf_counter()
        train_epoch(order)
        times.append(time.perf_counter() - start)
    return times


def numpy_cost(params, x_NxD, y_NxK) -> tuple[float, float]:
    """Mean `Σ(ŷ−y)²` and accuracy of one network `[(W_OxI, b_O), ...]`, float32 NumPy."""
    a = x_NxD
    for W, b in params:
        a = 1 / (1 + np.exp(-(a @ np.asarray(W, np.float32).T + np.asarray(b, np.float32))))
    return float(np.mean(np.sum((a - y_NxK) ** 2, axis=1))), float(np.mean(np.argmax(a, 1) == np.argmax(y_NxK, 1)))


def group_networks(group: fit.Group) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """The K networks of a group as `[(W_OxI, b_O), ...]` each."""
    params = [(np.asarray(W), np.asarray(b)) for W, b in group.params]
    return [checkpoint.network(params, g) for g in range(params[0][0].shape[0])]


def check(before: list[float], after: list[float]) -> dict:
    """Costs of every network before and after training; ok if each is finite and went down."""
    ok = all(np.isfinite(a) and a < b for a, b in zip(after, before))
    return {
        "cost_before": float(np.mean(before)),
        "cost_after": float(np.mean(after)),
        "cost_after_max": float(np.max(after)),
        "ok": bool(ok),
    }


# ---------------------------------------------------------------- the methods


def run_project(K, batch, data, args, shared=True) -> dict:
    """`fit.train_epoch` on a group of K networks (seeds seed..seed+K-1).

    `shared`: one data order for the group; else each network its own (`train.shuffle=per_model`).
    """
    spec = fit.Spec(sizes=SIZES, activation="sigmoid", cost="quadratic", batch_size=batch, n_train=data["n"])
    seeds = np.arange(args.seed, args.seed + K)
    state = {"group": fit.init_group(spec, INIT, seeds, np.full(K, args.lr, np.float32))}
    before = [numpy_cost(p, data["x_eval"], data["y_eval"])[0] for p in group_networks(state["group"])]
    x_dev, y_dev = jnp.asarray(data["x"]), jnp.asarray(data["y"])

    def train_epoch(order_dev):
        state["group"], metrics = fit.train_epoch(state["group"], x_dev, y_dev, order_dev, spec)  # perm_N: shared; perm_KxN: one each
        jax.block_until_ready((state["group"], metrics))

    if shared:
        orders = [jnp.asarray(o) for o in data["orders"]]
    else:
        orders = [jnp.asarray(fit.permutations(list(seeds), epoch, data["n"])) for epoch in range(len(data["orders"]))]
    times = time_epochs(train_epoch, orders[1:], orders[0], args.repeats)
    evals = [numpy_cost(p, data["x_eval"], data["y_eval"]) for p in group_networks(state["group"])]
    return {
        "times": times,
        "examples": data["n"],
        "acc_after": float(np.mean([e[1] for e in evals])),
        **check(before, [e[0] for e in evals]),
    }


def run_single(method, batch, data, args) -> dict:
    """One network by NumPy, the JAX step loop or eager PyTorch, from the project's init."""
    params0 = group_networks(
        fit.init_group(fit.Spec(SIZES, "sigmoid", "quadratic", batch, data["n"]), INIT, np.array([args.seed]), np.array([args.lr]))
    )[0]
    before = [numpy_cost(params0, data["x_eval"], data["y_eval"])[0]]
    x, y, orders = data["x"], data["y"], data["orders"]
    if method == "numpy":
        dtype = np.dtype(args.numpy_dtype)
        net = nielsen_numpy.Network(params0, dtype)
        examples = nielsen_numpy.examples_from_arrays(x, y, dtype)
        n = min(args.numpy_examples, data["n"]) // batch * batch
        orders = [o[:n] for o in orders]
        warmup = orders[0][: min(n, 20 * batch)]  # nothing to compile: a few steps warm the caches
        train = lambda order: net.train_epoch(examples, order, batch, args.lr)
    elif method == "jax_loop":
        net, n = jax_loop.JaxLoop(params0, args.lr), data["n"]
        warmup = orders[0]
        train = lambda order: net.train_epoch(x, y, order, batch)
    elif method == "torch":
        import torch_eager

        net, n = torch_eager.TorchEager(params0, args.lr, args.torch_threads), data["n"]
        warmup = orders[0]
        train = lambda order: net.train_epoch(x, y, order, batch)
    times = time_epochs(train, orders[1:], warmup, args.repeats)
    cost, acc = numpy_cost(net.params(), data["x_eval"], data["y_eval"])
    return {"times": times, "examples": n, "acc_after": acc, **check(before, [cost])}


LABELS = {
    "project": "mlpjax train_epoch",
    "project_per_model": "mlpjax, per-network order",
    "numpy": "NumPy per-example",
    "jax_loop": "JAX jitted-step loop",
    "torch": "PyTorch eager",
}


def matmul_peak(n: int, repeats: int) -> dict:
    """FLOP/s of a jitted float32 `jnp.dot` of two n×n matrices, median of `repeats`, default precision."""
    ka, kb = jax.random.split(jax.random.key(1))
    a = jax.random.normal(ka, (n, n), jnp.float32)
    b = jax.random.normal(kb, (n, n), jnp.float32)
    dot = jax.jit(jnp.dot)
    dot(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        dot(a, b).block_until_ready()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {"n": n, "seconds": seconds, "flop_per_s": 2 * n**3 / seconds, "times": times}


# ---------------------------------------------------------------- report


def fmt_x(v):
    return "—" if v is None else f"{v:,.1f}×" if v >= 1 else f"{v:.2f}×"


def print_table(rows):
    head = ("method", "K", "batch", "s/epoch", "model-ep/s", "vs NumPy", "vs PyTorch", "vs K=1", "of peak", "cost before→after", "acc")
    lines = [head]
    for r in rows:
        lines.append(
            (
                r["label"],
                str(r["K"]),
                str(r["batch"]),
                f"{r['seconds_per_epoch']:.3g}",
                f"{r['model_epochs_per_s']:.3g}",
                fmt_x(r["vs_numpy"]),
                fmt_x(r["vs_torch"]),
                fmt_x(r["vs_K1"]),
                f"{100 * r['fraction_of_peak']:.3g}%",
                f"{r['cost_before']:.3f}→{r['cost_after']:.3f}" + ("" if r["ok"] else " FAILED"),
                f"{r['acc_after']:.3f}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for j, line in enumerate(lines):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def parse_args(argv) -> tuple[argparse.Namespace, list[int], list[int], list[str]]:
    """The options (with --quick's or the full defaults filled in), group sizes K, batch sizes, methods.

    `args` keeps the option strings as given (they go to the JSON as `settings`), except
    `per_model_groups`, which becomes a list of ints. Methods leave out torch when it does not import.
    """
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a smoke test: few examples and repeats (timings not for quoting)")
    p.add_argument("--groups", help="group sizes K for mlpjax (default 1,8,64,256; --quick: 1,8); K=1 is always run")
    p.add_argument(
        "--per-model-groups", default="64", help="group sizes also timed with one data order per network (default 64; '' for none)"
    )
    p.add_argument("--batches", default="10,128", help="mini-batch sizes (default 10,128)")
    p.add_argument("--methods", default="project,numpy,jax_loop,torch", help="any of project,numpy,jax_loop,torch")
    p.add_argument("--examples", type=int, help="examples per timed epoch, scaled to 60000 (default 60000; --quick 3000)")
    p.add_argument("--numpy-examples", type=int, help="examples per timed NumPy epoch, scaled (default 60000; --quick 500)")
    p.add_argument("--numpy-dtype", default="float64", choices=["float64", "float32"], help="NumPy dtype (default float64, as network.py)")
    p.add_argument("--repeats", type=int, help="timed epochs after the warm-up; the median is reported (default 3; --quick 1)")
    p.add_argument("--eval-examples", type=int, help="training examples for the cost check (default 10000; --quick 2000)")
    p.add_argument("--peak-n", type=int, help="matrix size for the float32 matmul peak (default 4096; --quick 2048)")
    p.add_argument("--torch-threads", type=int, help="torch.set_num_threads (default: the usable CPU cores)")
    p.add_argument("--lr", type=float, default=1.0, help="SGD learning rate on the mean cost (default 1.0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--synthetic", action="store_true", help="random data of MNIST's shape instead of MNIST")
    p.add_argument("--idx-dir", default=os.environ.get("MNIST_IDX_DIR"), help="folder of the MNIST IDX files (default $MNIST_IDX_DIR)")
    p.add_argument("--data-dir", default=os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"), help="tfds data dir")
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    quick = {"groups": "1,8", "examples": 3000, "numpy_examples": 500, "repeats": 1, "eval_examples": 2000, "peak_n": 2048}
    full = {"groups": "1,8,64,256", "examples": EPOCH, "numpy_examples": EPOCH, "repeats": 3, "eval_examples": 10_000, "peak_n": 4096}
    for k, v in (quick if args.quick else full).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    groups = sorted({1, *(int(k) for k in args.groups.split(","))})
    batches = [int(b) for b in args.batches.split(",")]
    args.per_model_groups = [int(k) for k in args.per_model_groups.split(",") if k]
    methods = args.methods.split(",")
    if unknown := set(methods) - set(LABELS):
        p.error(f"unknown methods {sorted(unknown)}; allowed: {', '.join(LABELS)}")
    if "torch" in methods:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("note: PyTorch is not installed (import torch failed); its rows are skipped")
            methods.remove("torch")
    return args, groups, batches, methods


def print_machine(date: str, machine: dict) -> None:
    print(f"date:    {date}")
    print(
        f"machine: {machine['platform']}; {machine['cpu']}; {machine['cpu_count']} CPUs ({machine['cpus_usable']} usable), "
        f"1-min load average {machine['loadavg_1min_at_start']}"
    )
    print(
        f"device:  jax {machine['jax']} on {machine['jax_backend']} ({machine['device_kind']} ×{machine['device_count']}); "
        f"numpy {machine['numpy']}; torch {machine['torch'] or 'not installed'}"
        + (f" on {machine['torch_device']}" if machine.get("torch_device") else "")
    )


def prepare_data(args) -> tuple[dict, str]:
    """The timed examples `x`, `y` (n of them), the eval examples, one data order per epoch; and their source."""
    x_all, labels_all, source = load_data(args)
    y_all = np.eye(SIZES[-1], dtype=np.float32)[labels_all]
    n = min(args.examples, EPOCH)
    data = {
        "n": n,
        "x": x_all[:n],
        "y": y_all[:n],
        "x_eval": x_all[: args.eval_examples],
        "y_eval": y_all[: args.eval_examples],
        "orders": [fit.permutations([args.seed], epoch, n)[0] for epoch in range(args.repeats + 1)],
    }
    return data, source


def print_setup(args, n: int, source: str, flop: dict, peak: dict, machine: dict) -> None:
    print(
        f"data:    {source}; timed on {n:,} examples per epoch"
        + ("" if n == EPOCH else f", scaled to {EPOCH:,}")
        + f"; cost checked on the first {args.eval_examples:,}"
    )
    print(
        f"network: {'-'.join(map(str, SIZES))} sigmoid, cost mean Σ(ŷ−y)², plain SGD η={args.lr}, init {INIT} "
        f"(seed {args.seed}), only full mini-batches"
    )
    print(f"FLOP:    {flop['formula']}; e.g. {epoch_flop(10, flop['per_example']) / 1e9:.3f} GFLOP at batch 10")
    print(
        f"peak:    jitted float32 jnp.dot {args.peak_n}×{args.peak_n} at JAX's default precision: "
        f"{peak['flop_per_s'] / 1e9:,.1f} GFLOP/s (median of {len(peak['times'])})"
    )
    load, cpus = machine["loadavg_1min_at_start"], machine["cpus_usable"]
    if load is not None and load > 0.25 * cpus:
        print(f"WARNING: 1-min load average {load:.2f} on {cpus} CPUs at start: other work is running, timings are unreliable")
    if args.quick:
        print("QUICK MODE: few examples and repeats, timings are a smoke test only")
    print()


def method_details(args, methods: list[str]) -> dict:
    """What a method's label adds: NumPy's dtype, PyTorch's device or threads."""
    detail = {"numpy": f" ({args.numpy_dtype})"}
    if "torch" in methods:
        import torch
        import torch_eager

        threads = args.torch_threads or torch_eager.cpu_cores()
        detail["torch"] = " (cuda)" if torch.cuda.is_available() else f" ({threads} thr)"
    return detail


def time_all(args, groups: list[int], batches: list[int], methods: list[str], data: dict, flop: dict, peak: dict) -> list[dict]:
    """One row per (batch, method, K): the timings and the cost check, each printed as it ends."""
    detail = method_details(args, methods)
    rows = []
    for batch in batches:
        runs = [("project", K) for K in groups] if "project" in methods else []
        runs += [("project_per_model", K) for K in args.per_model_groups if "project" in methods]
        runs += [(m, 1) for m in methods if m != "project"]
        for method, K in runs:
            t0 = time.perf_counter()
            if method.startswith("project"):
                r = run_project(K, batch, data, args, shared=method == "project")
            else:
                r = run_single(method, batch, data, args)
            # Fewer examples than an epoch were timed: scale to the epoch's (60000 // batch) steps.
            steps_timed = r["examples"] // batch
            scale = (EPOCH // batch) / steps_timed
            sec = statistics.median(r["times"]) * scale
            r.update(
                method=method,
                label=LABELS[method] + detail.get(method, ""),
                K=K,
                batch=batch,
                steps_timed=steps_timed,
                scale_to_epoch=scale,
                seconds_per_epoch=sec,
                model_epochs_per_s=K / sec,
            )
            r["fraction_of_peak"] = r["model_epochs_per_s"] * epoch_flop(batch, flop["per_example"]) / peak["flop_per_s"]
            rows.append(r)
            print(
                f"  {r['label']:<28} K={K:<4} batch {batch:<4} {sec:9.3f} s/epoch "
                f"(median of {len(r['times'])}, {steps_timed} steps ×{scale:.3g}; run took {time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
    return rows


def find(rows: list[dict], method: str, batch: int, K: int = 1) -> dict | None:
    return next((r for r in rows if r["method"] == method and r["batch"] == batch and r["K"] == K), None)


def add_comparisons(rows: list[dict]) -> None:
    """Each row's model-ep/s relative to NumPy, PyTorch and mlpjax K=1 at the same batch (None where absent)."""
    for r in rows:
        for key, m in (("vs_numpy", "numpy"), ("vs_torch", "torch"), ("vs_K1", "project")):
            ref = find(rows, m, r["batch"])
            r[key] = r["model_epochs_per_s"] / ref["model_epochs_per_s"] if ref else None
        if not r["method"].startswith("project"):
            r["vs_K1"] = None


def print_notes(args, n: int, methods: list[str]) -> None:
    n_np = min(args.numpy_examples, n)
    notes = [
        f"s/epoch: median over timed runs of {n:,} examples"
        + ("" if n == EPOCH else ", scaled to the (60000 // batch) steps of an epoch")
        + (
            f"; NumPy timed on {n_np:,} examples per run (full mini-batches)" + ("" if n_np == EPOCH else " and scaled")
            if "numpy" in methods
            else ""
        ),
        "model-ep/s: networks × epochs per second; 'vs' columns compare model-ep/s at the same batch",
        "of peak: model-ep/s × matmul FLOP per epoch ÷ the jnp.dot peak above",
        "cost: mean Σ(ŷ−y)² on the eval examples, NumPy forward pass; K>1 rows show the group mean",
    ]
    for note in notes:
        print(f"  {note}")


def headline_ratios(rows: list[dict], groups: list[int], batches: list[int], per_model_groups: list[int]) -> dict:
    """{sentence: ratio of model-ep/s}: mlpjax K=1 against the other methods, groups against K=1 and shared order."""
    ratios = {}
    for batch in batches:
        one = find(rows, "project", batch)
        if one is None:
            continue
        for m, name in (("numpy", "NumPy"), ("torch", "eager PyTorch"), ("jax_loop", "the JAX jitted-step loop")):
            if other := find(rows, m, batch):
                text = f"project G=1 vs {name} at batch {batch}"
                ratios[text] = one["model_epochs_per_s"] / other["model_epochs_per_s"]
        for K in groups[1:]:
            ratios[f"group of {K} vs one network at batch {batch}"] = find(rows, "project", batch, K)["vs_K1"]
        for K in per_model_groups:
            if (own := find(rows, "project_per_model", batch, K)) and (shared := find(rows, "project", batch, K)):
                ratios[f"group of {K}, per-network orders vs one shared order at batch {batch}"] = (
                    own["model_epochs_per_s"] / shared["model_epochs_per_s"]
                )
    return ratios


def main(argv=None):
    args, groups, batches, methods = parse_args(argv)
    machine = machine_info()
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    print_machine(date, machine)

    data, source = prepare_data(args)
    flop = matmul_flop_per_example()
    peak = matmul_peak(args.peak_n, 3 if args.quick else 7)
    print_setup(args, data["n"], source, flop, peak, machine)

    rows = time_all(args, groups, batches, methods, data, flop, peak)
    add_comparisons(rows)
    print()
    print_table(rows)
    print()
    print_notes(args, data["n"], methods)
    print()
    ratios = headline_ratios(rows, groups, batches, args.per_model_groups)
    for text, v in ratios.items():
        print(f"{text}: {v:,.1f}×" + (" model-epochs/s" if text.startswith("group") else ""))

    failed = [f"{r['label']} K={r['K']} batch {r['batch']}" for r in rows if not r["ok"]]
    print("\ncost check: " + ("every network's cost went down" if not failed else "FAILED for " + "; ".join(failed)))
    if args.out:
        result = {
            "date": date,
            "machine": machine,
            "data": source,
            "settings": vars(args),
            "quick": args.quick,
            "flop": {**flop, "per_epoch_by_batch": {b: epoch_flop(b, flop["per_example"]) for b in batches}},
            "peak": peak,
            "rows": rows,
            "ratios": ratios,
            "cost_check_failed": failed,
        }
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
