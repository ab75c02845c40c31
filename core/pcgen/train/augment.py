"""Random reflections and rotations of features: data augmentation for distributions symmetric under them.

Jets in jet-relative coordinates are (up to the small asymmetry of the jet axis) symmetric under
``eta_rel -> -eta_rel`` and ``phi_rel -> -phi_rel``, and, to a good approximation, under rotations of
the (eta_rel, phi_rel) plane about the jet axis (angles between particles, hence the EFPs, are exactly
invariant; the jet mass changes at fourth order in the angles: on the 50,000 Pythia top jets, rotating
15,000 of them at random moves their mass distribution by a W1 of 1e-4, a seventh of the W1 between
two disjoint real sets of that size). Showing a model each training cloud reflected or rotated at
random shows it many distinct clouds, which matters for models that memorise a small training set
(a GPT over tokens, say).

``train.reflect`` names features; every training batch reflects each named feature of each cloud with
probability 1/2, independently. ``train.rotate`` names the two features of a plane; every training
batch rotates each cloud in that plane by an angle drawn uniformly from [0, 2 pi).

Both act in physical units and are applied in the model's space through the affine scaler. Features
the scaler takes the logarithm of cannot be reflected or rotated. The draws of a step come from a
generator seeded by ``(train.seed, step)``, not from torch's global generator, so runs stay
reproducible and resume exactly; padded particles stay zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from pcgen.config import ConfigError, TrainConfig
from pcgen.data.preprocessing import FeatureScaler
from pcgen.train.recipe import Batch

_SEED_STRIDE = 1_000_033
_ROTATION_STREAM = 499_979  # keeps the rotation angles' generator apart from the reflections'


def _feature_index(option: str, features: Sequence[str], feature_names: Sequence[str],
                   scaler: FeatureScaler) -> list[int]:
    """Indices of ``features``, refused with a message when one is unknown or taken the logarithm of."""
    unknown = [f for f in features if f not in feature_names]
    if unknown:
        raise ConfigError(f"'{option}' names {', '.join(map(repr, unknown))}, not a feature of this data; "
                          f"its features are {', '.join(feature_names)} (jets: eta_rel and phi_rel)")
    index = [list(feature_names).index(f) for f in dict.fromkeys(features)]
    logged = [feature_names[i] for i in index if i in scaler.log_features]
    if logged:
        raise ConfigError(f"'{option}' names {', '.join(map(repr, logged))}, which this run takes the logarithm "
                          "of (data.log_features): only features whose sign carries no physics can be moved so")
    return index


def _step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed * _SEED_STRIDE + step + stream)


class RandomReflection:
    """Reflect the named features of each cloud of a batch at random (see the module docs)."""

    def __init__(self, features: Sequence[str], feature_names: Sequence[str], scaler: FeatureScaler, seed: int) -> None:
        index = _feature_index("train.reflect", features, feature_names, scaler)
        self.index = torch.tensor(index, dtype=torch.long)
        self.offset = 2 * scaler.shift[self.index] / scaler.scale[self.index]
        self.seed = int(seed)

    def signs(self, clouds: int, step: int) -> Tensor:
        """``(clouds, features)``: True where the step reflects that feature of that cloud."""
        return torch.randint(0, 2, (clouds, len(self.index)), generator=_step_generator(self.seed, step)).bool()

    def apply(self, batch: Batch, flip: Tensor) -> Batch:
        """``batch`` with the features of :attr:`index` reflected where ``flip`` ``(B, features)`` is True."""
        index, x = self.index.to(batch.x.device), batch.x.clone()
        chosen = x[..., index]
        reflected = -chosen - self.offset.to(x)
        keep = batch.mask.bool().unsqueeze(-1).to(x.dtype)
        x[..., index] = torch.where(flip.to(x.device).unsqueeze(1), reflected, chosen) * keep
        return Batch(x, batch.mask, batch.cond)


class RandomRotation:
    """Rotate each cloud of a batch by a random angle in the plane of two named features (module docs)."""

    def __init__(self, plane: Sequence[str], feature_names: Sequence[str], scaler: FeatureScaler, seed: int) -> None:
        if len(plane) != 2 or plane[0] == plane[1]:
            raise ConfigError(f"'train.rotate' names the two features of a plane, got {list(plane)}; "
                              "jets: train.rotate=[\"eta_rel\", \"phi_rel\"]")
        self.index = torch.tensor(_feature_index("train.rotate", plane, feature_names, scaler), dtype=torch.long)
        self.shift, self.scale = scaler.shift[self.index], scaler.scale[self.index]
        self.seed = int(seed)

    def angles(self, clouds: int, step: int) -> Tensor:
        """``(clouds,)``: the angle (radians) by which the step rotates each cloud."""
        return torch.rand(clouds, generator=_step_generator(self.seed, step, _ROTATION_STREAM), dtype=torch.float64
                          ).mul(2 * math.pi).float()

    def apply(self, batch: Batch, angle: Tensor) -> Batch:
        """``batch`` with each cloud's plane rotated by ``angle`` ``(B,)`` (counter-clockwise, physical units)."""
        index, x = self.index.to(batch.x.device), batch.x.clone()
        shift, scale = self.shift.to(x), self.scale.to(x)
        u, v = (x[..., index] * scale + shift).unbind(-1)
        cos, sin = angle.to(x).cos().unsqueeze(1), angle.to(x).sin().unsqueeze(1)
        rotated = torch.stack((cos * u - sin * v, sin * u + cos * v), dim=-1)
        keep = batch.mask.bool().unsqueeze(-1).to(x.dtype)
        x[..., index] = (rotated - shift) / scale * keep
        return Batch(x, batch.mask, batch.cond)


class Augmentation:
    """The random reflections and rotation a run's ``[train]`` asks for, applied to each training batch."""

    def __init__(self, train: TrainConfig, feature_names: Sequence[str], scaler: FeatureScaler) -> None:
        self.reflection = (RandomReflection(train.reflect, feature_names, scaler, train.seed)
                           if train.reflect else None)
        self.rotation = RandomRotation(train.rotate, feature_names, scaler, train.seed) if train.rotate else None

    def apply(self, batch: Batch, clouds: int, step: int, part: slice) -> Batch:
        """Augment this rank's ``part`` of a step's global batch of ``clouds`` (draws made for the whole batch);
        the batch itself when the run asks for no augmentation."""
        if self.reflection is not None:
            batch = self.reflection.apply(batch, self.reflection.signs(clouds, step)[part])
        if self.rotation is not None:
            batch = self.rotation.apply(batch, self.rotation.angles(clouds, step)[part])
        return batch
