"""Reading JetNet's own HDF5 files offline, and downloading them through jetnet."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from pcgen.data.jetnet_files import download_jetnet, jetnet_path, read_jetnet
from pcgen.data.store import DataError, DataFileNotFoundError


def write_jetnet_file(path: Path, jets: int = 25, particles: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Write a file exactly as JetNet ships them (no pcgen attributes); return (particle, jet) arrays.

    Like JetNet's 30-particle files, ``num_particles`` counts all constituents, so it can exceed
    ``particles``.
    """
    rng = np.random.default_rng(seed)
    true_counts = rng.integers(1, particles + 20, size=jets)
    mask = np.arange(particles)[None, :] < np.minimum(true_counts, particles)[:, None]
    features = np.abs(rng.normal(scale=0.1, size=(jets, particles, 3)))  # plausible eta_rel, phi_rel, pt_rel
    pf = np.concatenate([features, np.ones((jets, particles, 1))], axis=-1)
    pf = np.where(mask[..., None], pf, 0.0).astype(np.float32)
    jf = np.stack([rng.uniform(800, 1600, jets), rng.normal(size=jets), rng.uniform(0, 300, jets), true_counts], 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("particle_features", data=pf)
        f.create_dataset("jet_features", data=jf.astype(np.float32))
    return pf, jf.astype(np.float32)


def test_reads_the_30_particle_file(tmp_path: Path) -> None:
    pf, jf = write_jetnet_file(tmp_path / "t.hdf5")
    pc = read_jetnet(tmp_path, "t", 30)
    assert pc.points.shape == (25, 30, 3) and pc.points.dtype == np.float32
    np.testing.assert_array_equal(pc.points, pf[..., :3])
    np.testing.assert_array_equal(pc.mask, pf[..., 3] == 1)
    np.testing.assert_array_equal(pc.globals[:, :3], jf[:, :3])
    np.testing.assert_array_equal(pc.globals[:, 3], np.minimum(jf[:, 3], 30))
    assert pc.meta["source"] == "jetnet" and pc.meta["file"] == str(tmp_path / "t.hdf5")


def test_fewer_particles_truncate_and_clip(tmp_path: Path) -> None:
    pf, jf = write_jetnet_file(tmp_path / "g.hdf5")
    pc = read_jetnet(tmp_path, "g", 10)
    assert pc.points.shape == (25, 10, 3)
    np.testing.assert_array_equal(pc.mask, pf[:, :10, 3] == 1)
    np.testing.assert_array_equal(pc.globals[:, 3], np.minimum(jf[:, 3], 10))
    np.testing.assert_array_equal(pc.multiplicity, pc.globals[:, 3])


def test_more_than_30_particles_read_the_150_file(tmp_path: Path) -> None:
    write_jetnet_file(tmp_path / "t.hdf5", particles=30, seed=1)
    pf, _ = write_jetnet_file(tmp_path / "t150.hdf5", jets=7, particles=150, seed=2)
    pc = read_jetnet(tmp_path, "t", 100)
    assert pc.points.shape == (7, 100, 3)
    np.testing.assert_array_equal(pc.points, pf[:, :100, :3])
    assert jetnet_path(tmp_path, "t", 31).name == "t150.hdf5" and jetnet_path(tmp_path, "t", 30).name == "t.hdf5"


def test_matches_jetnets_own_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """jetnet 0.2.5's getData on the same file (its Zenodo check bypassed) gives the same numbers."""
    import jetnet.datasets.jetnet as jetnet_module

    write_jetnet_file(tmp_path / "q.hdf5", seed=5)
    monkeypatch.setattr(jetnet_module, "checkDownloadZenodoDataset", lambda data_dir, **kw: str(tmp_path / "q.hdf5"))
    particles, jets = jetnet_module.JetNet.getData(jet_type="q", data_dir=str(tmp_path), num_particles=20, split="all")
    ours = read_jetnet(tmp_path, "q", 20)
    order = np.random.default_rng(42).permutation(len(ours))  # getData shuffles with seed 42
    assert jetnet_module.JetNet.ALL_JET_FEATURES == ["type", "pt", "eta", "mass", "num_particles"]
    np.testing.assert_array_equal(particles[..., :3], ours.points[order])
    np.testing.assert_array_equal(particles[..., 3] == 1, ours.mask[order])
    np.testing.assert_allclose(jets[:, 1:], ours.globals[order])


def test_missing_file_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError) as err:
        read_jetnet(tmp_path, "w", 150)
    message = str(err.value)
    assert str(tmp_path / "w150.hdf5") in message and "download_jetnet" in message and "6975117" in message


def test_bad_requests(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="1 to 150"):
        read_jetnet(tmp_path, "t", 151)
    with pytest.raises(DataError, match="unknown JetNet jet type"):
        read_jetnet(tmp_path, "x", 30)


def test_download_failure_is_a_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jetnet.datasets import JetNet

    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("no route to zenodo.org")

    monkeypatch.setattr(JetNet, "getData", offline)
    with pytest.raises(DataError, match="needs internet access") as err:
        download_jetnet(tmp_path / "jn", "t", 30)
    assert "no route" in str(err.value) and str(tmp_path / "jn") in str(err.value)


def test_download_asks_jetnet_for_the_right_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jetnet.datasets import JetNet

    calls: list[dict[str, object]] = []

    def fake_get_data(**kwargs: object) -> None:
        calls.append(kwargs)
        write_jetnet_file(Path(str(kwargs["data_dir"])) / "z150.hdf5", jets=3, particles=150)

    monkeypatch.setattr(JetNet, "getData", fake_get_data)
    path = download_jetnet(tmp_path, "z", 150)
    assert path == tmp_path / "z150.hdf5"
    assert calls[0]["download"] is True and calls[0]["jet_type"] == "z" and calls[0]["num_particles"] == 150
    assert read_jetnet(tmp_path, "z", 150).points.shape == (3, 150, 3)
