"""How close generated jets come to a model's training jets: a check that a model does not copy them.

Distances to the real jets cannot tell a model that generalises from one that reproduces its
training set (the training jets are real jets too). This check represents each cloud as one vector,
its particles ordered by ``pt_rel`` (hits: ``E``) with each feature divided by its standard deviation
over the training set's real particles, padded particles zero, and finds each cloud's nearest
training cloud (Euclidean distance). The same is done for fresh real jets that no model saw, which
sets the scale:

- ``median_ratio``: the median nearest distance of generated clouds over that of the fresh real
  ones (about 1 for a model that generalises; near 0 for one that copies its training clouds);
- ``near_copies``: the fraction of generated clouds closer to a training cloud than all but 1 % of
  the fresh real clouds are (1 % for fresh real jets by construction).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from pcgen.data.pointclouds import PointClouds

ORDER_FEATURES = ("pt_rel", "E")
"""The feature the particles of a cloud are ordered by (the first of these the clouds have)."""

NEAR_QUANTILE = 0.01
"""A near copy is closer to a training cloud than this fraction of fresh real clouds are."""


@dataclass(frozen=True)
class CopyCheck:
    """The two numbers of the check (see the module docs)."""

    median_ratio: float
    near_copies: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def cloud_vectors(clouds: PointClouds, scale: np.ndarray) -> Tensor:
    """``(clouds, N * F)``: each cloud's particles ordered by decreasing ``pt_rel`` (or ``E``), features
    divided by ``scale`` ``(F,)``, padded particles zero."""
    order = next((clouds.feature_names.index(f) for f in ORDER_FEATURES if f in clouds.feature_names), None)
    if order is None:
        raise ValueError(f"the copy check orders particles by {' or '.join(ORDER_FEATURES)}; these clouds have "
                         f"{', '.join(clouds.feature_names)}")
    points = torch.as_tensor(clouds.points, dtype=torch.float32) / torch.as_tensor(scale, dtype=torch.float32)
    mask = torch.as_tensor(clouds.mask, dtype=torch.bool)
    points = points * mask.unsqueeze(-1)
    key = torch.where(mask, points[..., order], torch.tensor(-torch.inf))
    ranked = torch.argsort(key, dim=1, descending=True, stable=True)
    return torch.take_along_dim(points, ranked.unsqueeze(-1), dim=1).flatten(1)


def nearest_distances(query: Tensor, reference: Tensor, chunk: int = 256) -> Tensor:
    """Euclidean distance of each row of ``query`` to its nearest row of ``reference``."""
    return torch.cat([torch.cdist(part, reference).amin(dim=1) for part in query.split(chunk)])


def feature_scale(training: PointClouds) -> np.ndarray:
    """Each feature's standard deviation over the real particles of ``training`` (1 where it is 0)."""
    std = training.points[training.mask.astype(bool)].std(axis=0)
    return np.where(std > 0, std, 1.0)


class CopyReference:
    """The training clouds' vectors and the fresh real clouds' nearest distances to them, computed once
    and shared by the check of every generated set (:meth:`check`)."""

    def __init__(self, fresh: PointClouds, training: PointClouds) -> None:
        if fresh.feature_names != training.feature_names:
            raise ValueError("the copy check needs clouds with the same features as the training clouds")
        self.feature_names = training.feature_names
        self.scale = feature_scale(training)
        self.width = max(fresh.points.shape[1], training.points.shape[1])
        self.training = self._vectors(training)
        self.fresh = nearest_distances(self._vectors(fresh), self.training)
        self.near = torch.quantile(self.fresh, NEAR_QUANTILE)

    def _vectors(self, clouds: PointClouds) -> Tensor:
        return _padded(cloud_vectors(clouds, self.scale), self.width, clouds)

    def check(self, generated: PointClouds) -> CopyCheck:
        """How much closer ``generated`` clouds are to the training clouds than the fresh real ones are."""
        if generated.feature_names != self.feature_names:
            raise ValueError("the copy check needs clouds with the same features as the training clouds")
        width = max(self.width, generated.points.shape[1])  # zero slots added to both sides change no distance
        training = torch.nn.functional.pad(self.training, (0, width * len(self.feature_names) - self.training.shape[1]))
        ours = nearest_distances(_padded(cloud_vectors(generated, self.scale), width, generated), training)
        return CopyCheck(median_ratio=float(ours.median() / self.fresh.median()),
                         near_copies=float((ours < self.near).float().mean()))


def copy_check(generated: PointClouds, fresh: PointClouds, training: PointClouds) -> CopyCheck:
    """How much closer ``generated`` clouds are to ``training`` than ``fresh`` real clouds are."""
    return CopyReference(fresh, training).check(generated)


def _padded(vectors: Tensor, particles: int, clouds: PointClouds) -> Tensor:
    """``vectors`` of clouds with fewer particle slots than ``particles``, zero-padded to that many."""
    features = len(clouds.feature_names)
    return torch.nn.functional.pad(vectors, (0, particles * features - vectors.shape[1]))
