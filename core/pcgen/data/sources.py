"""The data sets the core registers: Pythia 8 jets (generated and cached), JetNet's files, any pcgen file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pcgen.config import DataConfig
from pcgen.data.jet_config import JetDataConfig
from pcgen.data.jetnet_files import read_jetnet
from pcgen.data.pointclouds import PointClouds
from pcgen.data.store import DataError, read_pointclouds
from pcgen.specs import DatasetSpec


def load_pythia(config: JetDataConfig, progress: bool = True) -> PointClouds:
    """Pythia 8 + FastJet jets for ``config``: read from the cache, generated into it first if missing."""
    from pcgen.data.pythia import cached_path, generate_jets

    path = generate_jets(config, cached_path(config), progress=progress)
    return read_pointclouds(path)


def jetnet_dir(config: JetDataConfig) -> Path:
    """Where JetNet's files are looked for: ``data.path``, else ``<cache_dir>/jetnet``."""
    return Path(config.path) if config.path is not None else Path(config.cache_dir) / "jetnet"


def load_jetnet(config: JetDataConfig, progress: bool = True) -> PointClouds:
    """JetNet's real jets of ``config.jet_type`` with ``config.num_particles`` particles, read offline."""
    return read_jetnet(jetnet_dir(config), config.jet_type, config.num_particles)


def load_file(config: DataConfig, progress: bool = True) -> PointClouds:
    """Point clouds from the HDF5 file ``config.path`` (pcgen's or JetNet's layout), cut to N particles."""
    if config.path is None:
        raise DataError("dataset 'file' needs data.path, the HDF5 file to read (e.g. --set data.path=jets.h5)")
    pc = read_pointclouds(Path(config.path), max_particles=config.num_particles)
    return replace(pc, meta={**pc.meta, "file": str(config.path)})


DATASETS: list[DatasetSpec] = [
    DatasetSpec(
        name="pythia",
        load=load_pythia,
        description="JetNet-like jets made here with Pythia 8 (13 TeV, Monash) and FastJet (anti-kT R=0.8), cached",
        kind="jets",
    ),
    DatasetSpec(
        name="jetnet",
        load=load_jetnet,
        description="JetNet's real jets from its HDF5 files in data.path (default <cache_dir>/jetnet)",
        kind="jets",
    ),
    DatasetSpec(
        name="file",
        load=load_file,
        description="Point clouds from an HDF5 file in pcgen's / JetNet's layout (data.path); its kind is the file's",
        kind="",
    ),
]
