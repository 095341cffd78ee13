#!/usr/bin/env bash
# The README's GPU measurements, in one run on a machine with one NVIDIA GPU:
#
#     MNIST_IDX_DIR=… bash benchmarks/gpu_checks.sh OUT_DIR
#
# 1. the group benchmark (`benchmarks/epoch_speed.py`): model-epochs per second at mini-batch
#    128 and 1024, groups of 1 to 16,384 networks, against a jitted-step JAX loop and eager
#    PyTorch on the same GPU;
# 2. a 1,024-job Hydra sweep through the grouped launcher (seed=0..127 × 8 learning rates,
#    batch 128, 3 epochs), timed from process start to the report on disk, then every job
#    checked: its own summary.json with exactly its one network, its train cost finite.
# Each step has its own time limit and log in OUT_DIR, so one failing step leaves the others'
# results. On the device machine of the README: about 9 minutes (3.5 for the benchmark, 5 for the sweep).
# A smoke test on a CPU (timings not for quoting):
#     BENCH_GROUPS=1,8 GROUPS_PER_MODEL=8 SEEDS=2 EXTRA=--quick bash benchmarks/gpu_checks.sh OUT_DIR
set -u -o pipefail
out=${1:?usage: bash benchmarks/gpu_checks.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."  # the repository root: python -m mlpjax.train, benchmarks/
export TFDS_DATA_DIR=${TFDS_DATA_DIR:-$(mktemp -d)}
export PYTHONUNBUFFERED=1

python3 -c "import jax, jaxlib, numpy, hydra, optax; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, 'numpy', numpy.__version__, 'hydra', hydra.__version__, 'optax', optax.__version__); print(jax.devices())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

run() { [[ " ${STEPS:-1 2} " == *" $1 "* ]]; }  # STEPS="2": the sweep alone

if run 1; then
echo "== 1. group benchmark"
timeout 240 python3 benchmarks/epoch_speed.py --methods project,jax_loop,torch --batches 128,1024 \
    --groups "${BENCH_GROUPS:-1,64,1024,4096,16384}" --per-model-groups "${GROUPS_PER_MODEL:-1024}" --eval-examples 1000 ${EXTRA:-} --out "$out/epoch_speed.json" \
    2>&1 | tee "$out/epoch_speed.log"
echo "benchmark exit $? (124: its time limit)"
fi

if run 2; then
echo "== 2. the sweep seed=0..$((${SEEDS:-128} - 1)) x 8 learning rates, grouped launcher"
sweep=$(mktemp -d)/sweep
seeds=$(seq -s, 0 $((${SEEDS:-128} - 1)))
start=$(date +%s.%N)
timeout 480 python3 -m mlpjax.train -m "seed=$seeds" optim.lr=0.05,0.1,0.2,0.5,1,2,3,5 data.batch_size=128 \
    train.epochs=3 hydra/callbacks=report "hydra.sweep.dir=$sweep" >"$out/sweep.log" 2>&1
rc=$?
end=$(date +%s.%N)
grep -v -P "\[HYDRA\] \t#" "$out/sweep.log" | tail -n 24
echo "sweep exit $rc, wall time process start to exit: $(python3 -c "print(f'{$end - $start:.1f}')") s"
python3 - "$sweep" <<'EOF'
import json, math, os, sys
sweep = sys.argv[1]
if not os.path.isdir(sweep):
    sys.exit(f"no sweep dir {sweep}: the sweep did not start")
jobs = sorted(int(n) for n in os.listdir(sweep) if n.isdigit())
bad, costs = [], []
for n in jobs:
    path = os.path.join(sweep, str(n), "summary.json")
    if not os.path.exists(path):
        bad.append((n, "no summary.json"))
        continue
    with open(path) as f:
        models = json.load(f)["models"]
    if len(models) != 1 or not math.isfinite(models[0]["train_cost"]):
        bad.append((n, f"{len(models)} networks" if len(models) != 1 else "train cost not finite"))
        continue
    costs.append(models[0]["train_cost"])
print(f"job dirs: {len(jobs)}; with one finite network each: {len(costs)}; bad: {bad[:5]}")
if costs:
    print(f"final train cost over the jobs: min {min(costs):.4f}, median {sorted(costs)[len(costs) // 2]:.4f}, max {max(costs):.4f}")
print("report.md on disk:", os.path.exists(os.path.join(sweep, "report.md")))
EOF
cp "$sweep/report.md" "$out/sweep_report.md" 2>/dev/null
fi
