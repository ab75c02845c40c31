#!/usr/bin/env bash
# Creates .venv and installs pcgen, its bundled plugins and the test tools into it. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv

# pip, minus the noise of this machine's unused local package folders; keeps pip's exit status.
pip_install() { .venv/bin/python -m pip install --quiet "$@" 2> >(grep -v "is ignored: it is neither" >&2); }

pip_install --upgrade pip
# The CPU build of torch first: a bare `torch` requirement would otherwise pull a multi-GB CUDA build.
pip_install -c constraints.txt torch
pip_install -r requirements.txt
echo "installed: $(.venv/bin/pcgen --version)"
