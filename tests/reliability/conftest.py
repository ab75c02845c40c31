"""Fixtures of the reliability tests: a small jet file, a finished run, `pcgen` in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from toydata import toy_jets
from typer.testing import CliRunner

from pcgen.cli import app
from pcgen.data.store import write_pointclouds

from .helpers import run_args

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


@pytest.fixture
def cli() -> Callable[..., Any]:
    """Invoke `pcgen` in this process; returns click's Result (exit_code, stdout, stderr)."""

    def invoke(*args: str) -> Any:
        return RUNNER.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke
