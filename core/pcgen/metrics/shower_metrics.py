"""torchmetrics wrappers for calorimeter showers: bootstrapped W1 distances of shower observables.

Every metric is updated with ``update(real, real_mask, fake, fake_mask)``: ``(B, N, 4)`` point clouds
in physical units ``(x, y, z, E)`` (:data:`pcgen.data.calo.SHOWER_FEATURES`: cell coordinates with
z = layer, hit energy in MeV) and ``(B, N)`` bool masks. Padded hits are set to zero before any
observable is computed, so they never change a value.

``compute()`` returns ``tensor([value, error])`` in float64: the mean and std, over ``num_batches``
subsamples, of the 1-Wasserstein distance (``scipy.stats.wasserstein_distance``) between real and
generated showers of one observable of :mod:`pcgen.data.shower_observables`. Each subsample draws
``min(num_eval_samples, showers available)`` showers of each set with replacement (the JetNet
protocol the jet W1s follow), from ``np.random.default_rng(seed)``; a profile (energy per layer, per
radial ring) is compared bin by bin and the per-bin W1s averaged within each subsample.
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import wasserstein_distance
from torch import Tensor

from pcgen.data import shower_observables as obs
from pcgen.metrics.pairs import CloudPairMetric
from pcgen.metrics.options import bootstrap_options
from pcgen.specs import MetricSpec

NUM_SHOWER_FEATURES = 4
"""Per-hit features the metrics read: ``(x, y, z, E)``."""
Z_INDEX, E_INDEX = 2, 3
"""Indices of the layer coordinate and of the hit energy among the features."""
COG_AXES = ("x", "y", "z")
"""Names of the centre-of-gravity components, the keys of :attr:`W1CentreOfGravity.per_feature`."""



# ------------------------------------------------------------------------------------------------
# Array helpers
# ------------------------------------------------------------------------------------------------


def _numpy(x: Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def prepare_showers(points: Tensor | np.ndarray, mask: Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 ``(B, N, 4)`` copy with padded hits zero, and the bool mask."""
    points, mask = _numpy(points), _numpy(mask).astype(bool)
    return np.where(mask[..., None], points[..., :NUM_SHOWER_FEATURES], 0.0).astype(np.float64), mask


def infer_num_layers(points: np.ndarray, mask: np.ndarray) -> int:
    """Layers spanned by the hits: ``max(floor(z)) + 1`` over unmasked hits (at least 1)."""
    z = np.asarray(points)[..., Z_INDEX][np.asarray(mask, bool)]
    z = z[np.isfinite(z)]
    return max(int(np.floor(z.max())) + 1, 1) if z.size else 1


@dataclass(frozen=True)
class ShowerValues:
    """Values compared by a W1, each belonging to one shower of a set.

    ``values`` is ``(n, K)``: ``K`` quantities compared column by column; ``owner`` ``(n,)`` is the
    shower each row belongs to (one row per shower for a per-shower observable, one row per hit for
    a per-hit quantity), out of ``num_showers``.
    """

    values: np.ndarray
    owner: np.ndarray
    num_showers: int

    @classmethod
    def per_shower(cls, values: np.ndarray) -> ShowerValues:
        """One row per shower: ``(showers,)`` or ``(showers, K)`` observables."""
        values = np.asarray(values, np.float64)
        values = values[:, None] if values.ndim == 1 else values
        return cls(values, np.arange(len(values)), len(values))

    @classmethod
    def per_hit(cls, values: np.ndarray, mask: np.ndarray) -> ShowerValues:
        """One row per unmasked hit of ``values`` ``(showers, N)``."""
        mask = np.asarray(mask, bool)
        return cls(np.asarray(values, np.float64)[mask][:, None], np.nonzero(mask)[0], len(mask))

    def weights(self, showers: np.ndarray) -> np.ndarray:
        """Weight of every row in a subsample of showers drawn with replacement (times drawn)."""
        return np.bincount(showers, minlength=self.num_showers)[self.owner].astype(np.float64)


def bootstrap_w1(
    real: ShowerValues, fake: ShowerValues, num_eval_samples: int = 50_000, num_batches: int = 5, seed: int = 42
) -> np.ndarray:
    """W1 of every column, ``(num_batches, K)``, between subsamples of real and of generated showers.

    Each batch draws ``min(num_eval_samples, showers of either set)`` showers of each set with
    replacement (real first, then generated, from ``np.random.default_rng(seed)``); a shower drawn
    k times weighs k, i.e. all its rows count k times. A batch with no rows on one side gives nan.
    """
    if real.values.shape[1] != fake.values.shape[1]:
        raise ValueError(f"real and fake compare {real.values.shape[1]} and {fake.values.shape[1]} columns")
    size = min(num_eval_samples, real.num_showers, fake.num_showers)
    if size < 1:
        raise ValueError("bootstrap_w1 needs at least one real and one generated shower")
    rng = np.random.default_rng(seed)
    w1s = np.full((num_batches, real.values.shape[1]), np.nan)
    for batch in range(num_batches):
        real_weights = real.weights(rng.choice(real.num_showers, size=size))
        fake_weights = fake.weights(rng.choice(fake.num_showers, size=size))
        if real_weights.sum() <= 0 or fake_weights.sum() <= 0:
            continue
        for column in range(real.values.shape[1]):
            w1s[batch, column] = wasserstein_distance(
                real.values[:, column], fake.values[:, column], real_weights, fake_weights
            )
    return w1s


def _mean_std(w1s: np.ndarray) -> tuple[float, float]:
    """Mean and std over the batches of a ``(num_batches,)`` array of W1s."""
    return float(np.mean(w1s)), float(np.std(w1s))


# ------------------------------------------------------------------------------------------------
# The metrics
# ------------------------------------------------------------------------------------------------


class ShowerPairMetric(CloudPairMetric):
    """Base class: accumulates real and generated showers; a subclass names the compared values.

    ``num_eval_samples`` showers (at most those available) are drawn with replacement ``num_batches``
    times from a generator seeded with ``seed``; the value and error are the mean and std of the W1s.
    """

    num_features = NUM_SHOWER_FEATURES
    feature_hint = "(x, y, z, E)"

    def __init__(self, num_eval_samples: int = 50_000, num_batches: int = 5, seed: int = 42, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if num_eval_samples < 1 or num_batches < 1:
            raise ValueError("num_eval_samples and num_batches must be positive")
        self.num_eval_samples = num_eval_samples
        self.num_batches = num_batches
        self.seed = seed

    def compute(self) -> Tensor:
        """``tensor([value, error])`` (float64); ``[nan, nan]`` with a warning for non-finite hits."""
        real, real_mask, fake, fake_mask = self.gathered()
        real, real_mask = prepare_showers(real, real_mask)
        fake, fake_mask = prepare_showers(fake, fake_mask)
        if not (np.isfinite(real).all() and np.isfinite(fake).all()):
            warnings.warn(f"{type(self).__name__}: non-finite hit features; value is nan", stacklevel=2)
            self._set_nan()
            return torch.tensor([np.nan, np.nan], dtype=torch.float64)
        value, error = self._value(real, real_mask, fake, fake_mask)
        return torch.tensor([float(value), float(error)], dtype=torch.float64)

    def _bootstrap(self, real: ShowerValues, fake: ShowerValues) -> np.ndarray:
        """:func:`bootstrap_w1` with this metric's settings, ``(num_batches, K)``."""
        return bootstrap_w1(real, fake, self.num_eval_samples, self.num_batches, self.seed)

    def _set_nan(self) -> None:
        """Hook: mark extra results (e.g. ``per_feature``) as nan when the inputs are not finite."""

    def _value(
        self, real: np.ndarray, real_mask: np.ndarray, fake: np.ndarray, fake_mask: np.ndarray
    ) -> tuple[float, float]:
        """``(value, error)`` on zero-padded float64 arrays: by default the per-batch W1s of the
        :meth:`_values` columns, averaged over columns, then mean ± std over batches."""
        real_values, fake_values = self._values(real, real_mask, fake, fake_mask)
        return _mean_std(self._bootstrap(real_values, fake_values).mean(axis=1))

    @abstractmethod
    def _values(
        self, real: np.ndarray, real_mask: np.ndarray, fake: np.ndarray, fake_mask: np.ndarray
    ) -> tuple[ShowerValues, ShowerValues]:
        """The real and generated values compared."""


class _PerShowerW1(ShowerPairMetric):
    """W1 of a per-shower observable ``_observable(points, mask)``, ``(showers,)`` or ``(showers, K)``."""

    def _values(self, real, real_mask, fake, fake_mask):  # type: ignore[no-untyped-def]
        return (
            ShowerValues.per_shower(self._observable(real, real_mask)),
            ShowerValues.per_shower(self._observable(fake, fake_mask)),
        )

    @abstractmethod
    def _observable(self, points: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The observable of every shower."""


class W1EnergySum(_PerShowerW1):
    """W1 of the total energy per shower (MeV)."""

    def _observable(self, points: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return obs.energy_sum(points, mask)


class W1NumHits(_PerShowerW1):
    """W1 of the number of hits per shower."""

    def _observable(self, points: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return obs.num_hits(points, mask)


class W1CentreOfGravity(_PerShowerW1):
    """W1 of the energy-weighted centre of gravity; the value is its z (longitudinal) component.

    After ``compute()``, ``per_feature`` maps ``"x"``, ``"y"`` and ``"z"`` to their ``(value, error)``.
    """

    def __init__(self, num_eval_samples: int = 50_000, num_batches: int = 5, seed: int = 42, **kwargs: Any) -> None:
        super().__init__(num_eval_samples=num_eval_samples, num_batches=num_batches, seed=seed, **kwargs)
        self.per_feature: dict[str, tuple[float, float]] = {}

    def _observable(self, points: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return obs.centre_of_gravity(points, mask)

    def _value(self, real, real_mask, fake, fake_mask):  # type: ignore[no-untyped-def]
        w1s = self._bootstrap(*self._values(real, real_mask, fake, fake_mask))
        self.per_feature = {axis: _mean_std(w1s[:, i]) for i, axis in enumerate(COG_AXES)}
        return self.per_feature["z"]

    def _set_nan(self) -> None:
        self.per_feature = {axis: (np.nan, np.nan) for axis in COG_AXES}

    def reset(self) -> None:
        super().reset()
        self.per_feature = {}


class W1LayerEnergy(_PerShowerW1):
    """W1 of the energy per layer (``floor(z)``), averaged over layers (MeV).

    ``num_layers`` None: ``max(floor(z)) + 1`` over the real hits; generated hits beyond are counted
    in the last layer (see :func:`pcgen.data.shower_observables.layer_energy`).
    """

    def __init__(
        self,
        num_eval_samples: int = 50_000,
        num_batches: int = 5,
        seed: int = 42,
        num_layers: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_eval_samples=num_eval_samples, num_batches=num_batches, seed=seed, **kwargs)
        if num_layers is not None and num_layers < 1:
            raise ValueError(f"num_layers must be positive, got {num_layers}")
        self.num_layers = num_layers
        self._layers = num_layers or 1

    def _values(self, real, real_mask, fake, fake_mask):  # type: ignore[no-untyped-def]
        self._layers = self.num_layers or infer_num_layers(real, real_mask)
        return super()._values(real, real_mask, fake, fake_mask)

    def _observable(self, points: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return obs.layer_energy(points, mask, self._layers)


class W1RadialProfile(_PerShowerW1):
    """W1 of the energy in rings one cell wide around each shower's centre of gravity (in x, y),
    averaged over the ``num_radial_bins`` rings (the last collects everything beyond) (MeV)."""

    def __init__(
        self,
        num_eval_samples: int = 50_000,
        num_batches: int = 5,
        seed: int = 42,
        num_radial_bins: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_eval_samples=num_eval_samples, num_batches=num_batches, seed=seed, **kwargs)
        if num_radial_bins < 1:
            raise ValueError(f"num_radial_bins must be positive, got {num_radial_bins}")
        self.num_radial_bins = num_radial_bins

    def _observable(self, points: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return obs.radial_profile(points, mask, self.num_radial_bins)


class W1HitEnergy(ShowerPairMetric):
    """W1 of the energies of all hits (per-hit distribution, MeV); the subsamples draw showers."""

    def _values(self, real, real_mask, fake, fake_mask):  # type: ignore[no-untyped-def]
        return (
            ShowerValues.per_hit(real[..., E_INDEX], real_mask),
            ShowerValues.per_hit(fake[..., E_INDEX], fake_mask),
        )


SHOWER_METRICS: list[MetricSpec] = [
    MetricSpec("w1esum", W1EnergySum, "showers", "W1 of the energy sum per shower (MeV)", during_training=True,
               label="W1 E_sum (MeV)", options=bootstrap_options),
    MetricSpec("w1nhits", W1NumHits, "showers", "W1 of the number of hits per shower", during_training=True,
               label="W1 n_hits", options=bootstrap_options),
    MetricSpec("w1cog", W1CentreOfGravity, "showers", "W1 of the z centre of gravity (x, y, z in .per_feature)",
               during_training=True, label="W1 CoG z (cells)", options=bootstrap_options),
    MetricSpec("w1layer", W1LayerEnergy, "showers", "W1 of the energy per layer, averaged over layers",
               label="W1 E_layer (MeV)", options=bootstrap_options),
    MetricSpec("w1radial", W1RadialProfile, "showers", "W1 of the energy per radial ring, averaged over rings",
               label="W1 E_ring (MeV)", options=bootstrap_options),
    MetricSpec("w1ehit", W1HitEnergy, "showers", "W1 of the hit energies", label="W1 E_hit (MeV)",
               options=bootstrap_options),
]
"""Bootstrapped W1 distances of shower observables, in natural units (scale 1)."""

SHOWER_LABELS: dict[str, str] = {
    "w1esum": "W1 E_sum (MeV)",
    "w1nhits": "W1 n_hits",
    "w1cog": "W1 CoG z (cells)",
    "w1cog_x": "W1 CoG x (cells)",
    "w1cog_y": "W1 CoG y (cells)",
    "w1cog_z": "W1 CoG z (cells)",
    "w1layer": "W1 E_layer (MeV)",
    "w1radial": "W1 E_ring (MeV)",
    "w1ehit": "W1 E_hit (MeV)",
}
"""Column titles of the shower metrics (and of W1CoG's per-axis entries)."""
