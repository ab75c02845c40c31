"""pcgen's on-disk format for point clouds: HDF5 in JetNet's own layout.

One file holds

- ``particle_features``: ``(clouds, N, F + 1)`` float32, the F particle features followed by the mask
  as 0/1 (for jets: eta_rel, phi_rel, pt_rel, mask, exactly as in JetNet's files);
- ``jet_features``: ``(clouds, G)`` float32 cloud-level features (for jets: pt, eta, mass,
  num_particles, as in JetNet's files);
- attributes ``format``, ``format_version``, ``feature_names``, ``global_names`` and ``meta`` (JSON
  strings), which JetNet's files lack; a file without them is read with JetNet's names.

So :func:`read_pointclouds` reads both pcgen's files and JetNet's, and checks what it reads
(:mod:`pcgen.data.validation`: layout, mask, finite values, plausible jet coordinates). Every write
is atomic: the file is built in memory, written to a temporary file in the target folder, which
then replaces the target in one ``os.replace``; HDF5 never writes to the disk itself, so a full
disk or a file-size limit is one ``OSError`` (a :class:`~pcgen.safe_io.FileAccessError` naming the
file), never a crash inside the HDF5 library, and leaves nothing behind.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from pcgen.data import validation
from pcgen.data.errors import DataError, DataFileNotFoundError, NonFiniteDataError  # noqa: F401 - re-exported
from pcgen.data.pointclouds import JET_FEATURES, JET_GLOBALS, PointClouds
from pcgen.safe_io import atomic_path, file_operation

FORMAT = "pcgen-pointclouds"
FORMAT_VERSION = 1
PARTICLE_KEY = "particle_features"
GLOBAL_KEY = "jet_features"
_HOW_TO_FIX = (
    "make it with `pcgen data generate` (Pythia 8 jets), point data.path at an existing file, "
    "or use dataset='jetnet' with JetNet's own files"
)


def write_hdf5(path: Path, fill: Callable[[Any], None], operation: str = "write") -> Path:
    """Write the HDF5 file that ``fill(h5py_file)`` makes to ``path``, atomically, and return ``path``.

    The file is built in memory and written with one plain write: a full disk or a file-size limit
    is a :class:`~pcgen.safe_io.FileAccessError` ("cannot <operation> <path>: no space left on the
    device"), the previous file at ``path`` is kept and no partial file is left.
    """
    import h5py

    path = Path(path)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        fill(f)
    with atomic_path(path, operation) as tmp, file_operation(operation, path):
        tmp.write_bytes(buffer.getbuffer())
    return path


def write_pointclouds(pc: PointClouds, path: Path, compress: bool = True) -> Path:
    """Write ``pc`` to ``path`` (HDF5, JetNet layout) atomically (see :func:`write_hdf5`) and return ``path``."""
    particles = np.concatenate([pc.points, pc.mask[..., None]], axis=-1).astype(np.float32)
    particles[~pc.mask] = 0.0
    globs = pc.globals if pc.globals.size else np.zeros((len(pc), 0), np.float32)
    options: dict[str, Any] = {"compression": "gzip", "compression_opts": 4, "shuffle": True} if compress else {}

    def fill(f: Any) -> None:
        f.create_dataset(PARTICLE_KEY, data=particles, **(options if particles.size else {}))
        f.create_dataset(GLOBAL_KEY, data=globs.astype(np.float32), **(options if globs.size else {}))
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["feature_names"] = json.dumps(list(pc.feature_names))
        f.attrs["global_names"] = json.dumps(list(pc.global_names))
        f.attrs["meta"] = json.dumps(pc.meta, default=str, sort_keys=True)

    return write_hdf5(Path(path), fill, "write point clouds to")


def read_pointclouds(path: Path, max_particles: int | None = None) -> PointClouds:
    """Read a pcgen or JetNet HDF5 file, keeping at most ``max_particles`` leading particles per cloud.

    When particles are cut away, a ``num_particles`` global is clipped to ``max_particles`` as
    JetNet's loader does. Raises :class:`DataError` naming the file for anything unusable, checked
    by :mod:`pcgen.data.validation` (:class:`NonFiniteDataError` for NaN or infinite values).
    """
    path = Path(path)
    with open_hdf5(path) as f:
        particles_ds, globals_ds = _checked_datasets(f, path)
        if max_particles is not None and max_particles > particles_ds.shape[1]:
            raise DataError(
                f"{path} holds {particles_ds.shape[1]} particles per cloud but {max_particles} were "
                f"asked for; ask for at most {particles_ds.shape[1]} (data.num_particles)"
            )
        keep = particles_ds.shape[1] if max_particles is None else max_particles
        particles = _read(lambda: np.asarray(particles_ds[:, :keep], dtype=np.float32), path, PARTICLE_KEY)
        globs = _read(lambda: np.asarray(globals_ds[()], dtype=np.float32), path, GLOBAL_KEY)
        validation.check_layout(particles.shape[-1], "feature_names" in f.attrs, path, PARTICLE_KEY)
        feature_names = _names(f.attrs, "feature_names", JET_FEATURES, particles.shape[-1] - 1, path)
        global_names = _names(f.attrs, "global_names", JET_GLOBALS, globs.shape[-1], path)
        meta = _meta(f.attrs, path)
    validation.check_particles(particles, feature_names, path, PARTICLE_KEY, declared_kind=bool(meta.get("kind")))
    validation.check_finite_globals(globs, global_names, path, GLOBAL_KEY)
    mask = particles[..., -1] != 0
    points = np.where(mask[..., None], particles[..., :-1], np.float32(0.0)).astype(np.float32)
    if "num_particles" in global_names and globs.size:
        col = global_names.index("num_particles")
        globs[:, col] = np.minimum(globs[:, col], keep)
    return PointClouds(points, mask, feature_names, globs, global_names, meta)


def read_meta(path: Path) -> dict[str, Any]:
    """The ``meta`` attribute of a file written by :func:`write_pointclouds` (``{}`` if it has none)."""
    path = Path(path)
    with open_hdf5(path) as f:
        return _meta(f.attrs, path)


def num_clouds(path: Path) -> int:
    """How many clouds a valid file holds, without reading the arrays."""
    path = Path(path)
    with open_hdf5(path) as f:
        particles_ds, _ = _checked_datasets(f, path)
        return int(particles_ds.shape[0])


@contextmanager
def open_hdf5(path: Path, how_to_fix: str = "") -> Iterator[Any]:
    """Open an HDF5 file for reading; a missing, folder or unreadable path is a :class:`DataError`.

    ``how_to_fix`` replaces the default hint (how to make or fetch jet data) in the message.
    """
    import h5py

    hint = how_to_fix or _HOW_TO_FIX
    if not path.exists():
        raise DataFileNotFoundError(f"data file {path} does not exist; {hint}")
    if path.is_dir():
        raise DataError(f"data file {path} is a folder, not an HDF5 file; {hint}")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"data file {path} is not a readable HDF5 file (corrupt or truncated?): {err}") from err
    with f:
        yield f


def _checked_datasets(f: Any, path: Path) -> tuple[Any, Any]:
    """The two datasets of a file, after checking that they exist and their shapes agree."""
    missing = [k for k in (PARTICLE_KEY, GLOBAL_KEY) if k not in f]
    if missing:
        raise DataError(
            f"data file {path} lacks {', '.join(missing)} (it has: {', '.join(sorted(f.keys())) or 'nothing'}); "
            f"expected JetNet's layout '{PARTICLE_KEY}' (clouds, N, features + mask) and '{GLOBAL_KEY}'"
        )
    particles, globs = f[PARTICLE_KEY], f[GLOBAL_KEY]
    if not hasattr(particles, "shape") or not hasattr(globs, "shape"):
        raise DataError(f"data file {path}: '{PARTICLE_KEY}' and '{GLOBAL_KEY}' must be datasets, not groups")
    if len(particles.shape) != 3 or particles.shape[2] < 2:
        raise DataError(
            f"data file {path}: '{PARTICLE_KEY}' has shape {particles.shape}, expected (clouds, N, features + mask)"
        )
    if len(globs.shape) != 2 or globs.shape[0] != particles.shape[0]:
        raise DataError(
            f"data file {path}: '{GLOBAL_KEY}' has shape {globs.shape}, expected ({particles.shape[0]}, features)"
        )
    return particles, globs


def _read(load: Callable[[], np.ndarray], path: Path, key: str) -> np.ndarray:
    try:
        return load()
    except (OSError, RuntimeError, ValueError) as err:
        raise DataError(f"data file {path}: cannot read '{key}' (truncated or corrupt file?): {err}") from err


def _names(attrs: Any, key: str, default: tuple[str, ...], width: int, path: Path) -> tuple[str, ...]:
    if key not in attrs:
        return default if len(default) == width else tuple(f"f{i}" for i in range(width))
    try:
        names = tuple(str(n) for n in json.loads(attrs[key]))
    except (TypeError, ValueError) as err:
        raise DataError(f"data file {path}: attribute '{key}' is not a JSON list of names: {err}") from err
    if len(names) != width:
        raise DataError(f"data file {path}: attribute '{key}' lists {len(names)} names for {width} columns")
    return names


def _meta(attrs: Any, path: Path) -> dict[str, Any]:
    if "meta" not in attrs:
        return {}
    try:
        meta = json.loads(attrs["meta"])
    except (TypeError, ValueError) as err:
        raise DataError(f"data file {path}: attribute 'meta' is not valid JSON: {err}") from err
    if not isinstance(meta, dict):
        raise DataError(f"data file {path}: attribute 'meta' must be a JSON object")
    return meta
