#!/usr/bin/env bash
# Creates .venv and installs pcgen, its plugins and the test tools into it. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# The CPU build of torch first: a bare `torch` requirement would otherwise pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet -c constraints.txt torch
.venv/bin/python -m pip install --quiet -r requirements.txt
echo "pcgen installed in .venv ($(.venv/bin/pcgen --version 2>/dev/null || echo '?'))"
