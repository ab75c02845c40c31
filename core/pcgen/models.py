"""Base classes for what a model plugin builds."""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor, nn


class GenerativeModel(nn.Module, ABC):
    """Anything the core can train through a recipe and sample from.

    Tensors follow pcgen's conventions: point clouds ``x`` are ``(B, N, F)`` in the preprocessed
    (scaled) space, ``mask`` is ``(B, N)`` bool with True for real particles, ``cond`` is
    ``(B, C)`` (for jets: the multiplicity divided by N).
    """

    @abstractmethod
    def sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        """Generate point clouds with the given masks; padded entries must be zero."""


class AdversarialModel(GenerativeModel):
    """A generator/critic pair, trained by the core's adversarial recipe.

    ``generator(mask, cond) -> x`` draws its own noise (from torch's seeded global generator);
    ``critic(x, mask, cond) -> score`` returns one raw (unbounded) score per cloud, ``(B,)``.
    """

    def __init__(self, generator: nn.Module, critic: nn.Module) -> None:
        super().__init__()
        self.generator = generator
        self.critic = critic

    def sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        x = self.generator(mask, cond)
        return x * mask.unsqueeze(-1).to(x.dtype)
