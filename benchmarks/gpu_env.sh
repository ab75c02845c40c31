# Sourced by the GPU scripts (gpu_train.sh, gpu_check.sh): sets PY to a Python that can import pcgen and
# its plugins. With the project's .venv that is .venv/bin/python. On a bare GPU image with torch (the
# lent H200s: Python 3.12, no network) it installs the wheels carried in .gpu/whl (pydantic and its
# parts, nflows; docs/results.md gives the download commands), makes the source tree importable with
# its entry points (benchmarks/source_tree_env.py), and reads data sets from .gpu/cache (copies of
# files from ~/.cache/pcgen), since Pythia cannot run there.
if [ -x .venv/bin/python ]; then
  PY=${PYTHON:-.venv/bin/python}
else
  PY=${PYTHON:-python3}
  SITE=/tmp/pcgen-site
  if compgen -G ".gpu/whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .gpu/whl/*.whl
  fi
  PYTHONPATH="$("$PY" benchmarks/source_tree_env.py "$SITE")${PYTHONPATH:+:$PYTHONPATH}"
  export PYTHONPATH
fi
if [ -d .gpu/cache ]; then export PCGEN_CACHE=$PWD/.gpu/cache; fi
export PYTHONUNBUFFERED=1
