"""Base classes for what a model plugin builds."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from abc import ABC, abstractmethod

from torch import Tensor, nn

if TYPE_CHECKING:
    from pcgen.train.recipe import Batch


class GenerativeModel(nn.Module, ABC):
    """Anything the core can train through a recipe and sample from.

    Tensors follow pcgen's conventions: point clouds ``x`` are ``(B, N, F)`` in the preprocessed
    (scaled) space, ``mask`` is ``(B, N)`` bool with True for real particles, ``cond`` is
    ``(B, C)`` (for jets: the multiplicity divided by N).
    """

    variants: ClassVar[tuple[str, ...]] = ("default",)
    """Names of the ways this model can sample (e.g. a flow alone or flow + refiner); the first is the default."""

    draws_multiplicity: ClassVar[bool] = False
    """True for a model that decides each cloud's multiplicity itself (e.g. where it draws a stop
    token): generation then calls :meth:`sample_with_multiplicity` instead of taking multiplicities
    from the training data."""

    @abstractmethod
    def sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        """Generate point clouds with the given masks with the selected variant; padded entries must be zero."""

    def sample_with_multiplicity(self, num: int, max_particles: int) -> tuple[Tensor, Tensor]:
        """``num`` clouds whose multiplicities the model draws: ``(x (num, N, F), mask (num, N))``,
        padded entries zero (models with :attr:`draws_multiplicity` implement it)."""
        raise NotImplementedError(f"{type(self).__name__} takes its multiplicities from the data")

    @property
    def variant(self) -> str:
        return getattr(self, "_variant", self.variants[0])

    def select_variant(self, name: str | None) -> None:
        """Make :meth:`sample` use the sampling variant ``name`` (None: the default)."""
        name = name or self.variants[0]
        if name not in self.variants:
            raise ValueError(f"{type(self).__name__} has no sampling variant {name!r}; choose from {list(self.variants)}")
        self._variant = name


class AdversarialModel(GenerativeModel):
    """A generator/critic pair, trained by the core's adversarial recipe.

    ``generator(mask, cond) -> x`` draws its own noise (from torch's seeded global generator);
    ``critic(x, mask, cond) -> score`` returns one raw (unbounded) score per cloud, ``(B,)``.
    A model with a loss of its own for the generator (e.g. MDMA's mean-field matching) overrides
    :meth:`generator_extra_losses`.
    """

    def __init__(self, generator: nn.Module, critic: nn.Module) -> None:
        super().__init__()
        self.generator = generator
        self.critic = critic

    def sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        x = self.generator(mask, cond)
        return x * mask.unsqueeze(-1).to(x.dtype)

    def generator_extra_losses(self, real: Batch, fake: Tensor, step: int) -> dict[str, Tensor]:
        """Model-specific terms added to the generator's adversarial loss at this step.

        ``real`` is the training batch, ``fake`` the generated clouds of the same masks (with
        gradients). Each returned scalar is added to the loss and logged as ``loss/<name>``.
        """
        return {}
