"""Per-cloud observables and energy profiles logged to TensorBoard: the jet and shower kinds' own."""

from __future__ import annotations

import numpy as np

from pcgen.data.observables import RADIAL_BINS
from pcgen.data.pointclouds import SHOWER_FEATURES, PointClouds
from pcgen.kinds.jets import JETS
from pcgen.kinds.showers import SHOWERS


def two_showers(padding: float) -> PointClouds:
    """Shower 0: hits of 1 and 3 GeV in layers 0 and 2; shower 1: 2 GeV in layer 1. Padding carries ``padding``."""
    points = np.full((2, 3, 4), padding, np.float32)
    points[0, 0] = (5, 5, 0.5, 1.0)
    points[0, 1] = (5, 7, 2.5, 3.0)
    points[1, 0] = (4, 4, 1.2, 2.0)
    mask = np.array([[True, True, False], [True, False, False]])
    return PointClouds(points, mask, SHOWER_FEATURES, globals=np.zeros((2, 1), np.float32), global_names=("E_inc",))


def test_shower_profiles_are_the_mean_energy_per_layer_and_ring_and_ignore_padding() -> None:
    showers = two_showers(padding=50.0)
    profiles = SHOWERS.profiles(showers, showers)  # type: ignore[misc] - showers have profiles
    np.testing.assert_allclose(profiles["layer_energy"].counts, [0.5, 1.0, 1.5])
    np.testing.assert_array_equal(profiles["layer_energy"].edges, [0, 1, 2, 3])
    radial = profiles["radial_energy"]
    assert radial.counts.shape == (RADIAL_BINS,) and radial.edges.shape == (RADIAL_BINS + 1,)
    # shower 0's axis is at y = 6.5: the 1 GeV hit is 1.5 cells away, the 3 GeV hit 0.5; shower 1 is one hit on its axis
    np.testing.assert_allclose(radial.counts[:2], [(3.0 + 2.0) / 2, 1.0 / 2])
    assert radial.counts[2:].sum() == 0
    for name, values in SHOWERS.observables(showers).items():
        np.testing.assert_allclose(values, SHOWERS.observables(two_showers(padding=-7.0))[name], err_msg=name)


def test_jets_have_observables_but_no_energy_profiles() -> None:
    points = np.zeros((2, 4, 3), np.float32)
    points[:, :2] = [[0.1, 0.0, 0.6], [-0.1, 0.1, 0.4]]
    jets = PointClouds(points, np.array([[True, True, False, False]] * 2))
    assert JETS.profiles is None
    assert set(JETS.observables(jets)) == {"jet_mass_over_pt", "multiplicity"}
    np.testing.assert_array_equal(JETS.observables(jets)["multiplicity"], [2, 2])
