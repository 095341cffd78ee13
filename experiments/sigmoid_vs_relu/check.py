"""`reproduce.sh --check`: one job of the sweep and one critical point again, compared with the committed numbers.

    python experiments/sigmoid_vs_relu/check.py [WORK_DIR]

Re-trains job 1 of sweep/ (sigmoid [4,4], batch 10, λ 1e-3) as the sweep trained it: in its set, with job 13
(the same but He's initialization), 240 networks as one program (about 30 s on 2 cores), from their committed
`.hydra/overrides.yaml`; then runs `landscape critical` on the network of critical/sigmoid_4-4's first point.
(Job 1 alone is another program, 120 networks wide: float32 rounds otherwise, and over 4,000 SGD steps at η up
to 10 a few networks end far apart.) Passes when
- every network's final train cost is within 1e-4 relative of summary.json's (float32 SGD: the same bits on the
  machine that made them; another CPU's float32 may differ, and can grow as above), and
- the critical point has the same verdict, and its cost f is within 1e-6 relative of critical.json's.
Prints each comparison; exit code 1 on any failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
JOBS = ("1", "13")  # one set: they differ only in model.init
TRAIN_RTOL, CRITICAL_RTOL = 1e-4, 1e-6


def main(argv=None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    work = os.path.abspath(args[0]) if args else tempfile.mkdtemp(prefix="sigmoid_vs_relu_check_")
    with open(os.path.join(HERE, "sweep", JOBS[0], ".hydra", "overrides.yaml")) as f:
        overrides = [o for o in yaml.safe_load(f) if not o.startswith("model.init=")]
    committed = []
    for job in JOBS:
        with open(os.path.join(HERE, "sweep", job, "summary.json")) as f:
            committed.append(json.load(f))
    with open(os.path.join(HERE, "critical", "sigmoid_4-4", "critical.json")) as f:
        point = json.load(f)["networks"][0]
    sweep, py = os.path.join(work, "sweep"), sys.executable
    cmd = [py, "-m", "mlpjax.train", "-m", *overrides, "model.init=lecun,he", f"hydra.sweep.dir={sweep}"]
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    ok_train = True
    for k, (job, old) in enumerate(zip(JOBS, committed)):
        with open(os.path.join(sweep, str(k), "summary.json")) as f:
            again = json.load(f)
        worst = max(abs(a["train_cost"] - b["train_cost"]) / abs(b["train_cost"]) for a, b in zip(again["models"], old["models"]))
        ok = len(again["models"]) == len(old["models"]) and worst <= TRAIN_RTOL
        ok_train &= ok
        print(
            f"job {job}: {len(again['models'])} networks, largest relative difference in final train cost {worst:.1e} (≤ {TRAIN_RTOL:g}): {'ok' if ok else 'FAILED'}"
        )
    run = os.path.join(sweep, "0")
    out = os.path.join(work, "critical")
    cmd = [py, "-m", "mlpjax.landscape", "critical", run, "--networks", str(point["run_network"]), "--budget", "60", "--out", out]
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(out, "critical.json")) as f:
        found = json.load(f)["networks"][0]
    rel = abs(found["cost"] - point["cost"]) / abs(point["cost"])
    ok_point = found["verdict"] == point["verdict"] and rel <= CRITICAL_RTOL
    print(
        f"critical point of network {point['run_network']} (seed {point['seed']}): {found['verdict']} (committed: {point['verdict']}), "
        f"f {found['cost']:.10g} against {point['cost']:.10g}, relative difference {rel:.1e} (≤ {CRITICAL_RTOL:g}): {'ok' if ok_point else 'FAILED'}"
    )
    return 0 if ok_train and ok_point else 1


if __name__ == "__main__":
    sys.exit(main())
