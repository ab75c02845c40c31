"""Jets: particles in (eta_rel, phi_rel, pt_rel) relative to the jet axis, conditioned on the jet's pT and mass."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from pcgen.data.jet_config import JetDataConfig
from pcgen.data.jetfeatures import RELATIVE_JET_GLOBALS, relative_jet_features
from pcgen.data.pointclouds import JET_FEATURES, PointClouds
from pcgen.specs import ConditionSpec, KindSpec

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def global_column(name: str) -> Callable[[PointClouds], np.ndarray]:
    """``values(clouds)``: the clouds' global column ``name`` as float64, NaN when they lack it."""

    def values(clouds: PointClouds) -> np.ndarray:
        if name in clouds.global_names and clouds.globals.size:
            return clouds.globals[:, clouds.global_names.index(name)].astype(np.float64)
        return np.full(len(clouds), np.nan)

    values.__name__ = f"global_{name}"
    return values


def multiplicity(clouds: PointClouds) -> np.ndarray:
    """The number of real points of each cloud."""
    return clouds.multiplicity.astype(np.float64)


def jet_observables(clouds: PointClouds) -> dict[str, np.ndarray]:
    """Relative jet mass m / pT and multiplicity of each jet."""
    from pcgen.data.jetfeatures import relative_jet_mass

    return {"jet_mass_over_pt": relative_jet_mass(clouds.points[..., :3], clouds.mask),
            "multiplicity": multiplicity(clouds)}


def jet_figure(real: PointClouds, fakes: dict[str, PointClouds], bins: int = 50) -> Figure:
    """Particle features, jet mass and multiplicity of real and generated jets."""
    from pcgen.plots import distribution_figure

    return distribution_figure(real, fakes, bins)


def generated_jet_globals(points: np.ndarray, mask: np.ndarray,
                          conditions: dict[str, np.ndarray]) -> tuple[np.ndarray, tuple[str, ...]]:
    """:data:`~pcgen.data.jetfeatures.RELATIVE_JET_GLOBALS` of generated jets (a model making relative
    coordinates does not know the jet's pT), then each condition the model was given under its name."""
    columns = [relative_jet_features(points, mask)]
    names = RELATIVE_JET_GLOBALS + tuple(conditions)
    columns += [np.asarray(v, np.float32).reshape(-1, 1) for v in conditions.values()]
    return np.concatenate(columns, axis=1).astype(np.float32), names


JETS = KindSpec(
    name="jets",
    noun="jets",
    feature_names=JET_FEATURES,
    description="Jets of particles (eta_rel, phi_rel, pt_rel relative to the jet axis), JetNet's layout",
    observables=jet_observables,
    figure=jet_figure,
    generated_globals=generated_jet_globals,
    sort_feature="pt_rel",
    conditions=(
        ConditionSpec("pt", "GeV", global_column("pt"), "jet transverse momentum", log=True),
        ConditionSpec("mass", "GeV", global_column("mass"), "jet invariant mass"),
        ConditionSpec("num_particles", "", multiplicity, "number of particles", multiplicity=True),
    ),
    data_config=JetDataConfig,
)
