#!/usr/bin/env bash
# The test command: the whole suite, on the CPU, from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PCGEN_CACHE="${PCGEN_CACHE:-$PWD/.pytest_cache/pcgen-data}"
# One pytest worker per CPU this process may use, at most 4 (pytest-xdist); a test file stays on one
# worker (--dist loadfile), so a file's session fixtures and its subprocesses are not run twice at once.
workers="${PCGEN_TEST_WORKERS:-$(.venv/bin/python -c 'import os; print(max(1, min(4, len(os.sched_getaffinity(0)))))')}"
exec .venv/bin/python -m pytest -q -n "$workers" --dist loadfile "$@"
