"""Helpers of the reliability tests: `pcgen run` arguments, `pcgen` as a real process, error lines."""

from __future__ import annotations

import os
import shutil
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


def pcgen_process(*args: str, prefix: tuple[str, ...] = (), **popen: Any) -> subprocess.Popen:
    """`pcgen` as a real process (``python -m pcgen``, after the command ``prefix``), output captured as text."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([*prefix, sys.executable, "-m", "pcgen", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **popen)


def without_permission_override() -> tuple[str, ...] | None:
    """A command prefix under which file permissions apply: nothing for a normal user; for root,
    ``setpriv`` dropping the capabilities that let root ignore them; None when that is not possible."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        return None
    prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--")
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    return prefix if probe.returncode == 0 else None


def one_line(text: str) -> str:
    """The error line of a command's output (rich may wrap it in a narrow terminal)."""
    return " ".join(line.strip() for line in text.splitlines())
