"""Library chatter muted around a block: absl's INFO lines (tfds, orbax) and Python warnings."""

from __future__ import annotations

import contextlib
import logging
import warnings


@contextlib.contextmanager
def quiet(absl_level: int = logging.WARNING, python_warnings: bool = True):
    """Inside the block only: absl logs below `absl_level` are dropped, and, unless
    `python_warnings`, Python warnings too."""
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(absl_level)
    try:
        with warnings.catch_warnings():
            if not python_warnings:
                warnings.simplefilter("ignore")
            yield
    finally:
        absl_logger.setLevel(level)
