"""Small synthetic jets for fast tests (physics-shaped, not physics): sorted pT fractions, narrow cones."""

from __future__ import annotations

import numpy as np

from pcgen.data.jetfeatures import relative_jet_features
from pcgen.data.pointclouds import PointClouds


def toy_jets(num: int = 256, max_particles: int = 30, seed: int = 0, min_particles: int = 5) -> PointClouds:
    """``num`` jets with variable multiplicity in [min_particles, max_particles], sorted by pt_rel."""
    rng = np.random.default_rng(seed)
    n = rng.integers(min_particles, max_particles + 1, size=num)
    mask = np.arange(max_particles)[None, :] < n[:, None]
    pt = rng.gamma(0.7, size=(num, max_particles)) * mask
    pt = -np.sort(-pt / pt.sum(1, keepdims=True), axis=1)
    eta = rng.normal(0, 0.12, size=(num, max_particles)) * mask
    phi = rng.normal(0, 0.12, size=(num, max_particles)) * mask
    points = np.stack([eta, phi, pt], axis=-1).astype(np.float32) * mask[..., None]
    return PointClouds(points=points, mask=mask, globals=relative_jet_features(points, mask), meta={"source": "toy"})
