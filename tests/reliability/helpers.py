"""Helpers of the reliability tests: `pcgen run` arguments, `pcgen` as a real process, error lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_args(jets_file: Path, run_dir: Path, name: str, steps: int, plugin: str = "igapt", **sets: Any) -> list[str]:
    """Arguments of a short, quiet `pcgen run` on ``jets_file`` (``sets``: extra ``--set`` values)."""
    values = {
        "data.dataset": '"file"', "data.path": f'"{jets_file}"', "run_dir": f'"{run_dir}"', "name": f'"{name}"',
        "train.max_steps": steps, "train.batch_size": 32, "train.time_budget_minutes": 0,
        "train.eval_every": 10_000, "train.checkpoint_every": 10_000, "eval.num_jets": 100, "eval.efp": "false",
        **sets,
    }
    args = ["run", "--plugin", plugin, "--quiet"]
    for key, value in values.items():
        args += ["--set", f"{key}={value}"]
    return args


def pcgen_process(*args: str, **popen: Any) -> subprocess.Popen:
    """`pcgen` as a real process (``python -m pcgen``), stdout and stderr captured as text."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "pcgen", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **popen)


def one_line(text: str) -> str:
    """The error line of a command's output (rich may wrap it in a narrow terminal)."""
    return " ".join(line.strip() for line in text.splitlines())
