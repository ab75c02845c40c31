"""The parametrised photon shower simulator: physics checks, determinism, padding, the cached data set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pcgen.config import DataConfig
from pcgen.data.calo import SHOWER_FEATURES, SHOWER_GLOBALS, CaloGeometry, pointclouds_to_voxels
from pcgen.data.pointclouds import PointClouds
from pcgen.data.shower_observables import energy_sum, layer_energy
from pcgen.data.shower_sim import (
    CALO_DATASETS,
    ShowerParams,
    cached_path,
    load_calo_photons,
    shower_max,
    simulate_showers,
)

PARAMS = ShowerParams()


@pytest.fixture(scope="module")
def showers() -> PointClouds:
    return simulate_showers(400, seed=7)


def _energy_gev(pc: PointClouds) -> np.ndarray:
    return pc.globals[:, 0] / 1000.0


def test_layout(showers: PointClouds) -> None:
    assert showers.feature_names == SHOWER_FEATURES and showers.global_names == SHOWER_GLOBALS
    assert showers.points.dtype == np.float32 and showers.max_particles == 1700
    assert (showers.points[~showers.mask] == 0).all(), "padded hits are zero"
    np.testing.assert_array_equal(showers.globals[:, 1], showers.multiplicity)
    assert (showers.mask[:, :-1] >= showers.mask[:, 1:]).all(), "real hits first"
    e = np.where(showers.mask, showers.points[..., 3], -1.0)
    assert (np.diff(e, axis=1) <= 0).all(), "sorted by energy, highest first"
    assert (showers.points[..., 3][showers.mask] > 0).all()
    energy = _energy_gev(showers)
    assert energy.min() >= 10 and energy.max() <= 100


def test_hits_inside_their_cells_and_voxelise_back(showers: PointClouds) -> None:
    xyz = showers.points[..., :3][showers.mask]
    assert xyz.min() >= 0 and xyz.max() < 30
    assert len(np.unique(xyz[:, 0] - np.floor(xyz[:, 0]))) > 1000, "not on a lattice"
    grid = CaloGeometry(30, 30, 30)
    sub = showers.subset(slice(0, 20))
    voxels = pointclouds_to_voxels(sub, grid)
    np.testing.assert_array_equal((voxels.energies > 0).sum(1), sub.multiplicity)  # one hit per cell
    np.testing.assert_allclose(voxels.energies.sum(1), energy_sum(sub.points, sub.mask), rtol=1e-5)


def test_hit_counts_span_hundreds_to_about_1700(showers: PointClouds) -> None:
    n, energy = showers.multiplicity, _energy_gev(showers)
    assert 200 <= n.min() and n.max() <= 1700
    assert n[energy < 15].mean() < 600 and n[energy > 80].mean() > 1200
    assert np.corrcoef(n, np.log(energy))[0, 1] > 0.9


def test_deposited_energy_is_sampling_fraction_with_shrinking_spread(showers: PointClouds) -> None:
    energy = _energy_gev(showers)
    ratio = energy_sum(showers.points, showers.mask) / (energy * 1000.0)
    assert abs(ratio.mean() / PARAMS.sampling_fraction - 1) < 0.05
    low, high = ratio[energy < 20], ratio[energy > 60]
    spread_low, spread_high = low.std() / low.mean(), high.std() / high.mean()
    assert 0.02 < spread_low < 0.06 and spread_high < 0.7 * spread_low


@pytest.mark.parametrize(("lo", "hi"), [(10, 15), (70, 100)])
def test_longitudinal_profile_peaks_at_shower_max(showers: PointClouds, lo: float, hi: float) -> None:
    energy = _energy_gev(showers)
    pick = (energy >= lo) & (energy < hi)
    profile = layer_energy(showers.points[pick], showers.mask[pick], 30).mean(0)
    expected_layer = shower_max(np.array([np.sqrt(lo * hi) * 1000.0]), PARAMS)[0] / PARAMS.layer_x0
    assert abs(profile.argmax() + 0.5 - expected_layer) <= 1.5


def test_showers_get_deeper_with_energy(showers: PointClouds) -> None:
    energy = _energy_gev(showers)
    e = np.where(showers.mask, showers.points[..., 3], 0.0)
    depth = (e * showers.points[..., 2]).sum(1) / e.sum(1)
    low, high = depth[energy < 20].mean(), depth[energy > 60].mean()
    assert high - low > 1.5, (low, high)


def test_same_seed_same_showers_other_seed_other_showers() -> None:
    a, b, c = simulate_showers(30, seed=3), simulate_showers(30, seed=3), simulate_showers(30, seed=4)
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.globals, b.globals)
    assert not np.array_equal(a.globals, c.globals)


def test_truncation_keeps_the_most_energetic_hits() -> None:
    full = simulate_showers(10, seed=5)
    cut = simulate_showers(10, seed=5, max_hits=100)
    assert cut.max_particles == 100 and cut.mask.all() and cut.meta["fraction_cut"] == 1.0
    np.testing.assert_array_equal(cut.points, full.points[:, :100])


def test_dataset_spec_caches(tmp_path: Path) -> None:
    spec = {s.name: s for s in CALO_DATASETS}["calo-photons"]
    assert spec.kind == "showers"
    config = DataConfig(dataset="calo-photons", num_jets=20, num_particles=1024, seed=2, cache_dir=tmp_path)
    path = cached_path(config)
    assert "20showers" in path.name and "N1024" in path.name and "seed2" in path.name
    pc = spec.load(config, progress=False)
    assert path.exists() and len(pc) == 20 and pc.max_particles == 1024
    mtime = path.stat().st_mtime_ns
    again = load_calo_photons(config, progress=False)
    assert path.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again.points, pc.points)
    np.testing.assert_array_equal(pc.points, simulate_showers(20, seed=2, max_hits=1024).points)
