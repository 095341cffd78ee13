"""Aggregate a sweep of `mlpjax.train` runs: `python -m mlpjax.report DIR`.

DIR is a Hydra sweep dir (`multirun/…`, one sub-folder per job) or a single run dir.
Every job folder (one holding `.hydra/`, `summary.json`, `metrics.jsonl` or `error.txt`)
is read; one that has no readable `summary.json` is a FAILED job and is listed as such,
with what it left (`error.txt`, the last lines of its log, the epochs in `metrics.jsonl`).

Every choice is made on the validation split when the jobs held one out (`data.validation`),
and only then is the test set read: the best seed of a configuration, the best (batch, η) of
an activation and hidden layers, the η of the learning curves. Without a validation split the
choices fall back to the test set, and report.md says so.

Writes into DIR:
  report.csv            one row per configuration: activation, hidden, batch size, learning
                        rate (and any other setting the sweep varied); seeds; mean ± std of
                        validation accuracy (when held out), test accuracy and final train cost
                        over the networks that did not diverge; test min–max; best and worst
                        seed (chosen on validation); diverged; fraction at chance; networks that
                        are candidates / show negative curvature / still descend after SGD and after
                        the float32 polish (`minima.kind`; no verified minima: `landscape critical`
                        verifies) with the median ‖∇C‖, λ_min, λ_max; the end-point analysis
                        (`landscape.analyze_group`) averaged over seeds; failed jobs as rows
                        with status `failed`
  networks.csv          one row per network: its settings, seed, every number of summary.json
                        (stationary points before/after the polish and their kind, minima keys)
  differences.csv       (sigmoid and ReLU both present) sigmoid − ReLU at equal hidden, batch
                        and η, paired by seed: mean, std, 95% paired t-interval, paired t and
                        exact sign-flip p-values, 95% BCa bootstrap interval (n ≥ 10), all scipy.stats
  report.md             the selection on validation, the paired differences, the checked
                        minima, the table, the failed jobs, the plots with one-line captions
  accuracy_vs_lr.png    every network's validation (or test) accuracy and the median, against η
  learning_curves.png   validation (or test) error per epoch (log) at the η chosen on validation
  cost_spread.png       every network's final train cost against η
  sharpness_vs_lr.png   (with minima) sharpness against η, both activations, with the 2/η line
  sharpness_vs_cost.png (with minima) sharpness against final train cost, every network
  sharpness_vs_batch.png (with minima) sharpness against batch size at each η
The markdown table is also printed. As a Hydra callback (`ReportCallback`), it runs on the
sweep dir when a multirun ends. Errors (no DIR, no job in it) are one line and exit code 2.
"""

from __future__ import annotations

import os
import sys

from mlpjax.report.figures import plot_all
from mlpjax.report.jobs import OUTPUTS, PLOTS, ReportError, find_jobs, read_job
from mlpjax.report.markdown import markdown_table, write_markdown
from mlpjax.report.stats import differences, paired_difference
from mlpjax.report.table import _write_csv, aggregate, network_columns, select_best, write_differences_csv, write_report_csv

__all__ = [
    "OUTPUTS",
    "PLOTS",
    "ReportCallback",
    "ReportError",
    "aggregate",
    "find_jobs",
    "main",
    "paired_difference",
    "read_job",
    "report",
    "select_best",
]

# --------------------------------------------------------------------------- entry points


def report(root: str, quiet: bool = False) -> dict:
    """Read every job under `root`, write the report files into it; returns what was written.

    Raises ReportError when `root` is not a folder or holds no job.
    """
    if not os.path.isdir(root):
        raise ReportError(f"{root}: no such directory")
    job_dirs = find_jobs(root)
    if not job_dirs:
        raise ReportError(f"{root}: no job folders in it (none holds .hydra/, summary.json, metrics.jsonl or error.txt)")
    jobs = [read_job(d, root) for d in job_dirs]
    sweep = aggregate(jobs)
    diffs = differences(sweep)
    try:
        for name in OUTPUTS:  # files of an earlier report that this one would not write again
            if (name.endswith(".png") or name == "differences.csv") and os.path.exists(os.path.join(root, name)):
                os.remove(os.path.join(root, name))
        write_report_csv(os.path.join(root, "report.csv"), sweep)
        _write_csv(os.path.join(root, "networks.csv"), network_columns(sweep), sweep.nets)
        if diffs:
            write_differences_csv(os.path.join(root, "differences.csv"), sweep, diffs)
        plots, legends = plot_all(root, sweep)
        table = markdown_table(sweep)
        write_markdown(os.path.join(root, "report.md"), root, sweep, table, diffs, plots)
    except OSError as e:
        raise ReportError(f"{root}: cannot write the report: {e.strerror or e}") from None
    pngs = [name for name, _ in plots]
    if not quiet:
        print(table)
        failed = [j for j in jobs if j["status"] == "failed"]
        for j in failed:
            print(f"FAILED job {j['name']}: {j['reason']}")
        print(
            f"report: {len(jobs)} jobs ({len(failed)} failed), {len(sweep.rows)} configurations, {len(sweep.nets)} networks, "
            f"choices on {sweep.split} -> {os.path.join(root, 'report.md')}, report.csv, networks.csv"
            + (", differences.csv" if diffs else "")
            + (", " + ", ".join(pngs) if pngs else "")
        )
    return {
        "jobs": jobs,
        "rows": sweep.rows,
        "pngs": pngs,
        "extras": sweep.extras,
        "minima_cols": sweep.minima_cols,
        "sweep": sweep,
        "differences": diffs,
        "legends": legends,
    }


try:
    from hydra.experimental.callback import Callback
except ImportError:  # Hydra absent: the command line still works
    Callback = object  # type: ignore[misc,assignment]


class ReportCallback(Callback):
    """Hydra callback: writes the report into the sweep dir when a multirun ends.

    In the config: `hydra.callbacks.report: {_target_: mlpjax.report.ReportCallback}`.
    A failure here is printed as one line and does not fail the sweep.
    """

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = config.hydra.sweep.dir
        try:
            report(sweep_dir)
        except Exception as e:  # the sweep itself is done; its results are on disk
            print(
                f"report: could not write the report for {sweep_dir}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                file=sys.stderr,
            )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(
            "usage: python -m mlpjax.report DIR   (a sweep dir of mlpjax.train, e.g. multirun/2025-01-01/12-00-00)",
            file=sys.stderr if len(argv) != 1 else sys.stdout,
        )
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    try:
        report(argv[0])
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
