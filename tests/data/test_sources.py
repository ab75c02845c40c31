"""The three registered data sets: pythia (generated and cached), jetnet (its files), file (any pcgen file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_jetnet_files import write_jetnet_file

from pcgen import DatasetSpec
from pcgen.config import DataConfig
from pcgen.data.jet_config import JetDataConfig
from pcgen.data import pythia
from pcgen.data.pythia import cached_path
from pcgen.data.sources import DATASETS, load_file, load_jetnet, load_pythia
from pcgen.data.store import DataError, DataFileNotFoundError, write_pointclouds


def test_the_three_data_sets_are_declared() -> None:
    assert [d.name for d in DATASETS] == ["pythia", "jetnet", "file"]
    assert all(isinstance(d, DatasetSpec) and d.description for d in DATASETS)
    assert [d.kind for d in DATASETS] == ["jets", "jets", ""]  # a file's clouds say their own kind
    assert [d.load for d in DATASETS] == [load_pythia, load_jetnet, load_file]


@pytest.mark.slow
def test_load_pythia_generates_into_the_cache_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = JetDataConfig(jet_type="t", num_particles=30, num_jets=20, seed=1, workers=1, cache_dir=tmp_path)
    first = load_pythia(config, progress=False)
    assert cached_path(config).is_file()
    assert first.points.shape == (20, 30, 3) and first.meta["fingerprint"]

    monkeypatch.setattr(pythia, "generate_shard", lambda *a, **k: pytest.fail("the cache must be reused"))
    second = load_pythia(config, progress=False)
    np.testing.assert_array_equal(first.points, second.points)


def test_load_jetnet_reads_data_path_or_the_cache(tmp_path: Path) -> None:
    pf, _ = write_jetnet_file(tmp_path / "jn" / "w.hdf5")
    pc = load_jetnet(JetDataConfig(dataset="jetnet", jet_type="w", num_particles=30, path=tmp_path / "jn"))
    np.testing.assert_array_equal(pc.points, pf[..., :3])
    write_jetnet_file(tmp_path / "cache" / "jetnet" / "w.hdf5")
    assert len(load_jetnet(JetDataConfig(dataset="jetnet", jet_type="w", cache_dir=tmp_path / "cache"))) == 25


def test_load_jetnet_without_files_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError, match="download_jetnet") as err:
        load_jetnet(JetDataConfig(dataset="jetnet", jet_type="g", num_particles=150, path=tmp_path))
    assert str(tmp_path / "g150.hdf5") in str(err.value)


def test_load_file_reads_pcgen_and_jetnet_files(tmp_path: Path) -> None:
    _, jf = write_jetnet_file(tmp_path / "t.hdf5", particles=30)
    pc = load_file(DataConfig(dataset="file", num_particles=12, path=tmp_path / "t.hdf5"))
    assert pc.points.shape == (25, 12, 3)
    np.testing.assert_array_equal(pc.globals[:, 3], np.minimum(jf[:, 3], 12))
    again = load_file(DataConfig(dataset="file", num_particles=12, path=write_pointclouds(pc, tmp_path / "p.h5")))
    np.testing.assert_array_equal(again.points, pc.points)
    assert again.meta["file"] == str(tmp_path / "p.h5")


def test_load_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"needs data\.path"):
        load_file(DataConfig(dataset="file"))
    with pytest.raises(DataFileNotFoundError, match=r"missing\.h5"):
        load_file(DataConfig(dataset="file", path=tmp_path / "missing.h5"))
    write_jetnet_file(tmp_path / "t.hdf5", particles=30)
    with pytest.raises(DataError, match=r"data\.num_particles"):
        load_file(DataConfig(dataset="file", num_particles=150, path=tmp_path / "t.hdf5"))
