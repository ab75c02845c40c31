"""The smallest generator/critic pair for tests of the adversarial recipe: linear maps of the particles."""

from __future__ import annotations

import torch
from pcgen.nn import apply_mask
from torch import Tensor, nn


class Critic(nn.Module):
    """Score = sum over real particles of a linear map of their features."""

    def __init__(self, features: int = 3) -> None:
        super().__init__()
        self.score = nn.Linear(features, 1)

    def forward(self, x: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        return apply_mask(self.score(x), mask).sum(dim=(1, 2))


class Generator(nn.Module):
    """A linear map of Gaussian noise per particle, zero at padding."""

    def __init__(self, features: int = 3) -> None:
        super().__init__()
        self.out = nn.Linear(features, features)

    def forward(self, mask: Tensor, cond: Tensor) -> Tensor:
        return apply_mask(self.out(torch.randn(*mask.shape, self.out.in_features)), mask)
