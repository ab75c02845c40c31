#!/usr/bin/env bash
# Trains the seed models on one GPU, all seven side by side, in about 9 minutes in all (6.5 minutes of
# budget per run, evaluations included, plus start-up and packing); writes summary.md / summary.json
# and the runs (slim float16 checkpoints, TensorBoard logs, metrics) as runs.tar.partNN under $OUT.
#
#   benchmarks/gpu_train.sh [--minutes 6.5] [--plugins igapt,mdma]      # on a GPU machine
#   benchmarks/gpu_train.sh --device cpu --minutes 0.5 --plugins igapt  # the same steps, end to end, on a CPU
#
# On a machine with the project's .venv it uses that. On a bare GPU image with torch (the lent H200s:
# Python 3.12, no network) it installs the wheels in .gpu/whl (pydantic and its parts, nflows: see
# docs/results.md for the download command), makes the source tree importable with its entry points
# (benchmarks/source_tree_env.py) and reads the training jets from .gpu/cache (a copy of the
# 50,000-jet file from ~/.cache/pcgen), since Pythia cannot run there.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu_train}
if [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
else
  PY=python3
  SITE=/tmp/pcgen-site
  if compgen -G ".gpu/whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .gpu/whl/*.whl
  fi
  PYTHONPATH="$("$PY" benchmarks/source_tree_env.py "$SITE")${PYTHONPATH:+:$PYTHONPATH}"
  export PYTHONPATH
fi
if [ -d .gpu/cache ]; then export PCGEN_CACHE=$PWD/.gpu/cache; fi
export PYTHONUNBUFFERED=1
"$PY" benchmarks/gpu_train.py --out "$OUT" "$@"
