"""pcgen's HDF5 store: round trip, atomic writes, and clear errors for every kind of bad file."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from pcgen.data.pointclouds import JET_FEATURES, JET_GLOBALS, PointClouds
from pcgen.data.store import (
    DataError,
    DataFileNotFoundError,
    num_clouds,
    read_meta,
    read_pointclouds,
    write_pointclouds,
)


def small_clouds(jets: int = 12, n: int = 8, seed: int = 0) -> PointClouds:
    """Random jets with a pT-ordered prefix mask and JetNet-like jet features."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, n + 1, size=jets)
    mask = np.arange(n)[None, :] < counts[:, None]
    points = np.where(mask[..., None], rng.normal(size=(jets, n, 3)), 0.0).astype(np.float32)
    globs = np.stack([rng.uniform(800, 1600, jets), rng.normal(size=jets), rng.uniform(0, 300, jets), counts], 1)
    return PointClouds(points, mask, JET_FEATURES, globs.astype(np.float32), JET_GLOBALS, {"seed": 3, "kind": "toy"})


def test_round_trip_keeps_arrays_names_and_meta(tmp_path: Path) -> None:
    pc = small_clouds()
    path = write_pointclouds(pc, tmp_path / "sub" / "jets.h5")
    back = read_pointclouds(path)
    np.testing.assert_array_equal(back.points, pc.points)
    np.testing.assert_array_equal(back.mask, pc.mask)
    np.testing.assert_array_equal(back.globals, pc.globals)
    assert back.feature_names == JET_FEATURES and back.global_names == JET_GLOBALS
    assert back.meta == {"seed": 3, "kind": "toy"} == read_meta(path)
    assert num_clouds(path) == len(pc)


def test_file_uses_jetnets_layout(tmp_path: Path) -> None:
    pc = small_clouds(jets=5, n=4)
    path = write_pointclouds(pc, tmp_path / "jets.h5")
    with h5py.File(path, "r") as f:
        assert f["particle_features"].shape == (5, 4, 4) and f["particle_features"].dtype == np.float32
        assert f["jet_features"].shape == (5, 4) and f["jet_features"].dtype == np.float32
        np.testing.assert_array_equal(f["particle_features"][..., 3], pc.mask.astype(np.float32))


def test_read_keeps_leading_particles_and_clips_num_particles(tmp_path: Path) -> None:
    pc = small_clouds(jets=20, n=8)
    back = read_pointclouds(write_pointclouds(pc, tmp_path / "jets.h5"), max_particles=3)
    assert back.points.shape == (20, 3, 3)
    np.testing.assert_array_equal(back.mask, pc.mask[:, :3])
    np.testing.assert_array_equal(back.globals[:, 3], np.minimum(pc.globals[:, 3], 3))
    with pytest.raises(DataError, match="9 were asked for"):
        read_pointclouds(tmp_path / "jets.h5", max_particles=9)


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_pointclouds(small_clouds(seed=1), tmp_path / "jets.h5")
    before = path.read_bytes()

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_pointclouds(small_clouds(seed=2), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["jets.h5"]


def test_missing_file_is_a_file_not_found_data_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.h5"
    with pytest.raises(DataFileNotFoundError) as err:
        read_pointclouds(path)
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, DataError)
    assert str(path) in str(err.value) and "pcgen data generate" in str(err.value)


def test_random_bytes_are_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "noise.h5"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DataError, match="not a readable HDF5") as err:
        read_pointclouds(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_file_is_a_data_error(tmp_path: Path, keep: float) -> None:
    path = write_pointclouds(small_clouds(jets=300, n=30), tmp_path / "jets.h5", compress=False)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DataError) as err:
        read_pointclouds(path)
    assert str(path) in str(err.value)


def test_missing_keys_are_named(tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("particle_features", data=np.zeros((3, 5, 4), np.float32))
        f.create_dataset("something_else", data=np.zeros(3))
    with pytest.raises(DataError, match="lacks jet_features") as err:
        read_pointclouds(path)
    assert str(path) in str(err.value) and "something_else" in str(err.value)


@pytest.mark.parametrize(
    ("particles", "jets", "what"),
    [((3, 5), (3, 4), "particle_features' has shape"), ((3, 5, 4), (2, 4), "jet_features' has shape")],
)
def test_wrong_shapes_are_named(tmp_path: Path, particles: tuple[int, ...], jets: tuple[int, ...], what: str) -> None:
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("particle_features", data=np.zeros(particles, np.float32))
        f.create_dataset("jet_features", data=np.zeros(jets, np.float32))
    with pytest.raises(DataError, match=what) as err:
        read_pointclouds(path)
    assert str(path) in str(err.value)


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a folder"):
        read_pointclouds(tmp_path)
