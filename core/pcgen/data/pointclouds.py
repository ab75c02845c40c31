"""The in-memory container every data source returns and every model consumes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

JET_FEATURES = ("eta_rel", "phi_rel", "pt_rel")
"""Particle features of a jet, in JetNet's order."""
JET_GLOBALS = ("pt", "eta", "mass", "num_particles")
"""Jet-level features, in JetNet's order."""
SHOWER_FEATURES = ("x", "y", "z", "E")
"""Per-hit features of a calorimeter shower: cell coordinates (z = layer) and energy in MeV."""


def sort_particles(points: np.ndarray, mask: np.ndarray, key: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``(points, mask)`` with each cloud's real particles sorted by feature ``key``, highest first,
    and padding last (``key`` None: real particles first, in their order)."""
    score = np.where(mask, -points[..., key] if key is not None else 0.0, np.inf)
    order = np.argsort(score, axis=1, kind="stable")
    return np.take_along_axis(points, order[..., None], axis=1), np.take_along_axis(mask, order, axis=1)


def sort_key(feature: str | None, feature_names: tuple[str, ...]) -> int | None:
    """The index of ``feature`` (a kind's sort feature) among ``feature_names``, None if absent or None."""
    return feature_names.index(feature) if feature in feature_names else None


@dataclass(frozen=True)
class PointClouds:
    """A set of zero-padded point clouds with their masks and cloud-level features.

    ``points`` is ``(clouds, N, F)`` float32, zero where ``mask`` is False; ``mask`` is ``(clouds, N)``
    bool with True for real particles; ``globals`` is ``(clouds, G)`` float32 (for jets: pt, eta,
    mass, num_particles, as JetNet stores them).
    """

    points: np.ndarray
    mask: np.ndarray
    feature_names: tuple[str, ...] = JET_FEATURES
    globals: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    global_names: tuple[str, ...] = JET_GLOBALS
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.points.ndim != 3:
            raise ValueError(f"points must be (clouds, particles, features), got shape {self.points.shape}")
        if self.mask.shape != self.points.shape[:2]:
            raise ValueError(f"mask shape {self.mask.shape} does not match points {self.points.shape[:2]}")
        if self.points.shape[2] != len(self.feature_names):
            raise ValueError(
                f"points have {self.points.shape[2]} features but feature_names lists {len(self.feature_names)}"
            )
        if self.globals.size and len(self.globals) != len(self.points):
            raise ValueError(f"globals has {len(self.globals)} rows for {len(self.points)} clouds")

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def max_particles(self) -> int:
        return int(self.points.shape[1])

    @property
    def kind(self) -> str:
        """The kind the clouds declare (``meta["kind"]``), ``""`` if they do not (a registry's
        ``kind_of`` then recognises them by their features)."""
        return str(self.meta.get("kind", ""))

    @property
    def multiplicity(self) -> np.ndarray:
        """Number of real particles per cloud, ``(clouds,)`` int."""
        return self.mask.sum(axis=1).astype(np.int64)

    def fingerprint(self) -> str:
        """SHA-256 (hex, first 16 digits) of the particles and masks as float32 / bool arrays: the
        same clouds give the same fingerprint whatever file they were read from."""
        import hashlib

        digest = hashlib.sha256(np.ascontiguousarray(self.points, np.float32).tobytes())
        digest.update(np.ascontiguousarray(self.mask, bool).tobytes())
        return digest.hexdigest()[:16]

    def subset(self, index: np.ndarray | slice) -> PointClouds:
        """The clouds selected by ``index`` (same metadata)."""
        glob = self.globals[index] if self.globals.size else self.globals
        return replace(self, points=self.points[index], mask=self.mask[index], globals=glob)

    def split(self, train_fraction: float, seed: int) -> tuple[PointClouds, PointClouds]:
        """A reproducible random split into (train, test), as JetNet's ``split_fraction`` does."""
        if not 0.0 < train_fraction < 1.0:
            raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
        order = np.random.default_rng(seed).permutation(len(self))
        cut = int(round(train_fraction * len(self)))
        return self.subset(np.sort(order[:cut])), self.subset(np.sort(order[cut:]))

    def with_mask_applied(self) -> PointClouds:
        """A copy whose padded entries are exactly zero."""
        return replace(self, points=np.where(self.mask[..., None], self.points, 0.0).astype(np.float32))
