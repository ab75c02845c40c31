#!/usr/bin/env bash
# Trains the seed models on one GPU, all seven side by side, in about 9 minutes in all (6.5 minutes of
# budget per run, evaluations included, plus start-up and packing); writes summary.md / summary.json
# and the runs (slim float16 checkpoints, TensorBoard logs, metrics) as runs.tar.partNN under $OUT.
#
#   benchmarks/gpu_train.sh [--minutes 6.5] [--plugins igapt,mdma]      # on a GPU machine
#   benchmarks/gpu_train.sh --device cpu --minutes 0.5 --plugins igapt  # the same steps, end to end, on a CPU
#
# On a machine with the project's .venv it uses that; on a bare GPU image, what benchmarks/gpu_env.sh
# sets up (carried wheels, the source tree, the training jets copied into .gpu/cache).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu_train}
source benchmarks/gpu_env.sh
"$PY" benchmarks/gpu_train.py --out "$OUT" "$@"
