#!/usr/bin/env bash
# The test command: the whole suite, on the CPU, from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PCGEN_CACHE="${PCGEN_CACHE:-$PWD/.pytest_cache/pcgen-data}"
exec .venv/bin/python -m pytest -q "$@"
