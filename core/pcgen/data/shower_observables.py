"""Shower observables and their W1 distances (pure numpy).

Every function takes ``points`` ``(showers, N, 4)`` with the features ``(x, y, z, E)`` of
:data:`pcgen.data.calo.SHOWER_FEATURES` (cell coordinates, z = layer) and ``mask`` ``(showers, N)``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import wasserstein_distance


def _energy(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask, points[..., 3], 0.0).astype(np.float64)


def energy_sum(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Total hit energy per shower, ``(showers,)``."""
    return _energy(points, mask).sum(axis=1)


def num_hits(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Number of hits per shower, ``(showers,)``."""
    return mask.sum(axis=1).astype(np.int64)


def layer_energy(points: np.ndarray, mask: np.ndarray, num_layers: int) -> np.ndarray:
    """Energy per layer (``floor(z)``, clipped to ``[0, num_layers)``), ``(showers, num_layers)``."""
    layer = np.clip(np.floor(points[..., 2]), 0, num_layers - 1).astype(np.int64)
    return _binned_sum(layer, _energy(points, mask), num_layers)


def centre_of_gravity(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Energy-weighted mean ``(x, y, z)`` per shower, ``(showers, 3)``; zeros for empty showers."""
    e = _energy(points, mask)
    total = e.sum(axis=1, keepdims=True)
    weighted = np.einsum("snf,sn->sf", points[..., :3].astype(np.float64), e)
    return np.divide(weighted, total, out=np.zeros_like(weighted), where=total > 0)


def radial_profile(
    points: np.ndarray, mask: np.ndarray, num_bins: int, bin_width: float = 1.0, centre: np.ndarray | None = None
) -> np.ndarray:
    """Energy in rings of ``bin_width`` around the shower axis, ``(showers, num_bins)``.

    The axis passes through ``centre`` ``(2,)`` (x, y), or through each shower's centre of gravity
    when None; the last bin collects everything beyond.
    """
    axis = centre_of_gravity(points, mask)[:, None, :2] if centre is None else np.asarray(centre)[None, None, :]
    r = np.hypot(points[..., 0] - axis[..., 0], points[..., 1] - axis[..., 1])
    ring = np.minimum(np.floor(r / bin_width), num_bins - 1).astype(np.int64)
    return _binned_sum(ring, _energy(points, mask), num_bins)


def _binned_sum(index: np.ndarray, weights: np.ndarray, bins: int) -> np.ndarray:
    """Per-row sums of ``weights`` into ``bins`` bins given by ``index`` (both ``(rows, N)``)."""
    rows = len(index)
    flat = index + np.arange(rows)[:, None] * bins
    return np.bincount(flat.ravel(), weights=weights.ravel(), minlength=rows * bins).reshape(rows, bins)


def shower_observables(
    points: np.ndarray, mask: np.ndarray, num_layers: int, num_radial_bins: int = 10
) -> dict[str, np.ndarray]:
    """All observables per shower: scalars ``(showers,)`` and profiles ``(showers, bins)``."""
    cog = centre_of_gravity(points, mask)
    return {
        "energy_sum": energy_sum(points, mask),
        "num_hits": num_hits(points, mask).astype(np.float64),
        "cog_x": cog[:, 0],
        "cog_y": cog[:, 1],
        "cog_z": cog[:, 2],
        "layer_energy": layer_energy(points, mask, num_layers),
        "radial_profile": radial_profile(points, mask, num_radial_bins),
    }


def shower_w1(
    real: tuple[np.ndarray, np.ndarray],
    fake: tuple[np.ndarray, np.ndarray],
    num_layers: int,
    num_radial_bins: int = 10,
) -> dict[str, float]:
    """W1 between two sets of showers, ``(points, mask)`` each, for every observable.

    Scalars: W1 of their distributions. Profiles: W1 of the per-shower energy in each bin, averaged
    over the bins.
    """
    a = shower_observables(*real, num_layers, num_radial_bins)
    b = shower_observables(*fake, num_layers, num_radial_bins)
    out: dict[str, float] = {}
    for name, values in a.items():
        if values.ndim == 1:
            out[name] = float(wasserstein_distance(values, b[name]))
        else:
            per_bin = [wasserstein_distance(values[:, i], b[name][:, i]) for i in range(values.shape[1])]
            out[name] = float(np.mean(per_bin))
    return out
