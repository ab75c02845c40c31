"""JetNet's real data: read its HDF5 files directly, download them with ``jetnet``.

``jetnet.datasets.JetNet.getData`` asks Zenodo for the file's md5 on every call, even when the file is
on disk, so it fails offline; pcgen reads the files itself with h5py and uses jetnet only to download.

File layout (checked against jetnet 0.2.5, ``jetnet/datasets/jetnet.py``): files ``{g,q,t,w,z}.hdf5``
(Zenodo record 6975118, 30 particles) and ``{g,q,t,w,z}150.hdf5`` (record 6975117, 150 particles)
hold ``particle_features`` ``(jets, particles, 4)`` = (eta_rel, phi_rel, pt_rel, mask) and
``jet_features`` ``(jets, 4)`` = (pt, eta, mass, num_particles). jetnet's loader prepends a class
index to the jet features (its ``ALL_JET_FEATURES`` is ``type, pt, eta, mass, num_particles``) and
clips ``num_particles`` to the requested number of particles; :func:`read_jetnet` does the same clip
and leaves out the class index.
"""

from __future__ import annotations

from pathlib import Path

from pcgen.data.pointclouds import JET_FEATURES, PointClouds
from pcgen.data.store import PARTICLE_KEY, DataError, DataFileNotFoundError, read_pointclouds
from pcgen.data.validation import JETNET_COLUMNS

JET_TYPES = ("g", "q", "t", "w", "z")
MAX_PARTICLES = 150
ZENODO_RECORDS = {30: 6975118, 150: 6975117}


def jetnet_filename(jet_type: str, num_particles: int) -> str:
    """JetNet's file for a jet type and number of particles: ``t.hdf5`` (N <= 30) or ``t150.hdf5``."""
    _check_request(jet_type, num_particles)
    return f"{jet_type}150.hdf5" if num_particles > 30 else f"{jet_type}.hdf5"


def jetnet_path(data_dir: Path, jet_type: str, num_particles: int) -> Path:
    """Where JetNet's file for ``jet_type`` and ``num_particles`` lies in ``data_dir``."""
    return Path(data_dir) / jetnet_filename(jet_type, num_particles)


def read_jetnet(data_dir: Path, jet_type: str, num_particles: int) -> PointClouds:
    """Read JetNet's ``jet_type`` jets with the leading ``num_particles`` particles, offline.

    Raises :class:`DataError` (a ``FileNotFoundError`` too when the file is missing) saying where it
    looked and how to get the file, or what is wrong with its contents (checked as it is read: JetNet's
    4 columns, a 0/1 mask of leading real particles, finite and plausible values).
    """
    path = jetnet_path(data_dir, jet_type, num_particles)
    if not path.is_file():
        raise DataFileNotFoundError(
            f"JetNet file {path} not found (looked for {path.name} in {Path(data_dir)}); get it with "
            f"pcgen.data.jetnet_files.download_jetnet({str(data_dir)!r}, {jet_type!r}, {num_particles}) "
            f"on a machine with internet, or download {path.name} from "
            f"https://zenodo.org/record/{_record(num_particles)} into {Path(data_dir)}"
        )
    pc = read_pointclouds(path, max_particles=num_particles)
    if pc.feature_names != JET_FEATURES:
        raise DataError(
            f"JetNet file {path}: '{PARTICLE_KEY}' holds the features ({', '.join(pc.feature_names)}), but JetNet's "
            f"files hold [jets, particles, 4] = ({', '.join(JETNET_COLUMNS)}); use dataset='file' for other files"
        )
    meta = {**pc.meta, "source": "jetnet", "jet_type": jet_type, "num_particles": num_particles, "file": str(path)}
    return PointClouds(pc.points, pc.mask, pc.feature_names, pc.globals, pc.global_names, meta)


def download_jetnet(data_dir: Path, jet_type: str, num_particles: int) -> Path:
    """Download JetNet's file for ``jet_type`` / ``num_particles`` into ``data_dir`` with jetnet.

    Needs internet (jetnet checks the file's md5 against Zenodo). Returns the file's path; wraps any
    failure in :class:`DataError`.
    """
    path = jetnet_path(data_dir, jet_type, num_particles)
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    try:
        from jetnet.datasets import JetNet

        JetNet.getData(
            jet_type=jet_type,
            data_dir=str(data_dir),
            particle_features=None,
            jet_features=["num_particles"],
            num_particles=num_particles,
            split="all",
            download=True,
        )
    except Exception as err:  # jetnet raises requests, RuntimeError (md5) or OS errors
        raise DataError(
            f"could not download JetNet {path.name} into {Path(data_dir)} with jetnet "
            f"({type(err).__name__}: {err}); this needs internet access to zenodo.org (record "
            f"{_record(num_particles)}); otherwise copy the file there by hand"
        ) from err
    if not path.is_file():
        raise DataError(f"jetnet reported success but {path} does not exist; download {path.name} by hand")
    return path


def _record(num_particles: int) -> int:
    return ZENODO_RECORDS[150 if num_particles > 30 else 30]


def _check_request(jet_type: str, num_particles: int) -> None:
    if jet_type not in JET_TYPES:
        raise DataError(f"unknown JetNet jet type {jet_type!r}; choose one of {', '.join(JET_TYPES)}")
    if not 1 <= num_particles <= MAX_PARTICLES:
        raise DataError(f"JetNet holds 1 to {MAX_PARTICLES} particles per jet, {num_particles} were asked for")
