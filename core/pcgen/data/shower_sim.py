"""A parametrised electromagnetic shower simulator (a parametrisation, NOT a full simulation).

Photons hit the centre of the front face of a 30 x 30 x 30 cell sampling calorimeter (an ILD-like
grid as in the OmniJet-alpha calorimeter data: 5 mm cells, 30 layers). Each shower is built from
independent energy "spots" (Grindhammer-Peters style):

- incident energy E: log-uniform in [10, 100] GeV (stored in MeV, as CaloChallenge does);
- longitudinal profile (Longo-Sestili): the depth t (in X0) of a spot is Gamma(a, b) distributed,
  dE/dt ~ t^(a-1) e^(-b t), with b fixed and a = 1 + b t_max, where t_max = ln(E / E_c) - 0.5 for
  photons, so a grows logarithmically with E; a and b fluctuate a little from shower to shower.
  Layers are ``layer_x0`` radiation lengths thick;
- radial profile: a core and a tail component, each f(r) ~ 2 r R^2 / (r^2 + R^2)^2 (Grindhammer's
  form) with Moliere-radius-like scales ``core_radius`` < ``tail_radius`` (cells) that widen with
  depth; azimuth uniform;
- sampling fluctuations: the number of spots is Poisson with mean ``spots_per_gev * E`` and spot
  energies are Gamma(``spot_shape``) distributed, so the visible energy is ``sampling_fraction * E``
  on average with a stochastic term of about sqrt((1 + 1/k) / spots_per_gev) ~ 12.5 % / sqrt(E / GeV).

A hit is an occupied cell: all spots landing in it are merged, the hit energy is their sum and its
(x, y, z) their energy-weighted mean position, so hits lie inside their cells but not on a lattice
(cell ``i`` spans ``[i, i + 1)``). Spots leaking out of the grid are lost. Showers come out as
:class:`PointClouds` in the conventions of :mod:`pcgen.data.calo`: ``(x, y, z, E)`` hits sorted by
energy (highest first), zero-padded to N; showers with more than N hits keep the N most energetic.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from pcgen.data.calo import SHOWER_FEATURES, SHOWER_GLOBALS, load_calochallenge, read_showers, write_showers
from pcgen.data.pointclouds import PointClouds
from pcgen.specs import DatasetSpec

GEV = 1000.0
"""MeV per GeV."""


@dataclass(frozen=True)
class ShowerParams:
    """Settings of the parametrisation (defaults: a tungsten-silicon ECAL-like detector)."""

    grid: int = 30
    """Cells per side of the cubic grid (x, y: lateral; z: layers)."""
    min_energy_gev: float = 10.0
    max_energy_gev: float = 100.0
    critical_energy_mev: float = 8.0
    """E_c of the absorber (tungsten: ~8 MeV)."""
    layer_x0: float = 0.8
    """Radiation lengths per layer (30 layers = 24 X0)."""
    b: float = 0.5
    """Longitudinal slope parameter b (1/X0)."""
    shape_spread: float = 0.05
    """Relative shower-to-shower spread of a and b."""
    core_radius: float = 0.7
    tail_radius: float = 2.8
    core_fraction: float = 0.75
    radius_growth: float = 0.6
    """Radii scale as (1 - growth/2 + growth * t / t_max / 2), i.e. showers widen with depth."""
    sampling_fraction: float = 0.015
    spots_per_gev: float = 80.0
    spot_shape: float = 4.0
    """Gamma shape k of spot energies."""

    def fingerprint(self) -> str:
        """A hash of every setting, for cache file names."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


def sample_incident_energies(rng: np.random.Generator, n: int, params: ShowerParams) -> np.ndarray:
    """Log-uniform incident energies in [min, max] GeV, returned in MeV."""
    lo, hi = np.log(params.min_energy_gev), np.log(params.max_energy_gev)
    return np.exp(rng.uniform(lo, hi, n)) * GEV


def shower_max(energy_mev: np.ndarray, params: ShowerParams) -> np.ndarray:
    """Depth of the shower maximum in X0 for photons: ln(E / E_c) - 0.5."""
    return np.log(energy_mev / params.critical_energy_mev) - 0.5


def _spots(rng: np.random.Generator, energy: np.ndarray, params: ShowerParams) -> tuple[np.ndarray, ...]:
    """All spots of all showers: (shower index, x, y, z in cells, energy in MeV)."""
    counts = rng.poisson(params.spots_per_gev * energy / GEV)
    owner = np.repeat(np.arange(len(energy)), counts)
    t_max = shower_max(energy, params)
    b = params.b * (1 + params.shape_spread * rng.standard_normal(len(energy)))
    a = (1 + b * t_max) * (1 + params.shape_spread * rng.standard_normal(len(energy)))
    depth = rng.gamma(a[owner], 1.0 / b[owner])
    widen = 1 - params.radius_growth / 2 + params.radius_growth * depth / t_max[owner] / 2
    core = rng.random(len(owner)) < params.core_fraction
    scale = np.where(core, params.core_radius, params.tail_radius) * widen
    u = rng.random(len(owner))
    radius = scale * np.sqrt(u / (1 - u))
    phi = rng.uniform(0, 2 * np.pi, len(owner))
    centre = params.grid / 2 + rng.uniform(-0.5, 0.5, (len(energy), 2))
    x = centre[owner, 0] + radius * np.cos(phi)
    y = centre[owner, 1] + radius * np.sin(phi)
    z = depth / params.layer_x0
    mean_spot = params.sampling_fraction * GEV / params.spots_per_gev
    e = rng.gamma(params.spot_shape, mean_spot / params.spot_shape, len(owner))
    return owner, x, y, z, e


def _merge_into_cells(
    owner: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray, e: np.ndarray, grid: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge spots per cell: (shower of each hit, (hits, 3) energy-weighted position, hit energy)."""
    inside = (x >= 0) & (x < grid) & (y >= 0) & (y < grid) & (z >= 0) & (z < grid)
    owner, x, y, z, e = owner[inside], x[inside], y[inside], z[inside], e[inside]
    cell = ((owner * grid + z.astype(np.int64)) * grid + x.astype(np.int64)) * grid + y.astype(np.int64)
    cells, inverse = np.unique(cell, return_inverse=True)
    energy = np.bincount(inverse, weights=e, minlength=len(cells))
    pos = np.stack([np.bincount(inverse, weights=e * c, minlength=len(cells)) for c in (x, y, z)], axis=1)
    pos /= energy[:, None]
    corner = np.stack([(cells // grid) % grid, cells % grid, (cells // grid**2) % grid], axis=1)
    pos = np.clip(pos, corner, corner + 1 - 1e-4)  # guard rounding at cell edges
    return cells // grid**3, pos, energy


def _pad_sorted(
    n: int, shower: np.ndarray, pos: np.ndarray, energy: np.ndarray, max_hits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hits per shower sorted by energy (highest first), cut to ``max_hits``: (points, mask, all counts)."""
    order = np.lexsort((-energy, shower))
    shower, pos, energy = shower[order], pos[order], energy[order]
    counts = np.bincount(shower, minlength=n)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(shower)) - start[shower]
    keep = rank < max_hits
    points = np.zeros((n, max_hits, 4), np.float32)
    points[shower[keep], rank[keep], :3] = pos[keep]
    points[shower[keep], rank[keep], 3] = energy[keep]
    mask = np.zeros((n, max_hits), bool)
    mask[shower[keep], rank[keep]] = True
    return points, mask, counts


def simulate_showers(
    num_showers: int, seed: int = 0, max_hits: int = 1700, params: ShowerParams = ShowerParams(), chunk: int = 500
) -> PointClouds:
    """``num_showers`` photon showers, seeded; hits beyond ``max_hits`` (lowest energies) are dropped.

    ``meta["fraction_cut"]`` is the fraction of showers that had more than ``max_hits`` hits.
    """
    rng = np.random.default_rng(seed)
    energy = sample_incident_energies(rng, num_showers, params)
    parts = [_simulate_chunk(rng, energy[i : i + chunk], params, max_hits) for i in range(0, num_showers, chunk)]
    points = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, max_hits, 4), np.float32)
    mask = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, max_hits), bool)
    cut = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.int64)
    globs = np.stack([energy, mask.sum(axis=1)], axis=1).astype(np.float32)
    meta = {
        "kind": "showers",
        "source": "calo-photons parametrised simulator",
        "seed": seed,
        "geometry": [params.grid] * 3,
        "params": asdict(params),
        "fraction_cut": float((cut > max_hits).mean()) if len(cut) else 0.0,
    }
    return PointClouds(points, mask, SHOWER_FEATURES, globs, SHOWER_GLOBALS, meta)


def _simulate_chunk(
    rng: np.random.Generator, energy: np.ndarray, params: ShowerParams, max_hits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    owner, x, y, z, e = _spots(rng, energy, params)
    shower, pos, hit_e = _merge_into_cells(owner, x, y, z, e, params.grid)
    return _pad_sorted(len(energy), shower, pos, hit_e, max_hits)


# ------------------------------------------------------------------------------------------------
# Data sets
# ------------------------------------------------------------------------------------------------


def cached_path(config: Any, params: ShowerParams = ShowerParams()) -> Path:
    """Cache file of the ``calo-photons`` set for ``config``; its name encodes every setting."""
    name = (
        f"calo-photons-{config.num_jets}showers-N{config.num_particles}-seed{config.seed}"
        f"-{params.fingerprint()[:10]}.h5"
    )
    return Path(config.cache_dir) / name


def load_calo_photons(config: Any, progress: bool = True) -> PointClouds:
    """Parametrised photon showers for ``config``, read from the cache (made first if missing).

    DataConfig mapping: ``num_jets`` = number of showers, ``seed`` = simulator seed,
    ``num_particles`` = maximum hits N (the N highest-energy hits are kept; the data set's default,
    1,700, keeps every hit of 10-100 GeV photons),
    ``cache_dir`` = where the file is cached. ``progress`` is unused (generation takes seconds).
    """
    path = cached_path(config)
    if not path.exists():
        write_showers(simulate_showers(config.num_jets, config.seed, config.num_particles), path)
    pc = read_showers(path)
    return replace(pc, meta={**pc.meta, "file": str(path)})


SHOWER_RUN_DEFAULTS: dict[str, Any] = {
    "data": {"num_particles": 1700},
    "train": {"batch_size": 16},
    "eval": {"num_jets": 300},
}
"""Run settings for shower data (under the user's): every hit kept, batches and evaluation sized for
clouds of up to 1,700 points."""

CALO_DATASETS: list[DatasetSpec] = [
    DatasetSpec(
        name="calo-photons",
        load=load_calo_photons,
        description=(
            "Parametrised (not Geant4) 10-100 GeV photon showers in a 30^3-cell ECAL grid, (x, y, z, E) hits, cached"
        ),
        kind="showers",
        config_defaults=SHOWER_RUN_DEFAULTS,
    ),
    DatasetSpec(
        name="calochallenge-2",
        load=load_calochallenge,
        description="CaloChallenge dataset 2 (45x16x9 voxels) from the HDF5 file data.path, as dequantised clouds",
        kind="showers",
        config_defaults=SHOWER_RUN_DEFAULTS,
    ),
]
