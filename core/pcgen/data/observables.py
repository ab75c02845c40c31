"""Per-cloud observables and energy profiles of jets or showers (TensorBoard histograms, figures)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pcgen.data.pointclouds import PointClouds

RADIAL_BINS = 15
"""Rings (one cell wide around each shower's centre of gravity, the last collecting everything
beyond) of the radial energy profile."""


@dataclass(frozen=True)
class Profile:
    """A weighted histogram: mean weight per cloud in each bin of ``edges``."""

    edges: np.ndarray
    counts: np.ndarray


def cloud_observables(clouds: PointClouds) -> dict[str, np.ndarray]:
    """One value per cloud for each observable of the clouds' kind.

    Jets: relative mass m/pT and multiplicity. Showers: energy sum, hit count and centre of gravity.
    """
    if clouds.kind == "showers":
        from pcgen.data.shower_observables import centre_of_gravity, energy_sum

        cog = centre_of_gravity(clouds.points, clouds.mask)
        return {
            "energy_sum": energy_sum(clouds.points, clouds.mask),
            "num_hits": clouds.multiplicity.astype(np.float64),
            "cog_x": cog[:, 0], "cog_y": cog[:, 1], "cog_z": cog[:, 2],
        }
    from pcgen.metrics.jet_metrics import relative_jet_mass

    return {
        "jet_mass_over_pt": relative_jet_mass(clouds.points[..., :3], clouds.mask),
        "multiplicity": clouds.multiplicity.astype(np.float64),
    }


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


def cloud_profiles(clouds: PointClouds, num_layers: int) -> dict[str, Profile]:
    """:func:`energy_profiles` of showers; none for jets."""
    return energy_profiles(clouds.points, clouds.mask, num_layers) if clouds.kind == "showers" else {}
