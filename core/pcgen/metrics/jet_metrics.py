"""The JetNet evaluation protocol's jet metrics as torchmetrics, equal to jetnet's (tests compare them).

The protocol (Kansal et al., arXiv:2106.11535 and arXiv:2211.10295): 1-Wasserstein distances of the
jet mass (W1M), the particle features (W1P) and five d = 4 energy flow polynomials (W1EFP), each the
mean ± std over ``num_batches`` random subsamples; the Fréchet and kernel physics distances (FPD,
KPD) on the 36 EFPs with d <= 4, by pcgen's protocol (fixed normalisation, disjoint batch pairs;
see :mod:`pcgen.metrics.distances`) or, with ``protocol="jetnet"``, jetnet's. The EFPs are computed
in torch (:mod:`pcgen.metrics.efp`, equal to energyflow's); the W1 distances subsample as jetnet does,
draw for draw, and call scipy's ``wasserstein_distance`` as jetnet does, so the values are jetnet's to
rounding without importing it (jetnet pulls in coffea and awkward: seconds to import, and not on every
machine).

Every metric is updated with ``update(real, real_mask, fake, fake_mask)``: ``(B, N, 3)`` point clouds
in physical units (eta_rel, phi_rel, pt_rel) and ``(B, N)`` bool masks. Before any value is computed,
padded entries are set to zero (jetnet treats zero-pT particles as padding) and negative
pt_rel is clipped to zero (as jetnet's ``gen_jet_corrections`` does), so padded slots never change a
value. ``compute()`` returns ``tensor([value, error])`` in float64. Every random choice is seeded.
"""

from __future__ import annotations

import hashlib
import warnings
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from scipy.stats import wasserstein_distance
from torch import Tensor

from pcgen.data.jetfeatures import relative_jet_mass
from pcgen.data.pointclouds import JET_FEATURES
from pcgen.metrics import distances
from pcgen.metrics.distances import EFPNormalisation
from pcgen.metrics.efp import W1EFP_COLUMNS, efps
from pcgen.metrics.pairs import CloudPairMetric
from pcgen.metrics.options import bootstrap_options, physics_distance_options
from pcgen.specs import MetricSpec

PT_INDEX = 2
"""Index of pt_rel among the particle features."""
EFP_METRICS = frozenset({"w1efp", "fpd", "kpd"})
"""Names of the metrics that need energy flow polynomials (skipped when ``eval.efp`` is False)."""
PROTOCOLS = ("pcgen", "jetnet")
"""FPD/KPD protocols: pcgen's (fixed normalisation, disjoint batches) and jetnet's defaults."""

_EFP_CACHE: OrderedDict[str, np.ndarray] = OrderedDict()
_EFP_CACHE_SIZE = 8


# ------------------------------------------------------------------------------------------------
# Array helpers
# ------------------------------------------------------------------------------------------------


def _numpy(x: Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def prepare_jets(points: Tensor | np.ndarray, mask: Tensor | np.ndarray) -> np.ndarray:
    """Float64 ``(B, N, 3)`` copy with padded entries zero and negative pt_rel clipped to zero."""
    points, mask = _numpy(points), _numpy(mask).astype(bool)
    jets = np.where(mask[..., None], points, 0.0).astype(np.float64)
    jets[..., PT_INDEX] = np.maximum(jets[..., PT_INDEX], 0.0)
    return jets


def jet_efps(jets: np.ndarray) -> np.ndarray:
    """The 36 EFPs with d <= 4 of prepared (zero-padded) jets, ``(B, 36)``, equal to jetnet's
    ``get_fpd_kpd_jet_features`` (see :func:`pcgen.metrics.efp.efps`), cached by content.

    The cache (a few entries) lets the truth and model rows, and W1EFP, FPD and KPD, share the EFPs
    of one set of jets.
    """
    jets = np.ascontiguousarray(jets, dtype=np.float64)
    key = f"{jets.shape}:{hashlib.blake2b(jets.data, digest_size=16).hexdigest()}"
    if key in _EFP_CACHE:
        _EFP_CACHE.move_to_end(key)
        return _EFP_CACHE[key]
    points = torch.from_numpy(jets)
    values = efps(points, points[..., PT_INDEX] > 0).numpy()
    _EFP_CACHE[key] = values
    while len(_EFP_CACHE) > _EFP_CACHE_SIZE:
        _EFP_CACHE.popitem(last=False)
    return values


# ------------------------------------------------------------------------------------------------
# The metrics
# ------------------------------------------------------------------------------------------------


class JetPairMetric(CloudPairMetric):
    """Base class: accumulates real and generated jets; a subclass turns them into (value, error)."""

    num_features = 3
    feature_hint = "(eta_rel, phi_rel, pt_rel)"

    def compute(self) -> Tensor:
        """``tensor([value, error])`` (float64); ``[nan, nan]`` with a warning for non-finite jets."""
        real, real_mask, fake, fake_mask = self.gathered()
        real_jets, fake_jets = prepare_jets(real, real_mask), prepare_jets(fake, fake_mask)
        if not (np.isfinite(real_jets).all() and np.isfinite(fake_jets).all()):
            warnings.warn(f"{type(self).__name__}: non-finite particle features; value is nan", stacklevel=2)
            return torch.tensor([np.nan, np.nan], dtype=torch.float64)
        value, error = self._value(real_jets, real_mask.numpy(), fake_jets, fake_mask.numpy())
        return torch.tensor([float(value), float(error)], dtype=torch.float64)

    @abstractmethod
    def _value(
        self, real: np.ndarray, real_mask: np.ndarray, fake: np.ndarray, fake_mask: np.ndarray
    ) -> tuple[float, float]:
        """``(value, error)`` of the metric on physical, zero-padded arrays."""


class _BootstrappedW1(JetPairMetric):
    """Shared options of the W1 metrics: mean ± std over ``num_batches`` random subsamples."""

    def __init__(self, num_eval_samples: int = 50_000, num_batches: int = 5, seed: int = 42, **kwargs: Any):
        super().__init__(**kwargs)
        if num_eval_samples < 1 or num_batches < 1:
            raise ValueError("num_eval_samples and num_batches must be positive")
        self.num_eval_samples = num_eval_samples
        self.num_batches = num_batches
        self.seed = seed

    def _draws(self, size1: int, size2: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``num_batches`` pairs of subsample indices, drawn with replacement as jetnet draws them (from
        ``np.random.default_rng(seed)``: first set, then second, per batch), ``min(num_eval_samples,
        size1, size2)`` each."""
        size, rng = min(self.num_eval_samples, size1, size2), np.random.default_rng(self.seed)
        for _ in range(self.num_batches):
            yield rng.choice(size1, size=size), rng.choice(size2, size=size)


class W1M(_BootstrappedW1):
    """W1 distance of the relative jet mass m/pT (jetnet's ``w1m``); table unit 1e-3.

    Subsamples of ``min(num_eval_samples, jets available)`` jets are drawn with replacement
    (JetNet's protocol), ``num_batches`` times, from a generator seeded with ``seed``.
    """

    def _value(self, real, real_mask, fake, fake_mask):  # type: ignore[no-untyped-def]
        masses1 = relative_jet_mass(real, real_mask)
        masses2 = relative_jet_mass(fake, fake_mask)
        w1s = [wasserstein_distance(masses1[draw1], masses2[draw2])
               for draw1, draw2 in self._draws(len(masses1), len(masses2))]
        return float(np.mean(w1s)), float(np.std(w1s))


class W1P(_BootstrappedW1):
    """W1 distances of the particle features (jetnet's ``w1p``, padded particles excluded by mask).

    The headline value is ``headline`` (default pt_rel, the iGAPT table's W1p^{pT rel}); after
    ``compute()``, ``per_feature`` maps each feature name to its ``(value, error)``.
    """

    def __init__(
        self,
        num_eval_samples: int = 50_000,
        num_batches: int = 5,
        seed: int = 42,
        headline: str = "pt_rel",
        **kwargs: Any,
    ) -> None:
        super().__init__(num_eval_samples=num_eval_samples, num_batches=num_batches, seed=seed, **kwargs)
        if headline not in JET_FEATURES:
            raise ValueError(f"headline must be one of {JET_FEATURES}, got {headline!r}")
        self.headline = headline
        self.per_feature: dict[str, tuple[float, float]] = {}

    def _value(self, real, real_mask, fake, fake_mask):  # type: ignore[no-untyped-def]
        real_mask, fake_mask = np.asarray(real_mask, bool), np.asarray(fake_mask, bool)
        w1s = []
        for draw1, draw2 in self._draws(len(real), len(fake)):
            parts1, parts2 = real[draw1][real_mask[draw1]], fake[draw2][fake_mask[draw2]]
            if len(parts1) == 0 or len(parts2) == 0:
                w1s.append([np.inf] * real.shape[-1])
            else:
                w1s.append([wasserstein_distance(parts1[:, i], parts2[:, i]) for i in range(real.shape[-1])])
        means, stds = np.mean(w1s, axis=0), np.std(w1s, axis=0)
        self.per_feature = {n: (float(m), float(s)) for n, m, s in zip(JET_FEATURES, means, stds, strict=True)}
        return self.per_feature[self.headline]

    def reset(self) -> None:
        super().reset()
        self.per_feature = {}


class W1EFP(_BootstrappedW1):
    """W1 distances of the five prime n = 4, d = 4 EFPs (jetnet's ``w1efp``), averaged over EFPs.

    Value and error are the means over the EFPs of the per-EFP mean and std; after ``compute()``,
    ``per_efp`` holds the per-EFP ``(value, error)``. The EFPs are taken from the cached d <= 4 set
    (identical numbers), and the subsampling repeats jetnet's, draw for draw.
    """

    def __init__(self, num_eval_samples: int = 50_000, num_batches: int = 5, seed: int = 42, **kwargs: Any) -> None:
        super().__init__(num_eval_samples=num_eval_samples, num_batches=num_batches, seed=seed, **kwargs)
        self.per_efp: list[tuple[float, float]] = []

    def _value(self, real, real_mask, fake, fake_mask):  # type: ignore[no-untyped-def]
        columns = list(W1EFP_COLUMNS)
        efps1 = jet_efps(real)[:, columns]
        efps2 = jet_efps(fake)[:, columns]
        w1s = []
        for draw1, draw2 in self._draws(len(efps1), len(efps2)):
            sample1, sample2 = efps1[draw1], efps2[draw2]
            w1s.append([wasserstein_distance(sample1[:, i], sample2[:, i]) for i in range(efps1.shape[1])])
        means, stds = np.mean(w1s, axis=0), np.std(w1s, axis=0)
        self.per_efp = [(float(m), float(s)) for m, s in zip(means, stds, strict=True)]
        return float(np.mean(means)), float(np.mean(stds))

    def reset(self) -> None:
        super().reset()
        self.per_efp = []


class _PhysicsDistance(JetPairMetric):
    """Shared protocol of FPD and KPD on the 36 d <= 4 EFPs.

    ``protocol="pcgen"`` (default): each EFP is mapped to a standard normal by ``normalisation`` (an
    :class:`EFPNormalisation` or its dict; fixed once per data set, from the training split; if None,
    measured on the real jets given to ``update``, which makes the value depend on which set is real),
    both sets are cut into ``num_splits`` disjoint batch pairs of ``min(real, fake) // num_splits`` jets,
    and the result is the mean over the pairs ± its standard error. After ``compute()``, ``batch_size``
    and ``split_values`` describe the batches. ``protocol="jetnet"``: jetnet's ``fpd``/``kpd`` with the
    jetnet options of the subclass (defaults: jetnet's own).
    """

    def __init__(
        self,
        protocol: str = "pcgen",
        normalisation: EFPNormalisation | dict[str, Any] | None = None,
        num_splits: int = 5,
        seed: int = 42,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        if num_splits < 2:
            raise ValueError(f"num_splits must be at least 2 (the error is their spread), got {num_splits}")
        if isinstance(normalisation, dict):
            normalisation = EFPNormalisation.from_dict(normalisation)
        self.protocol, self.normalisation, self.num_splits, self.seed = protocol, normalisation, num_splits, seed
        self.batch_size = 0
        self.split_values: tuple[float, ...] = ()

    def _value(self, real, real_mask, fake, fake_mask):  # type: ignore[no-untyped-def]
        x, y = jet_efps(real), jet_efps(fake)
        if self.protocol == "jetnet":
            return self._jetnet(x, y)
        norm = self.normalisation or EFPNormalisation.from_features(x, "the real jets of this comparison")
        result = distances.split_distance(norm.apply(x), norm.apply(y), self._distance, self.num_splits, self.seed)
        self.batch_size, self.split_values = result.batch_size, result.values
        return result.value, result.error

    @staticmethod
    @abstractmethod
    def _distance(x: Tensor, y: Tensor) -> float:
        """The distance of one batch pair of normalised features."""

    @abstractmethod
    def _jetnet(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """jetnet's (value, error) on raw EFPs."""


class FPD(_PhysicsDistance):
    """Fréchet physics distance on the d <= 4 EFPs (see :class:`_PhysicsDistance` for the protocols).

    pcgen protocol: the Fréchet distance of one batch pair of ``batch_size`` jets, not extrapolated (it
    includes a positive bias of order 1/batch_size, equal for rows with equal batch sizes). jetnet
    protocol: ``jetnet.evaluation.fpd`` with ``min_samples``, ``max_samples``, ``num_batches`` and
    ``num_points`` (its defaults), batches drawn with replacement, extrapolated linearly in 1/N.
    """

    def __init__(
        self,
        protocol: str = "pcgen",
        normalisation: EFPNormalisation | dict[str, Any] | None = None,
        num_splits: int = 5,
        seed: int = 42,
        min_samples: int = 20_000,
        max_samples: int = 50_000,
        num_batches: int = 20,
        num_points: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(protocol, normalisation, num_splits, seed, **kwargs)
        if not 2 <= min_samples <= max_samples:
            raise ValueError(f"need 2 <= min_samples <= max_samples, got {min_samples}, {max_samples}")
        self.min_samples, self.max_samples = min_samples, max_samples
        self.num_batches, self.num_points = num_batches, num_points

    _distance = staticmethod(distances.frechet_distance)

    def _jetnet(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        return distances.jetnet_fpd(x, y, self.min_samples, self.max_samples, self.num_batches, self.num_points,
                                    self.seed)


class KPD(_PhysicsDistance):
    """Kernel physics distance on the d <= 4 EFPs: the unbiased squared MMD with the polynomial kernel
    ``(x.y / 36 + 1)^4`` (see :class:`_PhysicsDistance` for the protocols). jetnet protocol:
    ``jetnet.evaluation.kpd`` (serial path) with ``num_batches`` batches of ``batch_size`` jets drawn
    with replacement; median ± half the 16-84 % spread."""

    def __init__(
        self,
        protocol: str = "pcgen",
        normalisation: EFPNormalisation | dict[str, Any] | None = None,
        num_splits: int = 5,
        seed: int = 42,
        num_batches: int = 10,
        batch_size: int = 5_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(protocol, normalisation, num_splits, seed, **kwargs)
        if batch_size < 2 or num_batches < 1:
            raise ValueError("batch_size must be >= 2 and num_batches >= 1")
        self.num_batches, self.jetnet_batch_size = num_batches, batch_size

    _distance = staticmethod(distances.mmd_unbiased)

    def _jetnet(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        return distances.jetnet_kpd(x, y, self.num_batches, self.jetnet_batch_size, self.seed)


JET_METRICS: list[MetricSpec] = [
    MetricSpec("w1m", W1M, "jets", "W1 of the relative jet mass (JetNet protocol)", scale=1e3, during_training=True,
               label="W1M", options=bootstrap_options),
    MetricSpec("w1p", W1P, "jets", "W1 of particle pt_rel (per feature in .per_feature)", scale=1e3,
               during_training=True, label="W1P pTrel", options=bootstrap_options),
    MetricSpec("w1efp", W1EFP, "jets", "W1 of five d=4 EFPs, averaged", scale=1e5, label="W1EFP",
               options=bootstrap_options, uses_efps=True),
    MetricSpec("fpd", FPD, "jets", "Frechet physics distance on d<=4 EFPs", scale=1e3, label="FPD",
               options=physics_distance_options, uses_efps=True, needs_normalisation=True, jetnet_scale=1e3),
    MetricSpec("kpd", KPD, "jets", "Kernel physics distance on d<=4 EFPs", scale=1e3, label="KPD",
               options=physics_distance_options, uses_efps=True, needs_normalisation=True, jetnet_scale=1e6),
]
"""The JetNet metrics, with the iGAPT table's units (W1 ×1e3, W1EFP ×1e5, FPD ×1e3) and KPD ×1e3 for pcgen's
protocol (jetnet's protocol: ×1e6)."""
