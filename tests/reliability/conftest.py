"""Shared pieces of the reliability tests: a small jet file, `pcgen` in-process and as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from toydata import toy_jets
from typer.testing import CliRunner

from pcgen.cli import app
from pcgen.data.store import write_pointclouds

RUNNER = CliRunner()


@pytest.fixture(scope="session")
def jets_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 toy jets of 30 particles in pcgen's HDF5 format."""
    path = tmp_path_factory.mktemp("data") / "jets.h5"
    write_pointclouds(toy_jets(400, 30, seed=1), path)
    return path


@pytest.fixture(scope="session")
def trained_run(jets_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-step igapt run on ``jets_file`` (read-only for the tests)."""
    folder = tmp_path_factory.mktemp("runs")
    result = RUNNER.invoke(app, run_args(jets_file, folder, "ok", 4))
    assert result.exit_code == 0, result.stderr
    return folder / "ok"


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


@pytest.fixture
def cli() -> Callable[..., Any]:
    """Invoke `pcgen` in this process; returns click's Result (exit_code, stdout, stderr)."""

    def invoke(*args: str) -> Any:
        return RUNNER.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


def pcgen_process(*args: str, **popen: Any) -> subprocess.Popen:
    """`pcgen` as a real process (``python -m pcgen``), stdout and stderr captured as text."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "pcgen", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **popen)


def one_line(text: str) -> str:
    """The error line of a command's output (rich may wrap it in a narrow terminal)."""
    return " ".join(line.strip() for line in text.splitlines())
