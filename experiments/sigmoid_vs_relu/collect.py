"""Copy what the experiment's runs left into this folder, small enough to commit and free of machine paths,
and rebuild the report from the copies.

    python experiments/sigmoid_vs_relu/collect.py WORK_DIR

WORK_DIR holds `sweep/` (+experiment=sigmoid_vs_relu) and `critical/` (critical_points.py). Of each job
this copies `summary.json`, `.hydra/config.yaml` and `.hydra/overrides.yaml` (what `python -m mlpjax.report`
reads; `metrics.jsonl`, 21 MB for the 48 jobs, and `params/`, 155 MB, stay in WORK_DIR, so the report's
learning curves are not drawn from the committed files). Of `critical/`: selection.json and each
configuration's critical.json, critical.png, spectra.npz and params_critical/ (the points, float64: what barriers.py reads). Absolute paths are written relative to the
repository (`environment.command`'s interpreter as `python`); tests/test_layout.py checks none is left.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
JOB_FILES = ("summary.json", ".hydra/config.yaml", ".hydra/overrides.yaml")
CRITICAL_FILES = (
    "selection.json",
    "*/critical.json",
    "*/critical.png",
    "*/spectra.npz",
    "*/part*/critical.json",
    "*/part*/critical.png",
    "*/part*/spectra.npz",
    "*/params_critical",
    "*/part*/params_critical",
)


def relative(obj, roots: list[str]):
    """`obj` (parsed JSON) with every string that starts with one of `roots` made relative to it."""
    if isinstance(obj, dict):
        return {k: relative(v, roots) for k, v in obj.items()}
    if isinstance(obj, list):
        return [relative(v, roots) for v in obj]
    if isinstance(obj, str):
        for root in roots:
            if obj.startswith(root + os.sep):
                return os.path.relpath(obj, root)
        if obj == sys.executable or obj.endswith(os.sep + "python"):
            return "python"
    return obj


def copy(src: str, dst: str, roots: list[str]) -> None:
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.isdir(src):  # params_critical/: an orbax folder, copied whole
        shutil.copytree(src, dst, dirs_exist_ok=True)
        marker = os.path.join(dst, "commit_success.txt")  # orbax writes the folder's absolute path into it
        if os.path.exists(marker):
            with open(marker) as f:
                text = f.read()
            for root in roots:
                text = text.replace(root + os.sep, "")
            with open(marker, "w") as f:
                f.write(text)
    elif src.endswith(".json"):
        with open(src) as f:
            obj = relative(json.load(f), roots)
        with open(dst, "w") as f:
            json.dump(obj, f, indent=1)
    else:
        shutil.copy(src, dst)


def main(argv=None) -> int:
    work = os.path.abspath((argv or sys.argv[1:])[0])
    run_root = os.path.dirname(os.path.dirname(work)) if os.path.basename(os.path.dirname(work)) == "multirun" else REPO
    roots = sorted({REPO, run_root, os.path.dirname(REPO)}, key=len, reverse=True)
    for job in sorted(glob.glob(os.path.join(work, "sweep", "*", "summary.json"))):
        job_dir = os.path.dirname(job)
        for name in JOB_FILES:
            copy(os.path.join(job_dir, name), os.path.join(HERE, "sweep", os.path.basename(job_dir), name), roots)
    for pattern in CRITICAL_FILES:
        for src in glob.glob(os.path.join(work, "critical", pattern)):
            copy(src, os.path.join(HERE, "critical", os.path.relpath(src, os.path.join(work, "critical"))), roots)
    subprocess.run([sys.executable, "-m", "mlpjax.report", os.path.join("experiments", "sigmoid_vs_relu", "sweep")], cwd=REPO, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
