"""Energy profiles of showers (TensorBoard histograms, figures); each kind's observables are its KindSpec's."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


RADIAL_BINS = 15
"""Rings (one cell wide around each shower's centre of gravity, the last collecting everything
beyond) of the radial energy profile."""


@dataclass(frozen=True)
class Profile:
    """A weighted histogram: mean weight per cloud in each bin of ``edges``."""

    edges: np.ndarray
    counts: np.ndarray


def energy_profiles(points: np.ndarray, mask: np.ndarray, num_layers: int) -> dict[str, Profile]:
    """Mean energy per shower in each layer (``layer_energy``) and in each ring around the shower
    axis (``radial_energy``) of zero-padded showers ``(showers, N, 4)``; zeros when there are none.

    ``num_layers`` fixes the binning, so that real and generated profiles share their bins.
    """
    from pcgen.data.shower_observables import layer_energy, radial_profile

    edges = {"layer_energy": np.arange(num_layers + 1.0), "radial_energy": np.arange(RADIAL_BINS + 1.0)}
    if len(points) == 0:
        return {name: Profile(e, np.zeros(len(e) - 1)) for name, e in edges.items()}
    return {
        "layer_energy": Profile(edges["layer_energy"], layer_energy(points, mask, num_layers).mean(axis=0)),
        "radial_energy": Profile(edges["radial_energy"], radial_profile(points, mask, RADIAL_BINS).mean(axis=0)),
    }
