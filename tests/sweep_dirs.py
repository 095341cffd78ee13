"""A sweep's folders as the tests read them, and a sweep of `python -m mlpjax.train -m` in the test's process."""

import json


def sweep(train_cli_here, sweep_dir, *args):
    """`python -m mlpjax.train -m ARGS… hydra.sweep.dir=SWEEP_DIR`, in this process (conftest's `train_cli_here`)."""
    return train_cli_here("-m", *args, f"hydra.sweep.dir={sweep_dir}")


def summary(job_dir):
    """A job's summary.json, or None if it has none."""
    path = job_dir / "summary.json"
    return json.loads(path.read_text()) if path.exists() else None


def jobs(sweep_dir):
    """The job folders of a sweep (0, 1, …), in job order."""
    return sorted((p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
