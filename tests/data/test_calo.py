"""CaloChallenge and point-cloud shower files, voxel <-> cloud conversion, shower observables."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from pcgen.config import DataConfig
from pcgen.data.calo import (
    DATASET2,
    SHOWER_FEATURES,
    CaloGeometry,
    VoxelShowers,
    load_calochallenge,
    pointclouds_to_voxels,
    read_calochallenge,
    read_showers,
    voxels_to_pointclouds,
    write_calochallenge,
    write_showers,
)
from pcgen.data.pointclouds import PointClouds
from pcgen.data.shower_observables import (
    centre_of_gravity,
    energy_sum,
    layer_energy,
    num_hits,
    radial_profile,
    shower_w1,
)
from pcgen.data.store import DataError

SMALL = CaloGeometry(layers=4, bins_x=3, bins_y=2, name="toy")


def random_voxels(n: int = 6, geometry: CaloGeometry = DATASET2, occupancy: float = 0.2, seed: int = 0) -> VoxelShowers:
    rng = np.random.default_rng(seed)
    e = rng.exponential(1.0, (n, geometry.num_voxels)) * (rng.random((n, geometry.num_voxels)) < occupancy)
    return VoxelShowers(e.astype(np.float32), rng.uniform(1e3, 1e6, n).astype(np.float32), geometry)


def test_dataset2_geometry() -> None:
    assert DATASET2.num_voxels == 6480 and DATASET2.shape == (45, 16, 9)
    cells = DATASET2.cell_coordinates()
    assert DATASET2.flat_index(cells[:, 0] + 0.5, cells[:, 1] + 0.5, cells[:, 2] + 0.5).tolist() == list(range(6480))


def test_calochallenge_round_trip(tmp_path: Path) -> None:
    showers = random_voxels()
    path = write_calochallenge(showers, tmp_path / "ds2.h5")
    with h5py.File(path) as f:
        assert f["incident_energies"].shape == (6, 1) and f["showers"].shape == (6, 6480)
    back = read_calochallenge(path)
    np.testing.assert_array_equal(back.energies, showers.energies)
    np.testing.assert_array_equal(back.incident, showers.incident)
    assert len(read_calochallenge(path, max_showers=2)) == 2
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("dequantise", [True, False])
def test_voxels_to_cloud_to_voxels_is_exact_per_cell(dequantise: bool) -> None:
    showers = random_voxels(seed=1)
    pc = voxels_to_pointclouds(showers, dequantise=dequantise, seed=3)
    assert pc.feature_names == SHOWER_FEATURES
    np.testing.assert_array_equal(pc.multiplicity, (showers.energies > 0).sum(1))
    np.testing.assert_array_equal(pc.globals[:, 1], pc.multiplicity)
    assert (pc.points[~pc.mask] == 0).all()
    e = pc.points[..., 3]
    assert (np.diff(e, axis=1) <= 0).all(), "hits sorted by energy, highest first"
    back = pointclouds_to_voxels(pc, DATASET2)
    np.testing.assert_array_equal(back.energies, showers.energies)
    np.testing.assert_array_equal(back.incident, showers.incident)


def test_dequantisation_leaves_the_lattice() -> None:
    pc = voxels_to_pointclouds(random_voxels(2), dequantise=True, seed=0)
    coords = pc.points[pc.mask][:, :3]
    frac = coords - np.floor(coords)
    assert frac.std() > 0.2 and len(np.unique(frac)) > 100
    centred = voxels_to_pointclouds(random_voxels(2), dequantise=False).points[pc.mask][:, :3]
    np.testing.assert_array_equal(centred - np.floor(centred), 0.5)


def test_truncation_keeps_highest_energy_hits() -> None:
    showers = random_voxels(3, SMALL, occupancy=0.9)
    pc = voxels_to_pointclouds(showers, max_hits=5)
    assert pc.max_particles == 5
    for i in range(3):
        top = np.sort(showers.energies[i])[::-1][:5]
        np.testing.assert_array_equal(pc.points[i, :, 3][pc.mask[i]], top[top > 0])
    padded = voxels_to_pointclouds(showers, max_hits=40)
    assert padded.max_particles == 40 and (padded.points[~padded.mask] == 0).all()


def test_shower_file_round_trip(tmp_path: Path) -> None:
    pc = voxels_to_pointclouds(random_voxels(4, SMALL), seed=2)
    back = read_showers(write_showers(pc, tmp_path / "showers.h5"))
    np.testing.assert_array_equal(back.points, pc.points)
    np.testing.assert_array_equal(back.mask, pc.mask)
    assert back.global_names == ("incident_energy", "num_hits")
    jets = PointClouds(np.zeros((2, 3, 3), np.float32), np.ones((2, 3), bool))
    with pytest.raises(DataError, match="expected"):
        write_showers(jets, tmp_path / "jets.h5")


def _write_raw(path: Path, **datasets: np.ndarray) -> Path:
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f.create_dataset(key, data=value)
    return path


@pytest.mark.parametrize(
    ("datasets", "message"),
    [
        ({"showers": np.zeros((3, 6480))}, "lacks dataset.*incident_energies"),
        ({"incident_energies": np.ones((3, 1)), "showers": np.zeros((3, 6000))}, r"\(n, 6480\)"),
        ({"incident_energies": np.ones((2, 1)), "showers": np.zeros((3, 6480))}, "holds 3 showers"),
        ({"incident_energies": np.ones((3, 1)), "showers": -np.ones((3, 6480))}, "negative"),
        ({"incident_energies": np.full((3, 1), np.nan), "showers": np.zeros((3, 6480))}, "NaN"),
    ],
)
def test_bad_calochallenge_files_raise_data_error(tmp_path: Path, datasets: dict, message: str) -> None:
    path = _write_raw(tmp_path / "bad.h5", **datasets)
    with pytest.raises(DataError, match=message) as err:
        read_calochallenge(path)
    assert str(path) in str(err.value)


def test_corrupt_and_missing_files_raise_data_error(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"not hdf5 at all")
    with pytest.raises(DataError, match="corrupt"):
        read_calochallenge(corrupt)
    with pytest.raises(DataError, match="does not exist"):
        read_calochallenge(tmp_path / "missing.h5")
    good = write_calochallenge(random_voxels(2), tmp_path / "good.h5")
    with pytest.raises(DataError, match="6480"):
        read_calochallenge(good, geometry=SMALL)


def test_load_calochallenge_uses_data_config(tmp_path: Path) -> None:
    path = write_calochallenge(random_voxels(30), tmp_path / "ds2.h5")
    config = DataConfig(dataset="calochallenge-2", path=path, num_jets=25, num_particles=100, seed=1)
    pc = load_calochallenge(config)
    assert len(pc) == 25 and pc.max_particles == 100 and pc.meta["file"] == str(path)
    with pytest.raises(DataError, match="data.path"):
        load_calochallenge(DataConfig())


# ------------------------------------------------------------------------------------------------
# Observables
# ------------------------------------------------------------------------------------------------


def test_observables_known_values() -> None:
    points = np.zeros((2, 3, 4), np.float32)
    points[0, 0] = [2.5, 3.5, 4.5, 10.0]
    points[1, :2] = [[1.0, 1.0, 0.2, 1.0], [3.0, 1.0, 2.7, 3.0]]
    points[1, 2] = [9.0, 9.0, 9.0, 100.0]  # padding, must be ignored
    mask = np.array([[True, False, False], [True, True, False]])
    np.testing.assert_allclose(energy_sum(points, mask), [10.0, 4.0])
    np.testing.assert_array_equal(num_hits(points, mask), [1, 2])
    np.testing.assert_allclose(centre_of_gravity(points, mask), [[2.5, 3.5, 4.5], [2.5, 1.0, 2.075]], rtol=1e-6)
    np.testing.assert_allclose(layer_energy(points, mask, 5), [[0, 0, 0, 0, 10], [1, 0, 3, 0, 0]])
    np.testing.assert_allclose(radial_profile(points, mask, 3), [[10, 0, 0], [3, 1, 0]])  # r = 0.5 and 1.5 from x = 2.5
    np.testing.assert_allclose(radial_profile(points, mask, 3, centre=np.array([1.0, 1.0])), [[0, 0, 10], [1, 0, 3]])


def test_w1_is_zero_for_identical_sets_and_positive_otherwise() -> None:
    pc = voxels_to_pointclouds(random_voxels(8, SMALL, occupancy=0.6), seed=0)
    same = shower_w1((pc.points, pc.mask), (pc.points, pc.mask), num_layers=4, num_radial_bins=3)
    assert set(same) == {"energy_sum", "num_hits", "cog_x", "cog_y", "cog_z", "layer_energy", "radial_profile"}
    assert all(v == 0 for v in same.values())
    scaled = pc.points.copy()
    scaled[..., 3] *= 2
    diff = shower_w1((pc.points, pc.mask), (scaled, pc.mask), num_layers=4, num_radial_bins=3)
    np.testing.assert_allclose(diff["energy_sum"], energy_sum(pc.points, pc.mask).mean(), rtol=1e-6)
    assert diff["layer_energy"] > 0 and diff["num_hits"] == 0
