"""Shared fixtures: the real MNIST from $MNIST_IDX_DIR (all of it, or its first examples), and runs of
`mlpjax.train`: as a subprocess (`run_train`: the real process), its command line in this process
(`train_cli_here`: Hydra, launchers, exit codes), or `mlpjax.train.train` on a composed config (`train_here`).

Most runs do not need all of MNIST: they use `small_idx_dir`, the first SMALL_TRAIN training and
SMALL_TEST test images of the real files, prepared once per session.
"""

import contextlib
import gzip
import io
import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hydra.core.hydra_config import HydraConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL_TRAIN, SMALL_TEST = 10_000, 2_000
IDX_NAMES = {  # split -> (images file, labels file): the standard MNIST names
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _session_dir(tmp_path_factory):
    """A folder of this test session that every xdist worker shares (the parent of the workers' own)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory) -> dict:
    """JAX's persistent compilation cache in a folder of this session, for both xdist workers and every
    `python -m mlpjax.train` they start: most runs compile the same programs (XLA compiles are
    most of a short run's time on 2 cores). A cached program is the same compiled code, so it
    changes no result; the folder is new each session, so nothing carries over between sessions.
    (A worker that reads an entry the other is still writing gets JAX's warning and compiles.)"""
    import jax

    cache = {
        "JAX_COMPILATION_CACHE_DIR": str(_session_dir(tmp_path_factory) / "jax_cache"),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }
    jax.config.update("jax_compilation_cache_dir", cache["JAX_COMPILATION_CACHE_DIR"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return cache


@pytest.fixture(scope="session")
def mnist_idx_dir() -> str:
    """Folder with the four MNIST IDX .gz files; skips when $MNIST_IDX_DIR is unset."""
    idx_dir = os.environ.get("MNIST_IDX_DIR")
    if not idx_dir:
        pytest.skip("MNIST_IDX_DIR is not set; point it at the folder with the four MNIST IDX .gz files")
    if not os.path.isdir(idx_dir):
        pytest.fail(f"MNIST_IDX_DIR={idx_dir} is not a directory")
    return idx_dir


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory) -> str:
    """A tfds data_dir for this session only, shared by the xdist workers: a dataset is prepared once for
    both (`mlpjax.data` serializes two processes preparing the same files; test_failures tests that)."""
    path = _session_dir(tmp_path_factory) / "tfds"
    path.mkdir(exist_ok=True)
    return str(path)


@pytest.fixture(scope="session")
def mnist_arrays(mnist_idx_dir):
    """The real MNIST as a `mlpjax.data.Mnist` read straight from the IDX files (no tfds), for tests
    of training that need all of it but not the tfds path (test_data tests that)."""
    from mlpjax.data import Mnist, read_idx

    arrays = {}
    for split, (images, labels) in IDX_NAMES.items():
        images_NxHxW = read_idx(os.path.join(mnist_idx_dir, images))
        arrays[f"x_{split}_NxD"] = images_NxHxW.reshape(len(images_NxHxW), -1).astype(np.float32) / np.float32(255)
        arrays[f"labels_{split}_N"] = read_idx(os.path.join(mnist_idx_dir, labels)).astype(np.int32)
    return Mnist(**arrays, source=f"idx:{mnist_idx_dir}")


def write_idx_gz(path, array_u8: np.ndarray) -> None:
    """A uint8 array as a gzipped IDX file: magic 0x0000 08 ndim, big-endian uint32 dims, the bytes."""
    header = bytes([0, 0, 0x08, array_u8.ndim]) + np.array(array_u8.shape, ">u4").tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(header + np.ascontiguousarray(array_u8).tobytes(), compresslevel=1, mtime=0))


@pytest.fixture(scope="session")
def small_idx_dir(mnist_idx_dir, tmp_path_factory) -> str:
    """The first SMALL_TRAIN training and SMALL_TEST test examples of the real MNIST, as four IDX .gz files."""
    from mlpjax.data import read_idx

    out = tmp_path_factory.mktemp("small_mnist")
    for split, n in (("train", SMALL_TRAIN), ("test", SMALL_TEST)):
        for name in IDX_NAMES[split]:
            write_idx_gz(out / name, read_idx(os.path.join(mnist_idx_dir, name))[:n])
    return str(out)


@pytest.fixture(scope="session")
def small_mnist(small_idx_dir, tfds_dir):
    """`small_idx_dir` as a `mlpjax.data.Mnist`; prepared here once, so runs in subprocesses find it ready."""
    from mlpjax.data import load_mnist

    return load_mnist(small_idx_dir, tfds_dir)


@pytest.fixture(scope="session")
def train_env(small_idx_dir, tfds_dir, small_mnist, compilation_cache) -> dict:
    """The environment of a `python -m mlpjax.train` run on the small MNIST."""
    return {"MNIST_IDX_DIR": small_idx_dir, "TFDS_DATA_DIR": tfds_dir} | compilation_cache


@pytest.fixture(scope="session")
def run_train(train_env):
    """`run_train(*overrides, env_extra=None)`: `python -m mlpjax.train OVERRIDES…` on the small MNIST."""

    def run(*overrides, env_extra=None):
        env = dict(os.environ) | train_env | (env_extra or {})
        return subprocess.run(
            [sys.executable, "-m", "mlpjax.train", *overrides], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
        )

    return run


@pytest.fixture(scope="session")
def train_killed(train_env):
    """`train_killed(ready, *argv)`: `python -m mlpjax.train ARGV…` on the small MNIST, SIGKILLed as soon as
    `ready()` is true (polled every 10 ms, for at most 300 s)."""

    def run(ready, *argv):
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlpjax.train", *argv],
            cwd=REPO,
            # It reads the session's compiled programs and writes none: a cache file cut short by the
            # kill would be read back by later runs.
            env=dict(os.environ) | train_env | {"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "1e9"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 300
        while time.time() < deadline and not ready():
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    return run


@pytest.fixture(scope="session")
def train_cli_here(train_env):
    """`train_cli_here(*argv) -> CompletedProcess`: `python -m mlpjax.train ARGV…` on the small MNIST, run
    in this process (`mlpjax.train.main` under that command line and environment, from the repository
    folder), so the programs this worker compiled are not traced and compiled again. For tests of what a
    run writes, and prints through Python (sys.stdout, sys.stderr, logging); the tests of the process itself
    (a kill, the real entry point, nothing else on the stderr of a failed run) use `run_train`."""

    class Captured(io.StringIO):
        def close(self):  # Hydra's logging setup closes every handler, and absl's closes its stream
            pass

    def run(*argv):
        from absl import logging as absl_logging
        from hydra.core.global_hydra import GlobalHydra

        from mlpjax import train

        out, err, code = Captured(), Captured(), 0
        absl = absl_logging.get_absl_handler().python_handler
        argv0, environ, cwd = list(sys.argv), dict(os.environ), os.getcwd()
        handlers, level, absl_stream = logging.root.handlers[:], logging.root.level, absl.stream
        try:
            sys.argv = [os.path.join(REPO, "mlpjax", "train.py"), *argv]
            os.environ.update(train_env)
            os.chdir(REPO)
            absl.stream = err  # it holds pytest's capture of stderr, which it would close
            GlobalHydra.instance().clear()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                train.main()
        except SystemExit as e:  # as the interpreter does: None is 0, a message goes to stderr and is 1
            code = 0 if e.code is None else e.code if isinstance(e.code, int) else 1
            if not isinstance(e.code, (int, type(None))):
                err.write(f"{e.code}\n")
        finally:
            GlobalHydra.instance().clear()
            HydraConfig.instance().cfg = None
            logging.root.handlers[:] = handlers
            logging.root.setLevel(level)
            absl.stream = absl_stream
            sys.argv[:] = argv0
            for key in set(os.environ) | set(environ):  # only what the run changed
                if os.environ.get(key) != environ.get(key):
                    if key in environ:
                        os.environ[key] = environ[key]
                    else:
                        del os.environ[key]
            os.chdir(cwd)
            if "joblib.externals.loky" in sys.modules:  # the joblib launcher's worker processes outlive the sweep
                sys.modules["joblib.externals.loky"].get_reusable_executor().shutdown(wait=True)
        return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture(scope="session")
def train_here(small_idx_dir, tfds_dir, small_mnist):
    """`train_here(out_dir, *overrides) -> summary`: `mlpjax.train.train` in this process on the small MNIST.

    The config is the command line's (same overrides, same resolved values), so a run here and
    one through `run_train` into the same folder are the same run.
    """
    from mlpjax import config, train

    def run(out_dir, *overrides):
        os.makedirs(out_dir, exist_ok=True)
        cfg = config.compose([f"data.idx_dir={small_idx_dir}", f"data.data_dir={tfds_dir}", *overrides])
        return train.train(cfg, str(out_dir))

    return run
