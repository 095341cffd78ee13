#!/usr/bin/env bash
# Everything in experiments/sigmoid_vs_relu/, from nothing, in one command (measured wall time: README.md):
#   MNIST_IDX_DIR=../shared/data/mnist bash experiments/sigmoid_vs_relu/reproduce.sh [WORK_DIR]
# WORK_DIR (default multirun/sigmoid_vs_relu_reproduce) keeps the full sweeps, parameters included.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK="${1:-multirun/sigmoid_vs_relu_reproduce}"
make setup
PY=.venv/bin/python
$PY -m mlpjax.train -m +experiment=sigmoid_vs_relu hydra/launcher=joblib_cpu hydra.sweep.dir="$WORK/sweep"
$PY -m mlpjax.train -m +experiment=series_net_best hydra/launcher=joblib_cpu hydra.sweep.dir="$WORK/series_net_best"
# A wider net at each activation's chosen (batch, η), for the geometry across widths (parameters not committed).
$PY -m mlpjax.train +experiment=sigmoid_vs_relu model.activation=sigmoid 'model.hidden=[64,64]' data.batch_size=10 'optim.lr=[1]' train.analyze=false hydra.run.dir="$WORK/width/sigmoid"
$PY -m mlpjax.train +experiment=sigmoid_vs_relu model.activation=relu 'model.hidden=[64,64]' data.batch_size=10 'optim.lr=[0.1]' train.analyze=false hydra.run.dir="$WORK/width/relu"
$PY -m mlpjax.walk --out experiments/sigmoid_vs_relu/walk
$PY experiments/sigmoid_vs_relu/collect.py "$WORK"
