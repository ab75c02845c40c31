#!/usr/bin/env bash
# The GPU check, in under 10 minutes on one GPU: generation µs/jet at the best batch (N=30 and N=150;
# fp32, bf16, bf16 + torch.compile), training jets/s per plugin (fp32, bf16-mixed, compiled) and a short
# `pcgen compare`. Writes benchmarks/results/gpu_check/gpu_check.md (tables for docs/results.md) and .json.
#
#   benchmarks/gpu_check.sh                   # on a GPU
#   benchmarks/gpu_check.sh --device cpu      # the same steps, CPU-sized (checks the script end to end)
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/gpu_env.sh
DEVICE=cuda
OUT=benchmarks/results/gpu_check
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "unknown option $1 (use --device cuda|cpu, --out DIR)" >&2; exit 2 ;;
  esac
done
SMALL=()
[ "$DEVICE" = cpu ] && SMALL=(--small)
export PCGEN_CACHE=${PCGEN_CACHE:-$HOME/.cache/pcgen}
start=$(date +%s)
"$PY" benchmarks/gpu_check.py --device "$DEVICE" --out "$OUT" "${SMALL[@]}"
echo "gpu_check: $(( $(date +%s) - start )) s on $DEVICE; tables in $OUT/gpu_check.md"
