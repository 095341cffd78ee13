"""What a result was produced with: package versions, JAX backend and devices, git state, command."""

from __future__ import annotations

import copy
import functools
import importlib.metadata
import os
import platform
import subprocess
import sys

import jax

PACKAGES = ("mlpjax", "jax", "jaxlib", "optax", "numpy", "tensorflow-datasets", "hydra-core", "omegaconf", "orbax-checkpoint")


def _git(*args: str, cwd: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def record(repo_dir: str) -> dict:
    """A JSON-able description of this process's software, hardware and command line, as it was when
    first asked (once per process: a sweep's jobs share it; two git commands cost 10 ms a job)."""
    return copy.deepcopy(_record(repo_dir))


@functools.cache
def _record(repo_dir: str) -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    commit = _git("rev-parse", "HEAD", cwd=repo_dir)
    status = _git("status", "--porcelain", "--untracked-files=no", cwd=repo_dir)
    return {
        "python": platform.python_version(),
        "packages": versions,
        "backend": jax.default_backend(),
        "devices": [f"{d.platform}:{d.device_kind}" for d in jax.devices()],
        "host": platform.node(),
        "git_commit": commit,
        "git_dirty": None if status is None else bool(status),
        "command": [sys.executable, *sys.argv],
        "xla_flags": os.environ.get("XLA_FLAGS"),
    }
