"""torchmetrics wrappers over jetnet's jet metrics, following the JetNet evaluation protocol.

The protocol (Kansal et al., arXiv:2106.11535 and arXiv:2211.10295): 1-Wasserstein distances of the
jet mass (W1M), the particle features (W1P) and five d = 4 energy flow polynomials (W1EFP), each the
mean ± std over ``num_batches`` random subsamples; the Fréchet and kernel physics distances (FPD,
KPD) on the 36 EFPs with d <= 4.

Every metric is updated with ``update(real, real_mask, fake, fake_mask)``: ``(B, N, 3)`` point clouds
in physical units (eta_rel, phi_rel, pt_rel) and ``(B, N)`` bool masks. Before anything reaches
jetnet, padded entries are set to zero (jetnet treats zero-pT particles as padding) and negative
pt_rel is clipped to zero (as jetnet's ``gen_jet_corrections`` does), so padded slots never change a
value. ``compute()`` returns ``tensor([value, error])`` in float64. Every random choice is seeded.

``jetnet`` is imported lazily: importing it takes seconds.
"""

from __future__ import annotations

from abc import abstractmethod

import contextlib
import functools
import hashlib
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pcgen.data.pointclouds import JET_FEATURES
from pcgen.metrics.pairs import CloudPairMetric
from pcgen.specs import MetricSpec

PT_INDEX = 2
"""Index of pt_rel among the particle features."""
EFP_METRICS = frozenset({"w1efp", "fpd", "kpd"})
"""Names of the metrics that need energy flow polynomials (skipped when ``eval.efp`` is False)."""
FPD_KPD_EFPSET: list[tuple[str, int]] = [("d<=", 4)]
"""EFPs used by FPD and KPD (36 per jet), as jetnet's ``get_fpd_kpd_jet_features``."""
W1EFP_EFPSET: list[tuple[str, int]] = [("n==", 4), ("d==", 4), ("p==", 1)]
"""EFPs compared by W1EFP (jetnet's default: the five prime n = 4, d = 4 graphs)."""

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


def relative_jet_mass(points: Tensor | np.ndarray, mask: Tensor | np.ndarray) -> np.ndarray:
    """Jet mass over jet pT from massless particles in relative coordinates, ``(B,)`` float64.

    The same quantity as ``jetnet.utils.jet_features(jets)["mass"]`` (which W1M compares), computed
    here with numpy only so that plotting does not need to import jetnet.
    """
    jets = prepare_jets(points, mask)
    eta, phi, pt = jets[..., 0], jets[..., 1], jets[..., PT_INDEX]
    px, py = (pt * np.cos(phi)).sum(1), (pt * np.sin(phi)).sum(1)
    pz, energy = (pt * np.sinh(eta)).sum(1), (pt * np.cosh(eta)).sum(1)
    return np.sqrt(np.maximum(energy**2 - px**2 - py**2 - pz**2, 0.0))


def _available(*arrays: np.ndarray) -> int:
    return int(min(len(a) for a in arrays))


@contextlib.contextmanager
def seeded_jetnet_rng(seed: int) -> Iterator[None]:
    """Within the block, jetnet's module-level W1 sampler is ``np.random.default_rng(seed)``."""
    from jetnet.evaluation import gen_metrics

    saved = gen_metrics.rng
    gen_metrics.rng = np.random.default_rng(seed)
    try:
        yield
    finally:
        gen_metrics.rng = saved


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence jetnet's "Recommended number of jets ... is 50,000" warnings."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Recommended number", category=RuntimeWarning)
        yield


def jet_efps(jets: np.ndarray, efp_jobs: int | None = None) -> np.ndarray:
    """The 36 EFPs with d <= 4 of prepared jets (``jetnet.utils.efps``), cached by content.

    The cache (a few entries) lets the truth and model rows, and W1EFP, FPD and KPD, share the
    costly EFPs of one set of jets.
    """
    jets = np.ascontiguousarray(jets, dtype=np.float64)
    key = f"{jets.shape}:{hashlib.blake2b(jets.data, digest_size=16).hexdigest()}"
    if key in _EFP_CACHE:
        _EFP_CACHE.move_to_end(key)
        return _EFP_CACHE[key]
    from jetnet import utils

    efps = utils.efps(jets, efpset_args=FPD_KPD_EFPSET, efp_jobs=efp_jobs)
    _EFP_CACHE[key] = efps
    while len(_EFP_CACHE) > _EFP_CACHE_SIZE:
        _EFP_CACHE.popitem(last=False)
    return efps


@functools.cache
def _w1efp_columns() -> np.ndarray:
    """Boolean selection of the W1EFP graphs among the d <= 4 EFPs (same values, same order)."""
    from energyflow import EFPSet

    efpset = EFPSet(*FPD_KPD_EFPSET, measure="hadr", beta=1, normed=None, coords="ptyphim")
    return np.asarray(efpset.sel(*W1EFP_EFPSET), dtype=bool)


def fpd_sample_range(min_samples: int, max_samples: int, available: int) -> tuple[int, int]:
    """FPD's (min, max) batch sizes clamped to the jets available, keeping their ratio.

    With enough jets this is ``(min_samples, max_samples)``; with fewer, the largest batch is all of
    them and the smallest shrinks in proportion (5,000 jets and the defaults give 2,000 to 5,000).
    """
    high = max(2, min(max_samples, available))
    low = min(min_samples, round(high * min_samples / max_samples))
    return max(2, min(low, high - 1)), high


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
        with _quiet():
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

    def _sample_size(self, *arrays: np.ndarray) -> int:
        """Jets per subsample: ``num_eval_samples``, at most the smaller set's size."""
        return min(self.num_eval_samples, _available(*arrays))


class W1M(_BootstrappedW1):
    """W1 distance of the relative jet mass m/pT (jetnet's ``w1m``); table unit 1e-3.

    Subsamples of ``min(num_eval_samples, jets available)`` jets are drawn with replacement
    (JetNet's protocol), ``num_batches`` times, from a generator seeded with ``seed``.
    """

    def _value(self, real, real_mask, fake, fake_mask):  # type: ignore[no-untyped-def]
        from jetnet.evaluation import gen_metrics

        with seeded_jetnet_rng(self.seed):
            return gen_metrics.w1m(
                real, fake, num_eval_samples=self._sample_size(real, fake), num_batches=self.num_batches
            )


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
        from jetnet.evaluation import gen_metrics

        with seeded_jetnet_rng(self.seed):
            means, stds = gen_metrics.w1p(
                real,
                fake,
                mask1=real_mask,
                mask2=fake_mask,
                exclude_zeros=False,  # the mask alone says which particles are real
                num_eval_samples=self._sample_size(real, fake),
                num_batches=self.num_batches,
            )
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

    def __init__(
        self,
        num_eval_samples: int = 50_000,
        num_batches: int = 5,
        seed: int = 42,
        efp_jobs: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_eval_samples=num_eval_samples, num_batches=num_batches, seed=seed, **kwargs)
        self.efp_jobs = efp_jobs
        self.per_efp: list[tuple[float, float]] = []

    def _value(self, real, real_mask, fake, fake_mask):  # type: ignore[no-untyped-def]
        from scipy.stats import wasserstein_distance

        columns = _w1efp_columns()
        efps1 = jet_efps(real, self.efp_jobs)[:, columns]
        efps2 = jet_efps(fake, self.efp_jobs)[:, columns]
        size, rng = self._sample_size(efps1, efps2), np.random.default_rng(self.seed)
        w1s = []
        for _ in range(self.num_batches):
            sample1 = efps1[rng.choice(len(efps1), size=size)]
            sample2 = efps2[rng.choice(len(efps2), size=size)]
            w1s.append([wasserstein_distance(sample1[:, i], sample2[:, i]) for i in range(efps1.shape[1])])
        means, stds = np.mean(w1s, axis=0), np.std(w1s, axis=0)
        self.per_efp = [(float(m), float(s)) for m, s in zip(means, stds, strict=True)]
        return float(np.mean(means)), float(np.mean(stds))

    def reset(self) -> None:
        super().reset()
        self.per_efp = []


class FPD(JetPairMetric):
    """Fréchet physics distance on the d <= 4 EFPs (jetnet's ``fpd``): the value extrapolated to
    infinitely many jets from batch sizes between ``min_samples`` and ``max_samples``, clamped to
    the jets available (see :func:`fpd_sample_range`)."""

    def __init__(
        self,
        min_samples: int = 20_000,
        max_samples: int = 50_000,
        num_batches: int = 20,
        num_points: int = 10,
        seed: int = 42,
        efp_jobs: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 2 <= min_samples <= max_samples:
            raise ValueError(f"need 2 <= min_samples <= max_samples, got {min_samples}, {max_samples}")
        self.min_samples, self.max_samples = min_samples, max_samples
        self.num_batches, self.num_points = num_batches, num_points
        self.seed, self.efp_jobs = seed, efp_jobs

    def _value(self, real, real_mask, fake, fake_mask):  # type: ignore[no-untyped-def]
        from jetnet.evaluation import gen_metrics

        x, y = jet_efps(real, self.efp_jobs), jet_efps(fake, self.efp_jobs)
        low, high = fpd_sample_range(self.min_samples, self.max_samples, _available(x, y))
        return gen_metrics.fpd(
            x,
            y,
            min_samples=low,
            max_samples=high,
            num_batches=self.num_batches,
            num_points=self.num_points,
            seed=self.seed,
        )


class KPD(JetPairMetric):
    """Kernel physics distance on the d <= 4 EFPs (jetnet's ``kpd``): median ± half the 16-84 %
    spread of the unbiased polynomial-kernel MMD over ``num_batches`` batches of
    ``min(batch_size, jets available)`` jets. ``num_threads`` is passed to jetnet (None: serial)."""

    def __init__(
        self,
        num_batches: int = 10,
        batch_size: int = 5_000,
        seed: int = 42,
        num_threads: int | None = None,
        efp_jobs: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if batch_size < 2 or num_batches < 1:
            raise ValueError("batch_size must be >= 2 and num_batches >= 1")
        self.num_batches, self.batch_size = num_batches, batch_size
        self.seed, self.num_threads, self.efp_jobs = seed, num_threads, efp_jobs

    def _value(self, real, real_mask, fake, fake_mask):  # type: ignore[no-untyped-def]
        from jetnet.evaluation import gen_metrics

        x, y = jet_efps(real, self.efp_jobs), jet_efps(fake, self.efp_jobs)
        size = max(2, min(self.batch_size, _available(x, y)))
        return gen_metrics.kpd(
            x, y, num_batches=self.num_batches, batch_size=size, seed=self.seed, num_threads=self.num_threads
        )


JET_METRICS: list[MetricSpec] = [
    MetricSpec("w1m", W1M, "jets", "W1 of the relative jet mass (JetNet protocol)", scale=1e3, during_training=True),
    MetricSpec("w1p", W1P, "jets", "W1 of particle pt_rel (per feature in .per_feature)", scale=1e3,
               during_training=True),
    MetricSpec("w1efp", W1EFP, "jets", "W1 of five d=4 EFPs, averaged", scale=1e5),
    MetricSpec("fpd", FPD, "jets", "Frechet physics distance on d<=4 EFPs", scale=1e3),
    MetricSpec("kpd", KPD, "jets", "Kernel physics distance on d<=4 EFPs", scale=1e6),
]
"""The JetNet-protocol metrics, with the iGAPT table's units (W1 ×1e3, W1EFP ×1e5, FPD ×1e3, KPD ×1e6)."""
