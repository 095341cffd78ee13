#!/usr/bin/env bash
# The experiment from nothing (wall times on the 2-core machine: README.md):
#   MNIST_IDX_DIR=../shared/data/mnist bash experiments/sigmoid_vs_relu/reproduce.sh [WORK_DIR]
# 1. the sweep (48 jobs, 5,760 networks); 2. λ and each activation's (batch, η) per layer size taken from the
# sweep's report by critical_points.py, every seed through `landscape critical`; 3. the small files copied
# here without machine paths, and the report rebuilt from them.
# WORK_DIR (default multirun/sigmoid_vs_relu_reproduce) keeps the full runs, parameters included.
#   bash experiments/sigmoid_vs_relu/reproduce.sh --check [WORK_DIR]
# re-runs one job and one critical point and compares them with the committed numbers (check.py: tolerances).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
if [ "${1:-}" = "--check" ]; then
  make setup
  exec $PY experiments/sigmoid_vs_relu/check.py ${2:+"$2"}
fi
WORK="${1:-multirun/sigmoid_vs_relu_reproduce}"
make setup
$PY -m mlpjax.train -m +experiment=sigmoid_vs_relu hydra.sweep.dir="$WORK/sweep"
# --l2 1e-3: the λ used (the validation rule gives none: README.md, "λ").
$PY experiments/sigmoid_vs_relu/critical_points.py "$WORK/sweep" "$WORK/critical" --l2 1e-3
$PY experiments/sigmoid_vs_relu/collect.py "$WORK"
