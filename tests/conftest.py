"""Shared fixtures: toy jets, a registry with a toy data set, quick run configs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

# Tiny tensors: one thread is fastest, and OpenMP threads spinning against a busy machine are not.
torch.set_num_threads(1)

from pcgen.plugins import Registry, load_registry  # noqa: E402
from pcgen.testing import ToyDataPlugin, quick_overrides, toy_jets  # noqa: E402, F401 - shared with the tests


@pytest.fixture(scope="session")
def registry() -> Registry:
    """Installed plugins plus the toy data set."""
    return load_registry(extra_plugins=[ToyDataPlugin()])
