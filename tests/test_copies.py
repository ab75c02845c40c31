"""The copy check: copies of training jets are found, independent jets are not, and particle order and
padding do not matter."""

from __future__ import annotations

import numpy as np
import pytest

from pcgen.data.pointclouds import PointClouds
from pcgen.metrics.copies import cloud_vectors, copy_check, feature_scale


def jets(count: int, seed: int, particles: int = 12) -> PointClouds:
    rng = np.random.default_rng(seed)
    points = np.stack([rng.normal(0, 0.1, (count, particles)), rng.normal(0, 0.1, (count, particles)),
                       rng.exponential(0.05, (count, particles))], axis=-1).astype(np.float32)
    mask = np.arange(particles)[None] < rng.integers(3, particles + 1, count)[:, None]
    return PointClouds(points * mask[..., None], mask)


def test_copies_of_training_jets_are_found_and_independent_jets_are_not() -> None:
    training, fresh, other = jets(2000, 0), jets(500, 1), jets(500, 2)
    rng = np.random.default_rng(3)
    picked = training.subset(slice(0, 500))
    nudged = PointClouds((picked.points + rng.normal(0, 1e-4, picked.points.shape) * picked.mask[..., None])
                         .astype(np.float32), picked.mask)
    copied = copy_check(nudged, fresh, training)
    independent = copy_check(other, fresh, training)
    assert copied.median_ratio < 0.05 and copied.near_copies > 0.95
    assert independent.median_ratio == pytest.approx(1.0, abs=0.1) and independent.near_copies < 0.05


def test_particle_order_and_padded_entries_do_not_change_a_clouds_vector() -> None:
    clouds = jets(50, 4)
    scale = feature_scale(clouds)
    rng = np.random.default_rng(5)
    order = rng.permutation(clouds.points.shape[1])
    garbage = np.where(clouds.mask[..., None], 0, rng.normal(size=clouds.points.shape)).astype(np.float32)
    shuffled = PointClouds(clouds.points[:, order] + garbage[:, order], clouds.mask[:, order])
    assert np.allclose(cloud_vectors(clouds, scale).numpy(), cloud_vectors(shuffled, scale).numpy())


def test_clouds_without_an_ordering_feature_are_refused() -> None:
    clouds = jets(5, 6)
    other = PointClouds(clouds.points, clouds.mask, feature_names=("a", "b", "c"))
    with pytest.raises(ValueError, match="orders particles by pt_rel or E"):
        cloud_vectors(other, np.ones(3))
