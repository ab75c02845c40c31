"""Per-cloud observables and energy profiles of jets or showers, for TensorBoard histograms."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pcgen.data.pointclouds import PointClouds

RADIAL_BINS = 15  # rings of one cell around each shower's centre of gravity; the last takes the rest


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


def cloud_profiles(clouds: PointClouds, num_layers: int) -> dict[str, Profile]:
    """Mean energy per shower in each layer and in each ring around the shower axis (none for jets).

    ``num_layers`` fixes the binning, so that real and generated profiles share their bins.
    """
    if clouds.kind != "showers" or len(clouds.points) == 0:
        return {}
    from pcgen.data.shower_observables import layer_energy, radial_profile

    count = len(clouds.points)
    return {
        "layer_energy": Profile(np.arange(num_layers + 1.0),
                                layer_energy(clouds.points, clouds.mask, num_layers).sum(0) / count),
        "radial_energy": Profile(np.arange(RADIAL_BINS + 1.0),
                                 radial_profile(clouds.points, clouds.mask, RADIAL_BINS).sum(0) / count),
    }
