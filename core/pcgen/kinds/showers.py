"""Calorimeter showers: hits (x, y, z cell coordinates, E in MeV), conditioned on the incident energy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pcgen.data.calo import SHOWER_GLOBALS
from pcgen.data.observables import Profile, energy_profiles
from pcgen.data.pointclouds import SHOWER_FEATURES, PointClouds
from pcgen.kinds.jets import global_column, multiplicity
from pcgen.specs import ConditionSpec, KindSpec

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def shower_observables(clouds: PointClouds) -> dict[str, np.ndarray]:
    """Energy sum, number of hits and centre of gravity of each shower."""
    from pcgen.data.shower_observables import centre_of_gravity, energy_sum

    cog = centre_of_gravity(clouds.points, clouds.mask)
    return {"energy_sum": energy_sum(clouds.points, clouds.mask), "num_hits": multiplicity(clouds),
            "cog_x": cog[:, 0], "cog_y": cog[:, 1], "cog_z": cog[:, 2]}


def shower_profiles(clouds: PointClouds, reference: PointClouds) -> dict[str, Profile]:
    """Mean energy per layer and per radial ring, with as many layers as ``reference`` has."""
    from pcgen.metrics.shower_metrics import infer_num_layers

    layers = infer_num_layers(reference.points, reference.mask)
    return energy_profiles(clouds.points, clouds.mask, layers)


def shower_figure(real: PointClouds, fakes: dict[str, PointClouds], bins: int = 50) -> Figure:
    """Hit and shower distributions and energy profiles of real and generated showers."""
    from pcgen.plots import shower_distribution_figure

    return shower_distribution_figure(real, fakes, bins)


def generated_shower_globals(points: np.ndarray, mask: np.ndarray,
                             conditions: dict[str, np.ndarray]) -> tuple[np.ndarray, tuple[str, ...]]:
    """(incident energy, hits) of generated showers; the incident energy is the one the model was given,
    NaN for an unconditional model (it does not know it)."""
    hits = mask.sum(axis=1).astype(np.float32)
    energy = np.asarray(conditions.get("incident_energy", np.full_like(hits, np.nan)), np.float32).reshape(-1)
    return np.stack([energy, hits], axis=1), SHOWER_GLOBALS


def energy_bin_reports(real: PointClouds, fake: PointClouds) -> dict[str, Any]:
    """CaloChallenge-style comparison per incident-energy bin (table, JSON, response figure), when
    both sets know their incident energies; nothing otherwise."""
    from pcgen.metrics.energy_bin_figure import response_figure
    from pcgen.metrics.energy_bins import compare_energy_bins, energy_bin_json, energy_bin_markdown

    known = [np.isfinite(global_column("incident_energy")(c)).all() for c in (real, fake)]
    if not all(known):
        return {}
    rows = compare_energy_bins(real, fake)
    return {"tables": {"energy_bins": energy_bin_markdown(rows)}, "json": {"energy_bins": energy_bin_json(rows)},
            "figures": {"response": response_figure(rows)}}


SHOWERS = KindSpec(
    name="showers",
    noun="showers",
    feature_names=SHOWER_FEATURES,
    description="Calorimeter showers: hits (x, y, z cell coordinates with z the layer, E in MeV)",
    observables=shower_observables,
    figure=shower_figure,
    generated_globals=generated_shower_globals,
    sort_feature="E",
    conditions=(
        ConditionSpec("incident_energy", "MeV", global_column("incident_energy"), "energy of the incident particle",
                      log=True),
        ConditionSpec("num_hits", "", multiplicity, "number of hits", multiplicity=True),
    ),
    profiles=shower_profiles,
    reports=energy_bin_reports,
)
