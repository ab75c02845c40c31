"""Random reflections of features: data augmentation for distributions that are symmetric under them.

Jets in jet-relative coordinates are (up to the small asymmetry of the jet axis) symmetric under
``eta_rel -> -eta_rel`` and ``phi_rel -> -phi_rel``; reflecting each training cloud at random shows a
model up to four times as many distinct clouds, which matters for models that memorise a small
training set (a GPT over tokens, say). ``train.reflect`` names the features; every training batch
reflects each named feature of each cloud with probability 1/2, independently.

The reflection acts in physical units (``x -> -x``) and is applied in the model's space through the
affine scaler: ``x_m -> -x_m - 2 shift / scale``. Features the scaler takes the logarithm of cannot be
reflected. The signs of a step come from a generator seeded by ``(train.seed, step)``, not from
torch's global generator, so runs stay reproducible and resume exactly; padded particles stay zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from pcgen.config import ConfigError
from pcgen.data.preprocessing import FeatureScaler
from pcgen.train.recipe import Batch

_SEED_STRIDE = 1_000_033


class RandomReflection:
    """Reflect the named features of each cloud of a batch at random (see the module docs)."""

    def __init__(self, features: Sequence[str], feature_names: Sequence[str], scaler: FeatureScaler, seed: int) -> None:
        unknown = [f for f in features if f not in feature_names]
        if unknown:
            raise ConfigError(f"'train.reflect' names {', '.join(map(repr, unknown))}, not a feature of this data; "
                              f"its features are {', '.join(feature_names)} (jets: reflect eta_rel and phi_rel)")
        index = [list(feature_names).index(f) for f in dict.fromkeys(features)]
        logged = [feature_names[i] for i in index if i in scaler.log_features]
        if logged:
            raise ConfigError(f"'train.reflect' names {', '.join(map(repr, logged))}, which this run takes the logarithm "
                              "of (data.log_features): only features whose sign carries no physics can be reflected")
        self.index = torch.tensor(index, dtype=torch.long)
        self.offset = 2 * scaler.shift[self.index] / scaler.scale[self.index]
        self.seed = int(seed)

    def signs(self, clouds: int, step: int) -> Tensor:
        """``(clouds, features)``: True where the step reflects that feature of that cloud."""
        gen = torch.Generator().manual_seed(self.seed * _SEED_STRIDE + step)
        return torch.randint(0, 2, (clouds, len(self.index)), generator=gen).bool()

    def apply(self, batch: Batch, flip: Tensor) -> Batch:
        """``batch`` with the features of :attr:`index` reflected where ``flip`` ``(B, features)`` is True."""
        index, x = self.index.to(batch.x.device), batch.x.clone()
        chosen = x[..., index]
        reflected = -chosen - self.offset.to(x)
        keep = batch.mask.bool().unsqueeze(-1).to(x.dtype)
        x[..., index] = torch.where(flip.to(x.device).unsqueeze(1), reflected, chosen) * keep
        return Batch(x, batch.mask, batch.cond)
