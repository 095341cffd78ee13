"""Shared fixtures: the real MNIST from $MNIST_IDX_DIR, prepared once per test session."""

import os

import pytest


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
    """A tfds data_dir for this session only."""
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="session")
def mnist(mnist_idx_dir, tfds_dir):
    """The real MNIST as a `mlpjax.data.Mnist`, loaded through tfds once per session."""
    from mlpjax.data import load_mnist  # here, so test files that never load data skip tfds

    return load_mnist(mnist_idx_dir, tfds_dir)
