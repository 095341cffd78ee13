"""Checks of command-line overrides before Hydra sees them, so a mistake costs one line.

Hydra would report an unknown key or a badly typed value as several lines of
OmegaConf detail; here each becomes `error: KEY=VALUE: WHAT IS ALLOWED` and exit code 2.
The composed config is checked again in full (`config.validate`) when a job starts.
"""

from __future__ import annotations

import argparse
import os
import sys

from hydra.core.override_parser.overrides_parser import OverridesParser

from mlpjax import config


def _group_options(group: str) -> list[str]:
    return sorted(f[: -len(".yaml")] for f in os.listdir(os.path.join(config.CONF_DIR, group)) if f.endswith(".yaml"))


# Hydra's flags that take a value (`python -m mlpjax.train --hydra-help`); `--info` takes one
# only from INFO_VALUES. Every other word of the command line that is not a flag is an override.
VALUE_FLAGS = {
    "--cfg",
    "-c",
    "--package",
    "-p",
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
    "--experimental-rerun",
}
INFO_VALUES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


def overrides_of(argv: list[str]) -> list[str]:
    """The overrides in a Hydra command line: `["-m", "--cfg", "job", "seed=1"]` → `["seed=1"]`."""
    overrides, i = [], 0
    while i < len(argv):
        word = argv[i]
        if word in VALUE_FLAGS or (word in ("--info", "-i") and i + 1 < len(argv) and argv[i + 1] in INFO_VALUES):
            i += 2
            continue
        if not word.startswith("-"):
            overrides.append(word)
        i += 1
    return overrides


def _checkable_values(o) -> list:
    """The values of override `o` that can be checked before Hydra: every value of a choice or range
    (sorted, shuffled or not), both ends of an interval, nothing of a glob or a tag's payload; Hydra checks the rest."""
    from hydra.core.override_parser.types import IntervalSweep

    try:
        if not o.is_sweep_override():
            return [o.value()]
        value = o.value()
        if isinstance(value, IntervalSweep):
            return [value.start, value.end]
        return list(o.sweep_iterator())
    except Exception:  # a sweep Hydra cannot enumerate here (glob, …): Hydra's own parser says what is wrong
        return []


def check_overrides(argv: list[str]) -> None:
    """Raise ConfigError for the first override whose key is unknown or whose value is not allowed."""
    try:
        overrides = OverridesParser.create().parse_overrides(overrides_of(argv))
    except Exception:
        return  # a syntax error: Hydra's own message names the override
    groups = {d for d in os.listdir(config.CONF_DIR) if os.path.isdir(os.path.join(config.CONF_DIR, d))}
    for o in overrides:
        key = o.key_or_group
        if key.startswith("hydra") or o.is_delete():
            continue
        values = _checkable_values(o)
        if key in groups:
            allowed = _group_options(key)
            for v in values:
                if v not in allowed:
                    raise config.ConfigError(f"{key}={v!r}: must be one of {', '.join(allowed)} (files in conf/{key}/)")
            continue
        for v in values:
            config.check(key, v)


def one_line_parser(error: type[Exception], **kwargs) -> argparse.ArgumentParser:
    """An ArgumentParser whose mistakes raise `error(message)` (one line), not usage text and exit code 2."""

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            raise error(message)

    return Parser(**kwargs)


def explicit_run_dir(argv: list[str]) -> str | None:
    """The absolute `hydra.run.dir` of a single run whose command line names one without interpolations
    (`hydra.run.dir=D`), else None (a sweep, or the default dated folder)."""
    if "-m" in argv or "--multirun" in argv:
        return None
    for o in overrides_of(argv):
        key, _, value = o.partition("=")
        if key.lstrip("+") == "hydra.run.dir" and value and "${" not in value:
            return os.path.abspath(value.strip("'\""))  # as Hydra reads it: no ~ expansion
    return None


def one_line_errors(command, user_errors: tuple[type[Exception], ...]) -> int:
    """Run `command()`; a user's mistake (`user_errors`, or a file that cannot be read or written)
    becomes one line `error: …` on stderr and exit code 2. Returns the exit code."""
    try:
        command()
    except user_errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # e.g. an --out that cannot be written
        print(f"error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 2
    return 0


def preflight(argv: list[str]) -> None:
    """`check_overrides`, ending the process with one line on stderr and exit code 2."""
    try:
        check_overrides(argv)
    except config.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
