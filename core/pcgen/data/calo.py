"""Calorimeter showers: the CaloChallenge voxel format, pcgen's point-cloud shower files, conversions.

Conventions (all energies in MeV, as in the CaloChallenge files):

- A voxel grid is a :class:`CaloGeometry` ``(layers, bins_x, bins_y)``; a flat voxel index is
  ``(layer * bins_x + ix) * bins_y + iy``, i.e. CaloChallenge's ``reshape(-1, layers, alpha, radial)``
  order. For dataset 2 (:data:`DATASET2`) ``x`` is the angular bin and ``y`` the radial bin.
- A shower as a point cloud has the features :data:`SHOWER_FEATURES` ``(x, y, z, E)``: continuous cell
  coordinates (cell ``i`` spans ``[i, i + 1)``, ``z`` is the layer), and the hit energy ``E``; hits are
  sorted by energy, highest first, and zero-padded. Its globals are :data:`SHOWER_GLOBALS`
  ``(incident_energy, num_hits)``.
- A point-cloud shower file is pcgen's HDF5 layout of :mod:`pcgen.data.store` with those names; the
  CaloChallenge file holds ``incident_energies`` ``(n, 1)`` and ``showers`` ``(n, voxels)``.

Voxels -> cloud makes one hit per non-zero voxel. With ``dequantise=True`` each hit's coordinates get
uniform noise inside its cell (the MDMA paper dequantises the voxel index with noise; it tilts that
noise by the hit counts of neighbouring bins, here it is uniform), so the cloud is not on a lattice;
otherwise hits sit at cell centres. Cloud -> voxels bins hits by ``floor`` of their coordinates
(clipped to the grid) and sums energies per cell, so the round trip is exact per cell.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from pcgen.data.pointclouds import SHOWER_FEATURES, PointClouds
from pcgen.data.store import DataError, open_hdf5, read_pointclouds, write_hdf5, write_pointclouds

CALOCHALLENGE_HINT = (
    "pass the path of a CaloChallenge HDF5 file (keys 'incident_energies' and 'showers') with data.path"
)

SHOWER_GLOBALS = ("incident_energy", "num_hits")
"""Shower-level features: incident energy (MeV) and number of hits."""
INCIDENT_KEY = "incident_energies"
SHOWER_KEY = "showers"
_EDGE = 1e-4
"""Dequantisation noise keeps this fraction of a cell from its edges, so float32 rounding never moves a hit."""


@dataclass(frozen=True)
class CaloGeometry:
    """A regular voxel grid: ``layers`` along the shower axis (z) times ``bins_x`` x ``bins_y`` per layer."""

    layers: int
    bins_x: int
    bins_y: int
    name: str = ""

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(layers, bins_x, bins_y)``: the shape of one shower's voxels."""
        return (self.layers, self.bins_x, self.bins_y)

    @property
    def num_voxels(self) -> int:
        return self.layers * self.bins_x * self.bins_y

    def cell_coordinates(self) -> np.ndarray:
        """``(voxels, 3)`` integer ``(x, y, z)`` index of every flat voxel."""
        z, x, y = np.unravel_index(np.arange(self.num_voxels), self.shape)
        return np.stack([x, y, z], axis=1)

    def flat_index(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Flat voxel index of continuous coordinates (floored and clipped to the grid)."""
        ix = np.clip(np.floor(x), 0, self.bins_x - 1).astype(np.int64)
        iy = np.clip(np.floor(y), 0, self.bins_y - 1).astype(np.int64)
        iz = np.clip(np.floor(z), 0, self.layers - 1).astype(np.int64)
        return (iz * self.bins_x + ix) * self.bins_y + iy


DATASET2 = CaloGeometry(layers=45, bins_x=16, bins_y=9, name="calochallenge-2")
"""CaloChallenge dataset 2: 45 layers x 16 angular bins x 9 radial bins = 6480 voxels."""


@dataclass(frozen=True)
class VoxelShowers:
    """Showers as voxels: ``energies`` ``(n, voxels)`` and ``incident`` ``(n,)``, float32, MeV."""

    energies: np.ndarray
    incident: np.ndarray
    geometry: CaloGeometry

    def __post_init__(self) -> None:
        if self.energies.ndim != 2 or self.energies.shape[1] != self.geometry.num_voxels:
            raise ValueError(
                f"energies have shape {self.energies.shape}, "
                f"expected (n, {self.geometry.num_voxels}) for {self.geometry}"
            )
        if self.incident.shape != (len(self.energies),):
            raise ValueError(f"incident has shape {self.incident.shape}, expected ({len(self.energies)},)")

    def __len__(self) -> int:
        return int(self.energies.shape[0])


# ------------------------------------------------------------------------------------------------
# CaloChallenge files
# ------------------------------------------------------------------------------------------------


def read_calochallenge(path: Path, geometry: CaloGeometry = DATASET2, max_showers: int | None = None) -> VoxelShowers:
    """Read a CaloChallenge HDF5 file; :class:`DataError` naming the file for anything unusable."""
    path = Path(path)
    with open_hdf5(path, CALOCHALLENGE_HINT) as f:
        inc_ds, sh_ds = _checked_calo_datasets(f, path, geometry)
        stop = len(sh_ds) if max_showers is None else min(max_showers, len(sh_ds))
        try:
            incident = np.asarray(inc_ds[:stop], dtype=np.float32).reshape(stop)
            energies = np.asarray(sh_ds[:stop], dtype=np.float32)
        except (OSError, RuntimeError, ValueError) as err:
            raise DataError(f"data file {path}: cannot read the showers (truncated or corrupt file?): {err}") from err
    if not (np.isfinite(energies).all() and np.isfinite(incident).all()):
        raise DataError(f"data file {path}: '{SHOWER_KEY}' or '{INCIDENT_KEY}' holds NaN or infinite values")
    if (energies < 0).any():
        raise DataError(f"data file {path}: '{SHOWER_KEY}' holds negative voxel energies")
    return VoxelShowers(energies, incident, geometry)


def _checked_calo_datasets(f: Any, path: Path, geometry: CaloGeometry) -> tuple[Any, Any]:
    """The two datasets of a CaloChallenge file, after checking keys and shapes against ``geometry``."""
    missing = [k for k in (INCIDENT_KEY, SHOWER_KEY) if k not in f or not hasattr(f[k], "shape")]
    if missing:
        raise DataError(
            f"data file {path} lacks dataset(s) {', '.join(missing)} "
            f"(it has: {', '.join(sorted(f.keys())) or 'nothing'}); "
            f"expected CaloChallenge's '{INCIDENT_KEY}' (n, 1) and '{SHOWER_KEY}' (n, voxels)"
        )
    inc, sh = f[INCIDENT_KEY], f[SHOWER_KEY]
    if len(sh.shape) != 2 or sh.shape[1] != geometry.num_voxels:
        raise DataError(
            f"data file {path}: '{SHOWER_KEY}' has shape {sh.shape}, expected (n, {geometry.num_voxels}) for "
            f"geometry {geometry.shape} ({geometry.name or 'custom'}); pass the file's geometry"
        )
    if inc.shape not in ((sh.shape[0], 1), (sh.shape[0],)):
        raise DataError(
            f"data file {path}: '{INCIDENT_KEY}' has shape {inc.shape} but '{SHOWER_KEY}' holds {sh.shape[0]} "
            f"showers; expected ({sh.shape[0]}, 1)"
        )
    return inc, sh


def write_calochallenge(showers: VoxelShowers, path: Path) -> Path:
    """Write ``showers`` in CaloChallenge's layout (atomically, see :func:`~pcgen.data.store.write_hdf5`)
    and return ``path``."""

    def fill(f: Any) -> None:
        f.create_dataset(INCIDENT_KEY, data=showers.incident.reshape(-1, 1).astype(np.float32))
        f.create_dataset(SHOWER_KEY, data=showers.energies.astype(np.float32), compression="gzip", shuffle=True)

    return write_hdf5(Path(path), fill, "write showers to")


# ------------------------------------------------------------------------------------------------
# Point-cloud shower files
# ------------------------------------------------------------------------------------------------


def write_showers(pc: PointClouds, path: Path) -> Path:
    """Write shower point clouds (features ``x, y, z, E``) in pcgen's HDF5 layout, atomically."""
    _check_shower_names(pc, str(path))
    return write_pointclouds(pc, Path(path))


def read_showers(path: Path, max_hits: int | None = None) -> PointClouds:
    """Read a point-cloud shower file, keeping the ``max_hits`` leading (highest-energy) hits."""
    pc = read_pointclouds(Path(path), max_particles=max_hits)
    _check_shower_names(pc, str(path))
    return pc


def _check_shower_names(pc: PointClouds, where: str) -> None:
    if pc.feature_names != SHOWER_FEATURES:
        raise DataError(f"{where}: hit features are {pc.feature_names}, expected {SHOWER_FEATURES} for showers")
    if "incident_energy" not in pc.global_names or not pc.globals.size:
        raise DataError(f"{where}: showers need the global 'incident_energy' (has: {pc.global_names})")


# ------------------------------------------------------------------------------------------------
# Conversions
# ------------------------------------------------------------------------------------------------


def voxels_to_pointclouds(
    showers: VoxelShowers,
    max_hits: int | None = None,
    dequantise: bool = True,
    seed: int = 0,
) -> PointClouds:
    """One hit per non-zero voxel, sorted by energy (highest first) and padded to ``max_hits``.

    ``max_hits`` None: the largest hit count of the set. Showers with more hits keep the
    ``max_hits`` highest-energy ones (their ``num_hits`` global is the kept count; the energy of
    the dropped hits is lost). ``dequantise``: uniform noise within the cell, seeded by ``seed``.
    """
    e = showers.energies
    counts = (e > 0).sum(axis=1)
    n_max = int(counts.max(initial=0)) if max_hits is None else int(max_hits)
    order = np.argsort(-e, axis=1, kind="stable")[:, :n_max]
    hit_e = np.take_along_axis(e, order, axis=1)
    mask = hit_e > 0
    cells = showers.geometry.cell_coordinates()[order].astype(np.float64)
    if dequantise:
        offset = _EDGE + (1 - 2 * _EDGE) * np.random.default_rng(seed).random(cells.shape)
    else:
        offset = np.full(cells.shape, 0.5)
    points = np.concatenate([cells + offset, hit_e[..., None]], axis=-1)
    points = np.where(mask[..., None], points, 0.0).astype(np.float32)
    pad = n_max - points.shape[1]
    if pad > 0:
        points = np.pad(points, ((0, 0), (0, pad), (0, 0)))
        mask = np.pad(mask, ((0, 0), (0, pad)))
    globs = np.stack([showers.incident, mask.sum(axis=1)], axis=1).astype(np.float32)
    meta = {"kind": "showers", "geometry": list(showers.geometry.shape), "dequantised": dequantise}
    return PointClouds(points, mask, SHOWER_FEATURES, globs, SHOWER_GLOBALS, meta)


def pointclouds_to_voxels(pc: PointClouds, geometry: CaloGeometry) -> VoxelShowers:
    """Bin hits into cells (floor of the coordinates, clipped to the grid) and sum their energies."""
    _check_shower_names(pc, "point clouds")
    x, y, z, e = (pc.points[..., i] for i in range(4))
    flat = geometry.flat_index(x, y, z) + np.arange(len(pc))[:, None] * geometry.num_voxels
    weights = np.where(pc.mask, e, 0.0).astype(np.float64)
    summed = np.bincount(flat[pc.mask], weights=weights[pc.mask], minlength=len(pc) * geometry.num_voxels)
    energies = summed.reshape(len(pc), geometry.num_voxels).astype(np.float32)
    incident = pc.globals[:, pc.global_names.index("incident_energy")].astype(np.float32)
    return VoxelShowers(energies, incident, geometry)


# ------------------------------------------------------------------------------------------------
# Data set: CaloChallenge file as point clouds
# ------------------------------------------------------------------------------------------------


def load_calochallenge(config: Any, progress: bool = True) -> PointClouds:
    """CaloChallenge dataset-2 file ``config.path`` as point clouds.

    DataConfig mapping: ``path`` the HDF5 file, ``num_jets`` the number of showers read (at most),
    ``num_particles`` the maximum hits N (highest-energy hits kept), ``seed`` the dequantisation seed.
    """
    if config.path is None:
        raise DataError("dataset 'calochallenge-2' needs data.path, the CaloChallenge HDF5 file")
    voxels = read_calochallenge(Path(config.path), DATASET2, max_showers=config.num_jets)
    pc = voxels_to_pointclouds(voxels, max_hits=config.num_particles, dequantise=True, seed=config.seed)
    return replace(pc, meta={**pc.meta, "file": str(config.path)})
