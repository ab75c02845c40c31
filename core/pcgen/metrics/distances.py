"""Fréchet and kernel physics distances (FPD, KPD) on jet features, in torch (float64, no compile step).

Two protocols:

* **pcgen** (default): each feature is mapped to a standard normal by an :class:`EFPNormalisation`
  fixed once per data set (the training split's quantiles of each EFP), the same for every row, so
  the distance does not depend on which set is called "real" and no extreme jet dominates it. Both sets are cut into
  ``num_splits`` disjoint batch pairs of equal size ``m``; the value is the mean over the pairs of
  the distance of one pair, the error the standard error of that mean (std over pairs / sqrt(pairs)).
  Nothing is extrapolated: FPD is the finite-sample distance at batch size ``m`` (it includes a
  positive bias of order 1/m, the same for every row with the same ``m``); KPD is the unbiased MMD
  estimate (zero on average for identical distributions).
* **jetnet** (:func:`jetnet_fpd`, :func:`jetnet_kpd`): jetnet 0.2.5's ``fpd`` and ``kpd`` with their
  defaults, draw for draw (same seeds, same batches with replacement, same normalisation by the real
  set's maxima, same linear extrapolation in 1/N), for reproducing published numbers. Resampled
  covariances come from draw counts and the KPD kernel sums from one pass over all pairs, so they
  cost far less than jetnet's loops while giving the same values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pcgen.metrics.efp import cpu_threads

_BLOCK = 512


QUANTILE_KNOTS = 101
"""Quantiles per feature that define an :class:`EFPNormalisation` (every 1 %)."""
TAIL_PROBABILITY = 1e-3
"""Probabilities are clipped to [p, 1 - p] before the normal quantile (so the range is about ±3.1)."""


@dataclass(frozen=True)
class EFPNormalisation:
    """Maps each feature to a standard normal through its quantiles on a fixed data set (the training
    split): ``x -> Phi^-1(F(x))``, ``F`` the piecewise-linear distribution function through
    :data:`QUANTILE_KNOTS` quantiles, probabilities clipped to [1e-3, 1 - 1e-3].

    EFPs are heavy-tailed: scaled linearly, a handful of extreme jets dominate the covariances of FPD
    and the polynomial kernel of KPD, which makes both noisy. After this map every feature is close to
    a unit Gaussian on real jets and no single jet dominates. ``quantiles[k][f]`` is quantile ``k`` of
    feature ``f``; ``source`` says where it was measured, ``num_jets`` on how many jets.
    """

    quantiles: tuple[tuple[float, ...], ...]
    source: str
    num_jets: int

    @classmethod
    def from_features(cls, features: Tensor | np.ndarray, source: str) -> EFPNormalisation:
        """The quantiles of each column of ``features (B, F)``."""
        x = _array(features)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"need features (B, F) with B >= 2 to normalise, got {tuple(x.shape)}")
        if not np.isfinite(x).all():
            raise ValueError("non-finite features; the normalisation needs finite real jets")
        knots = np.quantile(x, np.linspace(0.0, 1.0, QUANTILE_KNOTS), axis=0)
        return cls(tuple(tuple(row) for row in knots.tolist()), source, len(x))

    def apply(self, features: Tensor | np.ndarray) -> Tensor:
        """The normalised float64 copy of ``features (B, F)``."""
        from scipy.special import ndtri

        x = _array(features)
        knots = np.asarray(self.quantiles)
        if x.ndim != 2 or x.shape[1] != knots.shape[1]:
            raise ValueError(f"normalisation has {knots.shape[1]} features, the data shape is {x.shape}")
        levels = np.linspace(0.0, 1.0, len(knots))
        probability = np.stack([np.interp(x[:, f], knots[:, f], levels) for f in range(x.shape[1])], axis=1)
        return torch.from_numpy(ndtri(np.clip(probability, TAIL_PROBABILITY, 1 - TAIL_PROBABILITY)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (for metrics.json)."""
        return {"method": "quantiles to standard normal", "quantiles": [list(r) for r in self.quantiles],
                "source": self.source, "num_jets": self.num_jets}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EFPNormalisation:
        """Inverse of :meth:`to_dict`."""
        quantiles = tuple(tuple(float(v) for v in row) for row in data["quantiles"])
        return cls(quantiles, str(data["source"]), int(data["num_jets"]))


# ------------------------------------------------------------------------------------------------
# The distances of two samples
# ------------------------------------------------------------------------------------------------


def frechet_distance(x: Tensor | np.ndarray, y: Tensor | np.ndarray) -> float:
    """Fréchet distance of Gaussians fitted to ``x (B1, F)`` and ``y (B2, F)`` (unbiased covariances)."""
    with cpu_threads(1):  # torch, single-threaded: numpy's threaded BLAS crawls on a busy CPU
        moments = [(t.mean(0).numpy(), torch.cov(t.T).numpy()) for t in (_tensor(x), _tensor(y))]
    return _frechet(*moments[0], *moments[1])


def _tensor(x: Tensor | np.ndarray) -> Tensor:
    return torch.as_tensor(x).detach().to("cpu", torch.float64)


def _array(x: Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.float64) if isinstance(x, Tensor) else np.asarray(x, np.float64)


def _frechet(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``; the trace of the root is the sum of the square
    roots of the eigenvalues of ``S1^(1/2) S2 S1^(1/2)`` (symmetric, so no complex round-off), averaged
    with the roles swapped so that the distance is symmetric to the last digit.

    Small dense algebra stays in numpy: torch's thread pool makes 36 x 36 decompositions slow on a busy CPU.
    """
    trace_root = (_trace_root(sigma1, sigma2) + _trace_root(sigma2, sigma1)) / 2  # exactly symmetric
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_root)


def _trace_root(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    values, vectors = np.linalg.eigh(sigma1)
    root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    inner = np.linalg.eigvalsh(root @ sigma2 @ root)
    return float(np.sqrt(np.clip(inner, 0, None)).sum())


def _kernel_sums(a: Tensor, b: Tensor, weights_a: Tensor, weights_b: Tensor, symmetric: bool) -> Tensor:
    """``sum_ij wa[i, k] K(a_i, b_j) wb[j, k]`` for each column ``k`` of the weights, ``K`` the polynomial
    kernel; blockwise, so the full kernel matrix is never held. ``symmetric`` (``a is b``, same
    weights) computes each off-diagonal block once."""
    gamma = 1.0 / a.shape[1]
    total = torch.zeros(weights_a.shape[1], dtype=torch.float64)
    for i in range(0, len(a), _BLOCK):
        starts = range(i, len(b), _BLOCK) if symmetric else range(0, len(b), _BLOCK)
        for j in starts:
            kernel = _poly(a[i : i + _BLOCK] @ b[j : j + _BLOCK].T * gamma + 1.0)
            part = ((weights_a[i : i + _BLOCK].T @ kernel) * weights_b[j : j + _BLOCK].T).sum(1)
            total += part if not symmetric or i == j else 2 * part
    return total


def _poly(base: Tensor) -> Tensor:
    """``base ** 4`` by two squarings, in place (faster than ``pow``)."""
    return base.square_().square_()


def _self_kernel(a: Tensor) -> Tensor:
    """``K(a_i, a_i)`` for each row."""
    return _poly((a * a).sum(1) / a.shape[1] + 1.0)


def mmd_unbiased(x: Tensor, y: Tensor) -> float:
    """Unbiased squared MMD of ``x`` and ``y`` with the polynomial kernel (jetnet's KPD estimate)."""
    x, y = x.to(torch.float64), y.to(torch.float64)
    ones_x, ones_y = torch.ones(len(x), 1, dtype=torch.float64), torch.ones(len(y), 1, dtype=torch.float64)
    return float(_mmd_from_counts(x, y, ones_x, ones_y)[0])


def _mmd_from_counts(x: Tensor, y: Tensor, counts_x: Tensor, counts_y: Tensor) -> Tensor:
    """Unbiased squared MMD of the samples that draw row ``i`` of ``x`` ``counts_x[i, k]`` times (and so for
    ``y``), for every column ``k``: the same as the MMD of the samples themselves, duplicates included,
    the kernel of a draw with itself excluded."""
    with cpu_threads(1):
        return _mmd_terms(x, y, counts_x, counts_y)


def _mmd_terms(x: Tensor, y: Tensor, counts_x: Tensor, counts_y: Tensor) -> Tensor:
    m, n = counts_x.sum(0), counts_y.sum(0)
    xx = _kernel_sums(x, x, counts_x, counts_x, symmetric=True) - (counts_x * _self_kernel(x)[:, None]).sum(0)
    yy = _kernel_sums(y, y, counts_y, counts_y, symmetric=True) - (counts_y * _self_kernel(y)[:, None]).sum(0)
    xy = _kernel_sums(x, y, counts_x, counts_y, symmetric=False)
    return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n)


# ------------------------------------------------------------------------------------------------
# The pcgen protocol: disjoint batch pairs
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitResult:
    """Mean and standard error over ``num_splits`` disjoint batch pairs of ``batch_size`` jets each, and
    each pair's value."""

    value: float
    error: float
    batch_size: int
    values: tuple[float, ...]


def split_distance(
    x: Tensor, y: Tensor, distance: Callable[[Tensor, Tensor], float], num_splits: int = 5, seed: int = 42
) -> SplitResult:
    """``distance`` of ``num_splits`` disjoint, equally sized batch pairs of ``x`` and ``y`` (a seeded
    random partition of each; ``batch_size = min(len(x), len(y)) // num_splits``), their mean and its
    standard error."""
    if num_splits < 2:
        raise ValueError(f"num_splits must be at least 2 for an error estimate, got {num_splits}")
    size = min(len(x), len(y)) // num_splits
    if size < 2:
        raise ValueError(f"{min(len(x), len(y))} jets cannot make {num_splits} batches of at least 2 jets")
    # Each set is shuffled by its own generator with the same seed: swapping x and y gives the same pairs.
    order_x = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    order_y = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    values = [
        distance(x[order_x[k * size : (k + 1) * size]], y[order_y[k * size : (k + 1) * size]])
        for k in range(num_splits)
    ]
    spread = float(np.std(values, ddof=1))
    return SplitResult(float(np.mean(values)), spread / np.sqrt(num_splits), size, tuple(values))


# ------------------------------------------------------------------------------------------------
# The jetnet protocol
# ------------------------------------------------------------------------------------------------


def jetnet_normalise(real: Tensor | np.ndarray, gen: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
    """Both sets divided by the real set's maximum absolute value per feature (jetnet's
    ``_normalise_features``: the scale depends on which set is "real")."""
    x, y = torch.as_tensor(real, dtype=torch.float64), torch.as_tensor(gen, dtype=torch.float64)
    maxes = x.abs().max(dim=0).values
    maxes = torch.where(maxes == 0, torch.ones_like(maxes), maxes)
    return x / maxes, y / maxes


def _draw_counts(rng: np.random.Generator, population: int, size: int) -> np.ndarray:
    """How often each of ``population`` rows is drawn by ``rng.choice(population, size=size)``."""
    return np.bincount(rng.choice(population, size=size), minlength=population).astype(np.float64)


def _resampled_moments(x: Tensor, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of the sample that draws row ``i`` of ``x`` ``counts[i]`` times (in
    torch: numpy's threaded BLAS is many times slower for this product on a busy CPU)."""
    weights = torch.from_numpy(counts)
    n = float(counts.sum())
    mean = weights @ x / n
    second = (x.T * weights) @ x
    return mean.numpy(), ((second - n * torch.outer(mean, mean)) / (n - 1)).numpy()


def _frechet_jetnet(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """The Fréchet distance as jetnet computes it (``scipy.linalg.sqrtm`` of ``S1 S2``, its real part, with a
    1e-6 diagonal offset if the root is not finite), so that the jetnet protocol's numbers match to the
    last digits; :func:`_frechet` is the more accurate form."""
    from scipy import linalg

    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(sigma1)) * 1e-6
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    trace_root = np.trace(np.real(covmean))
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_root)


def jetnet_fpd(
    real: Tensor | np.ndarray,
    gen: Tensor | np.ndarray,
    min_samples: int = 20_000,
    max_samples: int = 50_000,
    num_batches: int = 20,
    num_points: int = 10,
    seed: int = 42,
) -> tuple[float, float]:
    """jetnet's ``fpd`` (its defaults): batches of ``num_points`` sizes evenly spaced in 1/N between
    ``min_samples`` and ``max_samples`` drawn with replacement, ``num_batches`` per size, the mean FPD per
    size fitted linearly in 1/N; returns the intercept and its fit error."""
    from scipy.optimize import curve_fit

    x, y = jetnet_normalise(real, gen)
    sizes = (1 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype("int32")
    rng = np.random.default_rng(seed)
    means = []
    with cpu_threads(1):
        for size in sizes:
            values = []
            for _ in range(num_batches):
                counts_x, counts_y = _draw_counts(rng, len(x), int(size)), _draw_counts(rng, len(y), int(size))
                values.append(_frechet_jetnet(*_resampled_moments(x, counts_x), *_resampled_moments(y, counts_y)))
            means.append(np.mean(values))
    params, covs = curve_fit(lambda n, a, b: a + b * n, 1 / sizes, means, bounds=([0, 0], [np.inf, np.inf]))
    return float(params[0]), float(np.sqrt(np.diag(covs)[0]))


def jetnet_kpd(
    real: Tensor | np.ndarray,
    gen: Tensor | np.ndarray,
    num_batches: int = 10,
    batch_size: int = 5_000,
    seed: int = 42,
) -> tuple[float, float]:
    """jetnet's ``kpd`` (its defaults, serial path): the unbiased MMD of ``num_batches`` batches of
    ``batch_size`` jets drawn with replacement (batch ``i`` from ``default_rng(seed + 1000 i)``); returns
    the median and half the 16-84 % spread."""
    from scipy.stats import iqr

    x, y = jetnet_normalise(real, gen)
    counts_x, counts_y = [], []
    for i in range(num_batches):
        rng = np.random.default_rng(seed + i * 1000)
        counts_x.append(_draw_counts(rng, len(x), batch_size))
        counts_y.append(_draw_counts(rng, len(y), batch_size))
    stack = [torch.from_numpy(np.stack(c, axis=1)) for c in (counts_x, counts_y)]
    values = _mmd_from_counts(x, y, *stack).numpy()
    return float(np.median(values)), float(iqr(values, rng=(16.275, 83.725)) / 2)
