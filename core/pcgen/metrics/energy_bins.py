"""Calorimeter showers compared per incident-energy bin (CaloChallenge 2022 / MDMA style).

Real and generated showers each carry their incident energy ``E_inc`` in the global column
:data:`INCIDENT_GLOBAL` (MeV, like the hit energies; see :mod:`pcgen.data.calo`). The showers are
split into bins of ``E_inc`` (log-spaced edges over the real energies' range, or given), and in
each bin real and generated are summarised and compared:

- the response ``E_sum / E_inc`` (``E_sum``: the sum of the hit energies): its mean, the standard
  error of that mean, and the resolution ``std / mean`` (with a Gaussian estimate of its error);
- the mean number of hits;
- W1 distances, generated vs real (``scipy.stats.wasserstein_distance``, unweighted, no bootstrap)
  of the response, of the number of hits, of the energy per layer and of the energy per radial ring
  (each profile compared bin by bin and the per-bin W1s averaged, as
  :func:`pcgen.data.shower_observables.shower_w1` and the ``w1layer`` / ``w1radial`` metrics do).

Bins are ``[low, high)``, the last one ``[low, high]``; showers outside the edges are in no bin.
A bin with fewer than ``min_showers`` showers on either side keeps its row, with NaN W1s. Padded
hits are zeroed (:func:`~pcgen.metrics.shower_metrics.prepare_showers`) before anything is computed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy.stats import wasserstein_distance

from pcgen.data import shower_observables as obs
from pcgen.data.pointclouds import PointClouds
from pcgen.metrics.shower_metrics import infer_num_layers, prepare_showers

INCIDENT_GLOBAL = "incident_energy"
"""Global column holding each shower's incident energy (MeV), as :data:`pcgen.data.calo.SHOWER_GLOBALS` names it."""
NUM_BINS = 5
"""Default number of incident-energy bins."""
MIN_SHOWERS = 10
"""Default fewest showers per bin, on each side, for the W1s of that bin (fewer: NaN)."""
NUM_RADIAL_BINS = 10
"""Rings of the radial profile (one cell wide, the last collects everything beyond), as ``w1radial`` uses."""
MEV_PER_GEV = 1000.0


@dataclass(frozen=True)
class EnergyBinRow:
    """One incident-energy bin: real and generated summaries and their W1 distances.

    Energies in MeV. ``*_response`` is the mean of ``E_sum / E_inc`` and ``*_response_error`` its
    standard error; ``*_resolution`` is ``std / mean`` of the response (std with ``ddof=1``) and
    ``*_resolution_error`` its Gaussian error estimate. NaN where a side has too few showers.
    """

    low: float
    """Lower edge of the bin (MeV)."""
    high: float
    """Upper edge of the bin (MeV)."""
    real_count: int
    fake_count: int
    real_response: float
    fake_response: float
    real_response_error: float
    fake_response_error: float
    real_resolution: float
    fake_resolution: float
    real_resolution_error: float
    fake_resolution_error: float
    real_hits: float
    """Mean number of hits per real shower."""
    fake_hits: float
    """Mean number of hits per generated shower."""
    w1_response: float
    """W1 of the response distributions (dimensionless)."""
    w1_hits: float
    """W1 of the numbers of hits."""
    w1_layer: float
    """W1 of the energy per layer (MeV), averaged over layers."""
    w1_radial: float
    """W1 of the energy per radial ring (MeV), averaged over rings."""

    @property
    def centre(self) -> float:
        """Geometric centre of the bin (MeV), where the figure draws it."""
        return math.sqrt(self.low * self.high)


# ------------------------------------------------------------------------------------------------
# Incident energies and bins
# ------------------------------------------------------------------------------------------------


def incident_energies(clouds: PointClouds) -> np.ndarray:
    """The incident energy of every shower (MeV), ``(showers,)`` float64, from the global column
    :data:`INCIDENT_GLOBAL`.

    ValueError, naming the columns the clouds have, when the column is missing or holds NaN or
    infinite values (generated showers of an unconditional model have NaN there: give them energies
    with :func:`with_incident_energies`), or non-positive values.
    """
    names = tuple(clouds.global_names)
    have = f"the clouds have the global columns {list(names)}"
    if INCIDENT_GLOBAL not in names:
        raise ValueError(f"no incident energies: need the global column '{INCIDENT_GLOBAL}' (MeV); {have}")
    if len(clouds) == 0:
        return np.zeros(0, np.float64)
    if clouds.globals.shape != (len(clouds), len(names)):
        raise ValueError(
            f"no incident energies: globals have shape {clouds.globals.shape} for {len(clouds)} showers; {have}"
        )
    energies = np.asarray(clouds.globals[:, names.index(INCIDENT_GLOBAL)], np.float64)
    bad = ~np.isfinite(energies)
    if bad.any():
        raise ValueError(
            f"the global column '{INCIDENT_GLOBAL}' holds NaN or infinite values for {int(bad.sum())} of "
            f"{len(energies)} showers (generated by an unconditional model? give them incident energies with "
            f"with_incident_energies); {have}"
        )
    if (energies <= 0).any():
        raise ValueError(
            f"the global column '{INCIDENT_GLOBAL}' holds non-positive incident energies "
            f"(min {energies.min():g} MeV); {have}"
        )
    return energies


def with_incident_energies(clouds: PointClouds, energies: np.ndarray) -> PointClouds:
    """A copy of ``clouds`` whose :data:`INCIDENT_GLOBAL` column is ``energies`` (MeV, ``(showers,)``);
    the column is appended when missing, the other globals are kept."""
    energies = np.asarray(energies, np.float32).reshape(-1)
    if len(energies) != len(clouds):
        raise ValueError(f"{len(energies)} incident energies for {len(clouds)} showers")
    names = tuple(clouds.global_names)
    has_values = clouds.globals.ndim == 2 and clouds.globals.shape == (len(clouds), len(names))
    if INCIDENT_GLOBAL in names and has_values:
        globs = np.array(clouds.globals, np.float32, copy=True)
        globs[:, names.index(INCIDENT_GLOBAL)] = energies
        return replace(clouds, globals=globs)
    if has_values:
        return replace(
            clouds,
            globals=np.concatenate([np.asarray(clouds.globals, np.float32), energies[:, None]], axis=1),
            global_names=(*names, INCIDENT_GLOBAL),
        )
    hits = clouds.multiplicity.astype(np.float32)
    return replace(clouds, globals=np.stack([energies, hits], axis=1), global_names=(INCIDENT_GLOBAL, "num_hits"))


def energy_bin_edges(energies: np.ndarray, num_bins: int = NUM_BINS) -> np.ndarray:
    """``num_bins + 1`` log-spaced edges from the smallest to the largest of ``energies`` (positive,
    finite; the outer edges are exactly those two). A single energy gets a bin of +-1 % around it."""
    if num_bins < 1:
        raise ValueError(f"num_bins must be positive, got {num_bins}")
    energies = np.asarray(energies, np.float64).reshape(-1)
    if energies.size == 0:
        raise ValueError("no incident energies to choose bin edges from")
    if not (np.isfinite(energies).all() and (energies > 0).all()):
        raise ValueError("incident energies must be positive and finite for log-spaced bins")
    low, high = float(energies.min()), float(energies.max())
    if high <= low:
        low, high = low / 1.01, high * 1.01
    edges = np.geomspace(low, high, num_bins + 1)
    edges[0], edges[-1] = low, high
    return edges


def _checked_edges(edges: Sequence[float] | np.ndarray) -> np.ndarray:
    edges = np.asarray(edges, np.float64)
    if edges.ndim != 1 or len(edges) < 2:
        raise ValueError(f"edges must be a 1-d sequence of at least 2 energies, got shape {edges.shape}")
    if not np.isfinite(edges).all() or (edges <= 0).any() or (np.diff(edges) <= 0).any():
        raise ValueError(f"edges must be positive, finite and strictly increasing, got {edges.tolist()}")
    return edges


def bin_index(energies: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of every energy, ``[low, high)`` with the last bin closed; -1 outside the edges."""
    index = np.searchsorted(edges, energies, side="right") - 1
    index[energies == edges[-1]] = len(edges) - 2
    index[(index < 0) | (index >= len(edges) - 1)] = -1
    return index


# ------------------------------------------------------------------------------------------------
# Per-shower quantities and per-bin summaries
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Showers:
    """Per-shower quantities of one set, and the bin of each shower."""

    response: np.ndarray
    hits: np.ndarray
    layers: np.ndarray
    rings: np.ndarray
    bin: np.ndarray


def _quantities(
    clouds: PointClouds, which: str, edges: np.ndarray, num_layers: int, num_radial_bins: int
) -> _Showers:
    energies = incident_energies(clouds)
    points, mask = prepare_showers(clouds.points, clouds.mask)
    if not np.isfinite(points).all():
        raise ValueError(f"the {which} showers have NaN or infinite hit features")
    return _Showers(
        response=obs.energy_sum(points, mask) / energies,
        hits=obs.num_hits(points, mask).astype(np.float64),
        layers=obs.layer_energy(points, mask, num_layers),
        rings=obs.radial_profile(points, mask, num_radial_bins),
        bin=bin_index(energies, edges),
    )


def _summary(response: np.ndarray, hits: np.ndarray) -> tuple[float, float, float, float, float]:
    """(mean response, its standard error, resolution, its error, mean hits); NaN where undefined."""
    n = len(response)
    if n == 0:
        return (math.nan,) * 5
    mean = float(response.mean())
    if n < 2:
        return mean, math.nan, math.nan, math.nan, float(hits.mean())
    std = float(response.std(ddof=1))
    resolution = std / mean if mean != 0 else math.nan
    resolution_error = abs(resolution) * math.sqrt(1 / (2 * (n - 1)) + resolution**2 / n)
    return mean, std / math.sqrt(n), resolution, resolution_error, float(hits.mean())


def _w1(a: np.ndarray, b: np.ndarray) -> float:
    """W1 of two samples ``(n,)``, or the mean over columns of the per-column W1s of ``(n, K)`` profiles."""
    if a.ndim == 1:
        return float(wasserstein_distance(a, b))
    return float(np.mean([wasserstein_distance(a[:, i], b[:, i]) for i in range(a.shape[1])]))


def compare_energy_bins(
    real: PointClouds,
    fake: PointClouds,
    edges: Sequence[float] | np.ndarray | None = None,
    num_bins: int = NUM_BINS,
    num_layers: int | None = None,
    num_radial_bins: int = NUM_RADIAL_BINS,
    min_showers: int = MIN_SHOWERS,
) -> list[EnergyBinRow]:
    """One :class:`EnergyBinRow` per incident-energy bin, lowest first.

    ``edges`` (MeV) None: :func:`energy_bin_edges` of the real energies with ``num_bins`` bins.
    ``num_layers`` None: ``max(floor(z)) + 1`` over all real hits (generated hits beyond count in
    the last layer). A bin with fewer than ``min_showers`` (at least 1) real or generated showers
    gets NaN W1s; its other entries are filled where defined.
    """
    if min_showers < 1:
        raise ValueError(f"min_showers must be at least 1, got {min_showers}")
    if num_radial_bins < 1:
        raise ValueError(f"num_radial_bins must be positive, got {num_radial_bins}")
    if num_layers is not None and num_layers < 1:
        raise ValueError(f"num_layers must be positive, got {num_layers}")
    edges = energy_bin_edges(incident_energies(real), num_bins) if edges is None else _checked_edges(edges)
    if num_layers is None:
        real_points, real_mask = prepare_showers(real.points, real.mask)
        num_layers = infer_num_layers(real_points, real_mask)
    a = _quantities(real, "real", edges, num_layers, num_radial_bins)
    b = _quantities(fake, "generated", edges, num_layers, num_radial_bins)
    rows = []
    for i in range(len(edges) - 1):
        ra, rb = a.bin == i, b.bin == i
        real_stats, fake_stats = _summary(a.response[ra], a.hits[ra]), _summary(b.response[rb], b.hits[rb])
        if min(int(ra.sum()), int(rb.sum())) >= min_showers:
            w1s = (
                _w1(b.response[rb], a.response[ra]),
                _w1(b.hits[rb], a.hits[ra]),
                _w1(b.layers[rb], a.layers[ra]),
                _w1(b.rings[rb], a.rings[ra]),
            )
        else:
            w1s = (math.nan,) * 4
        rows.append(
            EnergyBinRow(
                low=float(edges[i]),
                high=float(edges[i + 1]),
                real_count=int(ra.sum()),
                fake_count=int(rb.sum()),
                real_response=real_stats[0],
                fake_response=fake_stats[0],
                real_response_error=real_stats[1],
                fake_response_error=fake_stats[1],
                real_resolution=real_stats[2],
                fake_resolution=fake_stats[2],
                real_resolution_error=real_stats[3],
                fake_resolution_error=fake_stats[3],
                real_hits=real_stats[4],
                fake_hits=fake_stats[4],
                w1_response=w1s[0],
                w1_hits=w1s[1],
                w1_layer=w1s[2],
                w1_radial=w1s[3],
            )
        )
    return rows


# ------------------------------------------------------------------------------------------------
# Output
# ------------------------------------------------------------------------------------------------

MARKDOWN_COLUMNS = (
    "E_inc bin (GeV)",
    "showers real / gen",
    "<E_sum/E_inc> real",
    "<E_sum/E_inc> gen",
    "resolution real",
    "resolution gen",
    "<n_hits> real / gen",
    "W1 E_sum/E_inc",
    "W1 n_hits",
    "W1 E_layer (MeV)",
    "W1 E_ring (MeV)",
)
"""Column titles of :func:`energy_bin_markdown` (resolution: std / mean of E_sum/E_inc)."""


def _fmt(x: float, spec: str = ".4g") -> str:
    return "nan" if not math.isfinite(x) else format(x, spec)


def _with_error(value: float, error: float) -> str:
    return _fmt(value) if not math.isfinite(error) else f"{_fmt(value)} ± {_fmt(error, '.2g')}"


def energy_bin_markdown(rows: Sequence[EnergyBinRow]) -> str:
    """A markdown table, one line per bin (edges in GeV; responses and resolutions ± their errors)."""
    lines = ["| " + " | ".join(MARKDOWN_COLUMNS) + " |", "|" + "---|" * len(MARKDOWN_COLUMNS)]
    for r in rows:
        cells = (
            f"{r.low / MEV_PER_GEV:.3g}–{r.high / MEV_PER_GEV:.3g}",
            f"{r.real_count} / {r.fake_count}",
            _with_error(r.real_response, r.real_response_error),
            _with_error(r.fake_response, r.fake_response_error),
            _with_error(r.real_resolution, r.real_resolution_error),
            _with_error(r.fake_resolution, r.fake_resolution_error),
            f"{_fmt(r.real_hits)} / {_fmt(r.fake_hits)}",
            _fmt(r.w1_response),
            _fmt(r.w1_hits),
            _fmt(r.w1_layer),
            _fmt(r.w1_radial),
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def energy_bin_json(rows: Sequence[EnergyBinRow]) -> list[dict[str, float | int | None]]:
    """The rows as JSON-ready dicts (every field, plus ``centre``; energies in MeV); NaN becomes None."""
    out: list[dict[str, float | int | None]] = []
    for r in rows:
        entry: dict[str, float | int | None] = {}
        for key, value in {**asdict(r), "centre": r.centre}.items():
            entry[key] = value if isinstance(value, int) or math.isfinite(value) else None
        out.append(entry)
    return out
