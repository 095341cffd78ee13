"""What a run leaves in its output dir, read back: `metrics.jsonl` (one JSON object per epoch), and one
network of it with its summary, config, initialization and data (`load_run`, `init_params_of`, `load_data`)."""

from __future__ import annotations

import dataclasses
import json
import math
import os

import jax

from mlpjax import checkpoint, model
from mlpjax import cost as cost_lib


def read_metrics(path: str) -> list[dict]:
    """The complete lines of a metrics.jsonl, in order; [] if the file is missing.

    A line cut short by a kill ends the list: what follows it was never vouched for.
    """
    records = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    break
    except FileNotFoundError:
        pass
    return records


class RunError(Exception):
    """A bad command line or run directory; the message is one line."""


@dataclasses.dataclass
class Run:
    """One network of a training run."""

    dir: str
    network: int  # its index in summary["models"] and on the params' leading axis
    params: model.Params
    summary: dict
    config: object  # the run's OmegaConf config, or None without .hydra/config.yaml

    @property
    def activation(self) -> str:
        return self.summary["activation"]

    @property
    def cost(self) -> str:
        return self.summary["cost"]

    @property
    def l2(self) -> float:
        """λ of the run's (λ/2)‖θ‖² (0 for runs from before `model.l2`)."""
        return float(self.summary.get("l2") or 0.0)

    @property
    def output(self) -> str:
        return cost_lib.OUTPUT_FOR_COST[self.cost]

    @property
    def model_info(self) -> dict:
        return self.summary["models"][self.network]

    def label(self) -> str:
        sizes = "-".join(map(str, self.summary["sizes"]))
        accs = [(k, self.model_info.get(f"{k}_accuracy")) for k in ("validation", "test")]
        return f"{sizes} {self.activation}, network {self.network}" + "".join(f", {k} {100 * a:.2f}%" for k, a in accs if a is not None)

    def setting(self, key: str):
        """A value of the run's config, resolved now (e.g. `${oc.env:…}`); RunError if unavailable."""
        from omegaconf import OmegaConf

        path = os.path.join(self.dir, ".hydra", "config.yaml")
        if self.config is None:
            raise RunError(f"{path}: missing; it holds {key}, which this command needs")
        try:
            return OmegaConf.select(self.config, key, throw_on_missing=True)
        except Exception as e:  # an interpolation that cannot resolve here
            raise RunError(f"{path}: {key}: {type(e).__name__}: {str(e).splitlines()[0]}") from None


def load_run(run_dir: str, network: int | None = None, params: str = "params") -> Run:
    """Network `network` of the run in `run_dir`; by default the best by validation accuracy (by test
    accuracy for a run without a validation split) among those that did not diverge. `params`: the
    folder of parameters to read, `params` (after SGD) or `params_polished` (after `train.polish`)."""
    return load_runs(run_dir, [network], params)[0]


def load_runs(run_dir: str, networks: list[int | None] | None = None, params: str = "params") -> list[Run]:
    """The networks `networks` of the run in `run_dir` (None in the list: the best, as `load_run`), read
    from disk once; `networks=None`: every network that did not diverge, in order."""
    from omegaconf import OmegaConf

    summary_path = os.path.join(run_dir, "summary.json")
    if not os.path.isdir(run_dir):
        raise RunError(f"{run_dir}: not a directory (give a training run's output dir)")
    try:
        with open(summary_path) as f:
            summary = json.load(f)
    except OSError as e:
        raise RunError(f"{summary_path}: cannot read ({e.strerror}); is {run_dir} a finished training run?") from None
    except json.JSONDecodeError as e:
        raise RunError(f"{summary_path}: not JSON ({e.msg}, line {e.lineno})") from None
    missing = [k for k in ("models", "sizes", "activation", "cost") if k not in summary]
    if missing:
        raise RunError(f"{summary_path}: missing {', '.join(missing)}")
    if summary["activation"] not in model.ACTIVATIONS or summary["cost"] not in cost_lib.OUTPUT_FOR_COST:
        raise RunError(f"{summary_path}: unknown activation {summary['activation']!r} or cost {summary['cost']!r}")
    models = summary["models"]
    G = len(models)
    if networks is None:
        networks = [g for g in range(G) if not models[g].get("diverged")]
    networks = [_best(models, summary_path) if g is None else g for g in networks]
    for g in networks:
        if not 0 <= g < G:
            raise RunError(f"--network {g}: the run has {G} network(s), 0..{G - 1}")
    params_path = os.path.join(run_dir, params)
    if not os.path.isdir(params_path):
        hint = "was it trained with train.polish > 0?" if params == "params_polished" else "the run did not finish?"
        raise RunError(f"{params_path}: missing ({hint})")
    try:
        stacked = checkpoint.load_params(params_path)
    except Exception as e:  # orbax raises many kinds; the first line says which
        raise RunError(f"{params_path}: cannot load ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    shapes = [(W.shape, b.shape) for W, b in stacked]
    expected = [((G, o, i), (G, o)) for i, o in zip(summary["sizes"][:-1], summary["sizes"][1:])]
    if shapes != expected:
        raise RunError(f"{params_path}: shapes {shapes} do not match summary.json ({G} networks of sizes {summary['sizes']})")
    config_path = os.path.join(run_dir, ".hydra", "config.yaml")
    try:
        cfg = OmegaConf.load(config_path) if os.path.isfile(config_path) else None
    except Exception as e:  # YAML syntax: the first line says where
        raise RunError(f"{config_path}: cannot parse ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    return [Run(run_dir, g, checkpoint.network(stacked, g), summary, cfg) for g in networks]


def _best(models: list[dict], summary_path: str) -> int:
    """The network with the best validation accuracy (test accuracy without a validation split) that did not diverge."""
    chosen_on = "validation_accuracy" if all("validation_accuracy" in m for m in models) else "test_accuracy"
    accs = [m.get(chosen_on, math.nan) for m in models]
    ok = [g for g in range(len(models)) if not models[g].get("diverged") and math.isfinite(accs[g])]
    if not ok:
        raise RunError(f"{summary_path}: no network has a finite {chosen_on.replace('_', ' ')} (all diverged?)")
    return max(ok, key=lambda g: accs[g])


def load_data(run: Run):
    """MNIST for `run`: from the run's data.idx_dir (its `${oc.env:…}` resolved now) where that folder
    exists here, else from $MNIST_IDX_DIR (a run made on another machine); prepared under its
    data.data_dir. The training split is the images the run trained on (its `validation` last ones held out)."""
    mnist, n, _ = _mnist_of(run)
    return dataclasses.replace(mnist, x_train_NxD=mnist.x_train_NxD[:n], labels_train_N=mnist.labels_train_N[:n])


def load_splits(run: Run) -> dict:
    """`{"train": (x_NxD, labels_N), "validation": … (absent without one), "test": …}`, as the run split MNIST."""
    mnist, n, held_out = _mnist_of(run)
    out = {"train": (mnist.x_train_NxD[:n], mnist.labels_train_N[:n])}
    if held_out < mnist.x_train_NxD.shape[0]:
        out["validation"] = (mnist.x_train_NxD[held_out:], mnist.labels_train_N[held_out:])
    return out | {"test": (mnist.x_test_NxD, mnist.labels_test_N)}


def _mnist_of(run: Run):
    """All of MNIST as `load_data` finds it for `run`, the number of training images the run trained on
    (the first ones), and the index where its validation images begin (the number of images when none)."""
    from mlpjax import data

    recorded = run.setting("data.idx_dir")
    # The run's own folder first: $MNIST_IDX_DIR may name other files than a run trained with data.idx_dir=… read.
    idx_dir = recorded if recorded and os.path.isdir(str(recorded)) else os.environ.get("MNIST_IDX_DIR") or recorded
    data_dir = os.path.expanduser(str(run.setting("data.data_dir")))
    try:
        mnist = data.load_mnist(idx_dir, data_dir)
    except data.DataError as e:
        raise RunError(str(e)) from None
    held_out = mnist.x_train_NxD.shape[0] - int(run.summary.get("validation") or 0)
    return mnist, int(run.summary.get("train_images") or held_out), held_out


def init_params_of(run: Run) -> model.Params:
    """The network's parameters before training, re-created as `mlpjax.train` drew them."""
    seed = run.model_info.get("seed")
    if seed is None:
        raise RunError(f"{os.path.join(run.dir, 'summary.json')}: network {run.network} has no seed")
    init = str(run.setting("model.init"))
    if init not in model.INITS:
        raise RunError(f"{os.path.join(run.dir, '.hydra', 'config.yaml')}: model.init={init!r}: must be one of {', '.join(model.INITS)}")
    return model.init_params(jax.random.key(int(seed)), list(run.summary["sizes"]), init)
