"""Small synthetic jets for fast tests (physics-shaped, not physics), registered as data set ``toy``."""

from __future__ import annotations

from typing import Any

import numpy as np

from pcgen.data.jetfeatures import RELATIVE_JET_GLOBALS, relative_jet_features
from pcgen.data.pointclouds import PointClouds
from pcgen.hookspecs import hookimpl
from pcgen.specs import DatasetSpec


def toy_jets(num: int = 256, max_particles: int = 30, seed: int = 0, min_particles: int = 5) -> PointClouds:
    """``num`` jets with a multiplicity uniform in [min_particles, max_particles], sorted by pt_rel.

    Per particle: ``pt_rel`` are gamma(0.7) draws normalised to sum 1 per jet and sorted, ``eta_rel``
    and ``phi_rel`` are normal with standard deviation 0.12; padded particles are zero.
    """
    rng = np.random.default_rng(seed)
    n = rng.integers(min_particles, max_particles + 1, size=num)
    mask = np.arange(max_particles)[None, :] < n[:, None]
    pt = rng.gamma(0.7, size=(num, max_particles)) * mask
    pt = -np.sort(-pt / pt.sum(1, keepdims=True), axis=1)
    eta = rng.normal(0, 0.12, size=(num, max_particles)) * mask
    phi = rng.normal(0, 0.12, size=(num, max_particles)) * mask
    points = np.stack([eta, phi, pt], axis=-1).astype(np.float32) * mask[..., None]
    return PointClouds(points=points, mask=mask, globals=relative_jet_features(points, mask),
                       global_names=RELATIVE_JET_GLOBALS, meta={"source": "toy"})


class ToyDataPlugin:
    """A data-set plugin registering the ``toy`` jets of :func:`toy_jets`, exactly as a third party would."""

    __name__ = "toy-data"

    @hookimpl
    def pcgen_register_datasets(self) -> list[DatasetSpec]:
        """Register the ``toy`` data set."""

        def load(config: Any, progress: bool = True) -> PointClouds:
            return toy_jets(config.num_jets, config.num_particles, seed=config.seed)

        return [DatasetSpec(name="toy", load=load, description="synthetic jets for tests")]


def quick_overrides(steps: int = 30, **extra: Any) -> list[str]:
    """``--set`` strings for a short, deterministic CPU run on the toy jets (``extra``: more KEY=VALUE)."""
    sets = {
        "data.dataset": '"toy"', "data.num_jets": 400, "train.max_steps": steps, "train.batch_size": 32,
        "train.time_budget_minutes": 0, "train.eval_every": 10_000, "train.checkpoint_every": 10_000,
        "eval.num_jets": 100, "eval.efp": "false", "recipe.warmup_steps": 5,
        "train.num_threads": 1,  # tiny tensors: one thread is fastest, and a fixed count keeps runs bitwise equal
    }
    sets.update(extra)
    return [f"{k}={v}" for k, v in sets.items() if v is not None]
