"""One process per output dir: an OS file lock held for as long as a process writes into the dir.

`hold(DIR)` takes `DIR/.lock` with `filelock` (fcntl/flock on POSIX, released by the OS when the process
ends, however it ends) and writes who holds it to `DIR/.lock.holder.json` (pid, host, since, command).
A second process gets `DirInUse`, whose one-line message names the holder, and writes nothing. A holder
file left by a process that is gone (killed: its OS lock went with it) is taken over, with a line saying
so. Within one process the lock is re-entrant (a run dir held by `train.main` and again by its job).

On a file system whose locks do not work across machines (some NFS mounts without a lock daemon), two
processes on two hosts may both get the lock; `filelock` then falls back to its soft lock (the lock file's
existence), which a killed process leaves behind — delete DIR/.lock by hand if its holder is gone.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import sys

import filelock

LOCK, HOLDER = ".lock", ".lock.holder.json"


class DirInUse(Exception):
    """Another process holds the output dir; the message is one line."""


def _read_holder(directory: str) -> dict | None:
    try:
        with open(os.path.join(directory, HOLDER)) as f:
            holder = json.load(f)
        return holder if isinstance(holder, dict) else None
    except (OSError, ValueError):
        return None


def _describe(holder: dict | None) -> str:
    if not holder:
        return "another process (no holder file)"
    return f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')} ({holder.get('command', '?')})"


@contextlib.contextmanager
def hold(directory: str):
    """Hold `directory` (created if need be) for this process; `DirInUse` if another process holds it."""
    os.makedirs(directory, exist_ok=True)
    lock = filelock.FileLock(os.path.join(directory, LOCK), timeout=0, is_singleton=True)
    outermost = not lock.is_locked
    try:
        lock.acquire()
    except filelock.Timeout:
        raise DirInUse(
            f"{directory} is in use by {_describe(_read_holder(directory))}; wait for it to end or use another output dir"
        ) from None
    try:
        if outermost:
            previous = _read_holder(directory)
            if previous and previous.get("pid") != os.getpid():
                print(f"taking over {directory}: its last holder, {_describe(previous)}, is gone", file=sys.stderr, flush=True)
            me = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:300],
            }
            with open(os.path.join(directory, HOLDER + ".tmp"), "w") as f:
                json.dump(me, f)
            os.replace(os.path.join(directory, HOLDER + ".tmp"), os.path.join(directory, HOLDER))
        yield
    finally:
        if outermost:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(directory, HOLDER))
        lock.release()
