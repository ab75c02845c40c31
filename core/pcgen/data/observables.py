"""Per-cloud observables of jets or showers, for TensorBoard histograms."""

from __future__ import annotations

import numpy as np

from pcgen.data.pointclouds import PointClouds


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
