"""Shared fixtures: toy jets, a registry with a toy data set, quick run configs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from toydata import toy_jets  # noqa: E402

# Tiny tensors: one thread is fastest, and OpenMP threads spinning against a busy machine are not.
torch.set_num_threads(1)

from pcgen import DatasetSpec, hookimpl  # noqa: E402
from pcgen.plugins import Registry, load_registry  # noqa: E402


class ToyDataPlugin:
    """A data-set plugin registering 'toy' jets, exactly as a third party would."""

    __name__ = "toy-data"

    @hookimpl
    def pcgen_register_datasets(self) -> list[DatasetSpec]:
        def load(config: Any, progress: bool = True):  # noqa: ANN202
            return toy_jets(config.num_jets, config.num_particles, seed=config.seed)

        return [DatasetSpec(name="toy", load=load, description="synthetic jets for tests")]


@pytest.fixture(scope="session")
def registry() -> Registry:
    """Installed plugins plus the toy data set."""
    return load_registry(extra_plugins=[ToyDataPlugin()])


def quick_overrides(steps: int = 30, **extra: Any) -> list[str]:
    """``--set`` strings for a short, deterministic CPU run on toy data."""
    sets = {
        "data.dataset": '"toy"', "data.num_jets": 400, "train.max_steps": steps, "train.batch_size": 32,
        "train.time_budget_minutes": 0, "train.eval_every": 10_000, "train.checkpoint_every": 10_000,
        "eval.num_jets": 100, "eval.efp": "false", "recipe.warmup_steps": 5,
    }
    sets.update(extra)
    return [f"{k}={v}" for k, v in sets.items() if v is not None]
