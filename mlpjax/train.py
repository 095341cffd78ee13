"""Train the network(s) a Hydra config describes: `python -m mlpjax.train [key=value …]`.

One run trains a group of networks of one shape — every combination of `train.seeds`
seeds and the learning rates in `optim.lr` — as one compiled, vmapped program per epoch.
It writes into Hydra's output dir:
  .hydra/config.yaml  the resolved config
  metrics.jsonl       one line per epoch; per-network lists ordered like summary's `models`
  summary.json        param_count, epochs, wall_seconds, epoch_seconds, models[…]
  params/             the trained parameters (orbax), leading axis G: `checkpoint.load_params`

Default (784-16-16-10, sigmoid, quadratic cost, SGD η=1, mini-batch 10, 30 epochs):
about 95.5% test accuracy in about 15 s on a 2-core CPU (README has the measured numbers).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import hydra
import jax
import jax.numpy as jnp
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from mlpjax import checkpoint, cli, config, data, fit, model

config.register()


def group_members(cfg: DictConfig) -> list[dict]:
    """Every network of the run: learning rate major, seed minor."""
    seeds = [cfg.seed + i for i in range(cfg.train.seeds)]
    return [{"seed": s, "learning_rate": lr} for lr in config.learning_rates(cfg) for s in seeds]


def max_group_size(spec: fit.Spec, shuffle: str, data_bytes: int) -> int:
    """How many networks fit in one program: half the device memory left after the data."""
    P = model.count_for_sizes(list(spec.sizes))
    units = sum(spec.sizes[1:])
    per_model = 4 * (4 * P + 3 * spec.batch_size * units + 3 * fit.EVAL_CHUNK * units)
    if shuffle == "per_model" and not spec.full_batch:
        per_model += 4 * spec.batch_size * spec.sizes[0]
    stats = jax.devices()[0].memory_stats() or {}
    total = stats.get("bytes_limit") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(1, int((total - data_bytes) * 0.5) // per_model)


def train(cfg: DictConfig, out_dir: str) -> dict:
    """Run the whole training that `cfg` describes; returns the summary also written to `out_dir`."""
    t_start = time.perf_counter()
    config.validate(cfg)
    mnist = data.load_mnist(cfg.data.idx_dir, os.path.expanduser(cfg.data.data_dir))
    n_train = mnist.x_train_NxD.shape[0]
    spec = fit.Spec(
        sizes=(mnist.x_train_NxD.shape[1], *cfg.model.hidden, 10),
        activation=cfg.model.activation,
        cost=cfg.model.cost,
        batch_size=config.batch_size(cfg, n_train),
        n_train=n_train,
        momentum=float(cfg.optim.momentum),
        diverge_norm=float(cfg.train.diverge_norm),
    )
    # The data goes to the device once and stays there.
    x_train_NxD, x_test_NxD = jnp.asarray(mnist.x_train_NxD), jnp.asarray(mnist.x_test_NxD)
    labels_train_N, labels_test_N = jnp.asarray(mnist.labels_train_N), jnp.asarray(mnist.labels_test_N)
    y_train_NxK, y_test_NxK = jax.nn.one_hot(labels_train_N, 10), jax.nn.one_hot(labels_test_N, 10)

    members = group_members(cfg)
    G = len(members)
    chunk = max_group_size(spec, cfg.train.shuffle, x_train_NxD.nbytes + x_test_NxD.nbytes)
    if cfg.train.max_group:
        chunk = min(chunk, cfg.train.max_group)
    n_dev = jax.device_count()
    chunk = min(chunk, G)
    if n_dev > 1 and G > 1:  # the networks are spread over the devices: a multiple of their number
        chunk = -(-chunk // n_dev) * n_dev
    n_chunks = -(-G // chunk)
    # Equal-sized chunks (the last padded with copies) compile once.
    padded = members + [members[-1]] * (n_chunks * chunk - G)
    groups = [
        fit.shard(
            fit.init_group(
                spec,
                cfg.model.init,
                np.array([m["seed"] for m in padded[c * chunk : (c + 1) * chunk]]),
                np.array([m["learning_rate"] for m in padded[c * chunk : (c + 1) * chunk]]),
            )
        )
        for c in range(n_chunks)
    ]
    P = model.count_for_sizes(list(spec.sizes))
    sizes = "-".join(map(str, spec.sizes))
    print(
        f"mlpjax: {sizes} {spec.activation} network, {P:,} parameters, {spec.cost} cost, "
        f"{G} network(s) ({cfg.train.seeds} seed(s) x {len(config.learning_rates(cfg))} learning rate(s)), "
        f"mini-batch {'full' if spec.full_batch else spec.batch_size}, {cfg.train.epochs} epochs on {jax.devices()[0].platform}"
        + (f", in {n_chunks} programs of {chunk} networks (memory)" if n_chunks > 1 else "")
        + (f", spread over {n_dev} devices" if n_dev > 1 and G > 1 else "")
    )
    print(f"data: {mnist.source}")

    def evaluate_all():
        out = {}
        for name, (x, y, l) in {"train": (x_train_NxD, y_train_NxK, labels_train_N), "test": (x_test_NxD, y_test_NxK, labels_test_N)}.items():
            costs, accs = zip(*[fit.evaluate(g.params, x, y, l, spec.activation, spec.cost) for g in groups])
            out[f"{name}_cost"] = np.concatenate(costs)[:G]
            out[f"{name}_accuracy"] = np.concatenate(accs)[:G]
        return out

    metrics_path = os.path.join(out_dir, "metrics.jsonl")
    epoch_seconds, history = [], []
    with open(metrics_path, "w") as metrics_file:
        for epoch in range(1, cfg.train.epochs + 1):
            t0 = time.perf_counter()
            step_metrics = []
            for c in range(n_chunks):
                seeds = [cfg.seed] if cfg.train.shuffle == "shared" else [m["seed"] for m in padded[c * chunk : (c + 1) * chunk]]
                perm = jnp.asarray(fit.permutations(seeds, epoch, n_train))
                groups[c], m = fit.train_epoch(groups[c], x_train_NxD, y_train_NxK, perm[0] if cfg.train.shuffle == "shared" else perm, spec, cfg.train.shuffle == "shared")
                step_metrics.append(m)
            jax.block_until_ready(groups)
            epoch_seconds.append(time.perf_counter() - t0)
            ev = evaluate_all()
            ev.update({k: np.concatenate([np.asarray(m[k]) for m in step_metrics])[:G] for k in step_metrics[0]})
            ev["diverged"] = ~np.concatenate([np.asarray(g.alive_G) for g in groups])[:G]
            record = {"epoch": epoch, "epoch_seconds": round(epoch_seconds[-1], 4)} | {k: v.tolist() for k, v in ev.items()}
            metrics_file.write(json.dumps(record) + "\n")
            metrics_file.flush()
            history.append(ev)
            print(progress_line(epoch, cfg.train.epochs, ev, epoch_seconds[-1]), flush=True)

    params = jax.tree.map(lambda *xs: jnp.concatenate(xs)[:G], *[g.params for g in groups])
    checkpoint.save_params(os.path.join(out_dir, "params"), params)
    last = history[-1]
    diverged_at = [next((i + 1 for i, h in enumerate(history) if h["diverged"][g]), None) for g in range(G)]
    summary = {
        "param_count": P,
        "sizes": list(spec.sizes),
        "activation": spec.activation,
        "cost": spec.cost,
        "batch_size": "full" if spec.full_batch else spec.batch_size,
        "epochs": cfg.train.epochs,
        "networks": G,
        "wall_seconds": round(time.perf_counter() - t_start, 3),
        # The first epoch includes compilation.
        "epoch_seconds": round(statistics.median(epoch_seconds[1:] or epoch_seconds), 4),
        "backend": jax.default_backend(),
        "models": [
            m
            | {
                "test_accuracy": float(last["test_accuracy"][g]),
                "test_cost": float(last["test_cost"][g]),
                "train_cost": float(last["train_cost"][g]),
                "train_accuracy": float(last["train_accuracy"][g]),
                "diverged": bool(last["diverged"][g]),
                "diverged_epoch": diverged_at[g],
            }
            for g, m in enumerate(members)
        ],
    }
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def progress_line(epoch: int, epochs: int, ev: dict, seconds: float) -> str:
    head = f"epoch {epoch:>{len(str(epochs))}}/{epochs}"
    if len(ev["test_accuracy"]) == 1:
        return (
            f"{head}  train cost {ev['train_cost'][0]:.4f}  test cost {ev['test_cost'][0]:.4f}  "
            f"test accuracy {100 * ev['test_accuracy'][0]:.2f}%  |grad| {ev['grad_norm'][0]:.3f}  ({seconds:.2f} s)"
            + ("  DIVERGED" if ev["diverged"][0] else "")
        )
    ok = ~ev["diverged"]
    acc = 100 * ev["test_accuracy"][ok] if ok.any() else np.array([np.nan])
    return (
        f"{head}  {len(ok)} networks  test accuracy best {acc.max():.2f}% median {np.median(acc):.2f}% "
        f"worst {acc.min():.2f}%  train cost median {np.median(ev['train_cost'][ok]) if ok.any() else np.nan:.4f}  "
        f"diverged {int((~ok).sum())}  ({seconds:.2f} s)"
    )


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        summary = train(cfg, HydraConfig.get().runtime.output_dir)
    except (config.ConfigError, data.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if all(m["diverged"] for m in summary["models"]):
        print("error: every network diverged (cost or parameters not finite); try a smaller optim.lr", file=sys.stderr)
        sys.exit(1)


def main() -> None:
    cli.preflight(sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
