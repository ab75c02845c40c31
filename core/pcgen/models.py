"""The model interfaces of pcgen's public plugin API, all in one place.

A plugin's ``build()`` returns one of these. :class:`GenerativeModel` is the base: its public
:meth:`~GenerativeModel.sample` is a template method that checks the mask and condition, calls the
model's own :meth:`~GenerativeModel._sample` and zeroes the padded particles, so no model repeats
that work. The subclasses name what each core training recipe needs:

==========================  ====================  =====================================================
interface                   recipe                the model implements
==========================  ====================  =====================================================
:class:`AdversarialModel`   ``adversarial``       a generator and a critic (given to the constructor)
:class:`LikelihoodModel`    ``likelihood``        ``log_prob(x, mask, cond)`` and ``_sample``
:class:`ObjectiveModel`     ``objective``         ``training_losses(batch, step)`` and ``_sample``
:class:`AutoregressiveModel` ``autoregressive``   ``token_sequences``, ``next_token_logits``, ``_sample``
:class:`StagedModel`        ``staged``            ``part(stage)`` and ``_sample``
==========================  ====================  =====================================================

Two more pieces of the plugin API live here: :class:`ModelConfig`, the base of a plugin's config class
(unknown keys are errors), and :class:`NoiseDrivenGenerator`, the noise interface (``sample_noise`` and
``forward_from_noise``) through which the model contract checks masking and permutation equivariance
exactly.

This module imports nothing of :mod:`pcgen.train`; the recipes import it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

from pcgen.nn.averaging import ParameterAverage

IGNORE = -100
"""Target of token positions that predict nothing (padding after the stop token), for
:class:`AutoregressiveModel`."""


class ModelConfig(BaseModel):
    """Base of a plugin's config class (``ModelSpec.config_class``): a pydantic model whose unknown keys are
    errors and whose values are checked on assignment too, as in the core's own config sections.

    Subclass it and declare typed, constrained and described fields with the paper's defaults::

        class MyConfig(ModelConfig):
            hidden: int = Field(128, ge=1, description="Per-particle width.")

    A misspelt key in the ``[model]`` table (or ``--set model.hiden=64``) is then reported with its name
    instead of being ignored. A subclass that sets ``model_config`` of its own keeps these settings unless
    it overrides them (pydantic merges the two).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


@runtime_checkable
class NoiseDrivenGenerator(Protocol):
    """The noise interface: a generator whose randomness all comes from noise it draws in one place.

    Implement both methods on the model itself or on an :class:`AdversarialModel`'s generator (or the
    generator of a :class:`StagedModel`'s adversarial part); ``isinstance(obj, NoiseDrivenGenerator)``
    then holds. Through it the model contract checks exactly that the noise of padded particles never
    reaches a real one and that permuting the particles' noise (with the mask) permutes the generated
    particles the same way. A model that claims ``ModelSpec.permutation_equivariant`` without it is only
    checked statistically (the distribution of generated particles must not depend on their slot).

    The noise is a sequence whose first element is the per-particle noise ``(B, N, P)``; any further
    elements are per-cloud noise (e.g. ``(B, L)`` latent vectors), which a permutation leaves alone.
    :func:`pcgen.nn.particle_and_global_noise` draws the usual pair. Per-particle noise that a sampler
    draws at every step belongs in :meth:`sample_noise` too, so that it follows its particle.
    """

    def sample_noise(self, mask: Tensor) -> Sequence[Tensor]:
        """Noise for clouds shaped like the bool ``mask`` ``(B, N)``, from torch's global RNG: per-particle
        noise ``(B, N, P)`` first, then per-cloud noise, on the generator's device."""
        ...

    def forward_from_noise(self, noise: Sequence[Tensor], mask: Tensor, cond: Tensor) -> Tensor:
        """Clouds ``(B, N, F)`` from ``noise`` (as :meth:`sample_noise` returns it), ``mask`` ``(B, N)`` and
        ``cond`` ``(B, C)``; real particles must not depend on the noise of padded ones."""
        ...


@dataclass
class Batch:
    """One training batch in model space: ``x`` (B, N, F), ``mask`` (B, N) bool, ``cond`` (B, C)."""

    x: Tensor
    mask: Tensor
    cond: Tensor

    def to(self, device: torch.device | str) -> Batch:
        """The batch on ``device``."""
        return Batch(self.x.to(device), self.mask.to(device), self.cond.to(device))


def _check_mask_and_condition(model: str, mask: Tensor, cond: Tensor) -> Tensor:
    """``mask`` as bool after checking it is ``(B, N)`` and ``cond`` is ``(B, C)``."""
    if mask.dim() != 2:
        raise ValueError(f"{model}.sample: mask must be (clouds, particles), got shape {tuple(mask.shape)}")
    if cond.dim() != 2 or cond.shape[0] != mask.shape[0]:
        raise ValueError(
            f"{model}.sample: cond must be (clouds, condition width) with {mask.shape[0]} rows like the mask, "
            f"got shape {tuple(cond.shape)}"
        )
    return mask.bool()


def _zero_padding(model: str, x: Tensor, mask: Tensor) -> Tensor:
    """``x`` with padded particles set to exactly zero, after checking it is ``(B, N, F)`` like ``mask``."""
    if not isinstance(x, Tensor) or x.dim() != 3 or tuple(x.shape[:2]) != tuple(mask.shape):
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"{model}._sample must return clouds (clouds, particles, features) matching the mask "
            f"{tuple(mask.shape)}, got {shape}"
        )
    return x.masked_fill(~mask.unsqueeze(-1), 0.0)


class GenerativeModel(nn.Module, ABC):
    """Anything the core can train through a recipe and sample from.

    Tensors follow pcgen's conventions: point clouds ``x`` are ``(B, N, F)`` in the preprocessed
    (scaled) space, ``mask`` is ``(B, N)`` bool with True for real particles, ``cond`` is
    ``(B, C)`` (for jets: the multiplicity divided by N). A model implements :meth:`_sample`
    (and, if it draws multiplicities itself, :meth:`_sample_with_multiplicity`); callers use the
    public :meth:`sample` and :meth:`sample_with_multiplicity`, which check shapes and zero padding.
    """

    variants: ClassVar[tuple[str, ...]] = ("default",)
    """Names of the ways this model can sample (e.g. a flow alone or flow + refiner); the first is the default."""

    draws_multiplicity: ClassVar[bool] = False
    """True for a model that decides each cloud's multiplicity itself (e.g. where it draws a stop
    token): generation then calls :meth:`sample_with_multiplicity` instead of taking multiplicities
    from the training data."""

    def sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        """Clouds ``(B, N, F)`` with the particles ``mask`` marks, from the selected variant.

        Checks that ``mask`` is ``(B, N)`` and ``cond`` ``(B, C)``, calls :meth:`_sample`, checks
        its output and sets every padded particle to exactly zero.
        """
        name = type(self).__name__
        mask = _check_mask_and_condition(name, mask, cond)
        return _zero_padding(name, self._sample(mask, cond), mask)

    @abstractmethod
    def _sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        """The model's own generation: clouds ``(B, N, F)`` for a bool ``mask`` ``(B, N)``.

        Padded entries need not be zero: :meth:`sample` discards them. Real particles must not
        depend on what the model puts in padded slots.
        """

    def sample_with_multiplicity(self, num: int, max_particles: int) -> tuple[Tensor, Tensor]:
        """``num`` clouds whose multiplicities the model draws: ``(x (num, N, F), mask (num, N))``,
        padded entries zero (models with :attr:`draws_multiplicity` implement
        :meth:`_sample_with_multiplicity`)."""
        if num < 1 or max_particles < 1:
            raise ValueError(f"sample_with_multiplicity needs num >= 1 and max_particles >= 1, got {num}, {max_particles}")
        x, mask = self._sample_with_multiplicity(num, max_particles)
        mask = mask.bool()
        if tuple(mask.shape) != (num, max_particles):
            raise ValueError(
                f"{type(self).__name__}._sample_with_multiplicity returned a mask of shape {tuple(mask.shape)}, "
                f"expected {(num, max_particles)}"
            )
        return _zero_padding(type(self).__name__, x, mask), mask

    def _sample_with_multiplicity(self, num: int, max_particles: int) -> tuple[Tensor, Tensor]:
        """The model's own generation with multiplicities it draws: ``(x, mask)``."""
        raise NotImplementedError(f"{type(self).__name__} takes its multiplicities from the data")

    @property
    def variant(self) -> str:
        """The sampling variant :meth:`sample` uses now."""
        return getattr(self, "_variant", self.variants[0])

    def select_variant(self, name: str | None) -> None:
        """Make :meth:`sample` use the sampling variant ``name`` (None: the default)."""
        name = name or self.variants[0]
        if name not in self.variants:
            raise ValueError(f"{type(self).__name__} has no sampling variant {name!r}; choose from {list(self.variants)}")
        self._variant = name


def _fill_missing_average(module: nn.Module, state_dict: dict, prefix: str, *args: Any) -> None:
    """Load-state-dict pre-hook: weights saved before generators had an average load with an inactive
    one (a copy of the generator, no update counted), so sampling uses the generator itself."""
    if f"{prefix}generator_average.updates" in state_dict:
        return
    average: ParameterAverage = module.generator_average  # type: ignore[assignment]
    for name in average.names:
        live = state_dict.get(f"{prefix}generator.{name}")
        if live is not None:
            state_dict[f"{prefix}generator_average.{average.buffer_name(name)}"] = live
    state_dict[f"{prefix}generator_average.updates"] = torch.zeros((), dtype=torch.long)


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
        self.generator_average = ParameterAverage(generator)
        self.register_load_state_dict_pre_hook(_fill_missing_average)

    def _sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        if self.generator_average.active:
            return self.generator_average(self.generator, mask, cond)
        return self.generator(mask, cond)

    def update_generator_average(self, decay: float) -> float:
        """Move the generator's weight average (EMA) one step towards its current weights; returns the
        decay used (warmed up over the first updates). Once updated, :meth:`sample` uses the average;
        the adversarial recipe calls this after every generator update when ``recipe.ema_decay > 0``."""
        return self.generator_average.update(self.generator, decay)

    def generator_extra_losses(self, real: Batch, fake: Tensor, step: int) -> dict[str, Tensor]:
        """Model-specific terms added to the generator's adversarial loss at this step.

        ``real`` is the training batch, ``fake`` the generated clouds of the same masks (with
        gradients). Each returned scalar is added to the loss and logged as ``loss/<name>``.
        """
        return {}


class LikelihoodModel(GenerativeModel):
    """A generative model with a tractable (log-)density, trained by the ``likelihood`` recipe.

    Padded entries of ``x`` are zero; how the density treats them is the model's business (and
    must be documented by it). The recipe minimises ``-sum_b log p(x_b) / sum_b dims_b``.
    """

    @abstractmethod
    def log_prob(self, x: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        """Log-likelihood of each cloud, ``(B,)``, differentiable in the model's parameters."""

    def log_prob_dims(self, mask: Tensor) -> Tensor:
        """Number of dimensions each cloud's log-likelihood spans, ``(B,)``; the recipe reports and
        minimises the NLL per dimension. Default: 1 per cloud (the NLL per cloud)."""
        return torch.ones(mask.shape[0], device=mask.device)


class ObjectiveModel(GenerativeModel):
    """A model that computes its own training loss (trained by the ``objective`` recipe)."""

    @abstractmethod
    def training_losses(self, batch: Batch, step: int) -> dict[str, Tensor]:
        """Scalar loss terms of one batch; the recipe minimises their sum and logs each as ``loss/<name>``."""

    def after_step(self, batch: Batch, step: int) -> dict[str, Tensor | float]:
        """Called after each optimiser step (not after skipped ones); returns extra scalars to log."""
        return {}


class AutoregressiveModel(GenerativeModel):
    """A model of clouds as token sequences, trained by the ``autoregressive`` recipe.

    It usually draws its own multiplicities (where the stop token comes), so
    :attr:`GenerativeModel.draws_multiplicity` is True by default.
    """

    draws_multiplicity = True

    @abstractmethod
    def token_sequences(self, x: Tensor, mask: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        """Input tokens ``(B, L)`` (long, starting with the start token) and the target of each
        position ``(B, L)`` (the next token, the stop token after the last particle, then :data:`IGNORE`)."""

    @abstractmethod
    def next_token_logits(self, tokens: Tensor, cond: Tensor) -> Tensor:
        """Logits ``(B, L, V)`` of the token following each position (causal: position i sees tokens <= i)."""

    def next_token_logits_at(self, tokens: Tensor, cond: Tensor, positions: Tensor) -> Tensor:
        """Logits ``(K, V)`` at the ``K`` positions where the bool ``positions`` ``(B, L)`` is True, in
        row-major order: the positions with a target, all that the recipe's loss reads.

        This default computes every position and selects; a model may override it to skip work at the
        others (a GPT's output layer over a large vocabulary, at the padding after a short cloud).
        """
        return self.next_token_logits(tokens, cond)[positions]


class StagedModel(GenerativeModel):
    """A model trained stage by stage; each stage's recipe drives the part :meth:`part` returns.

    Parts are sub-modules of this model (their weights live in its state dict, once) and are
    themselves :class:`GenerativeModel` s of the kind their recipe needs, e.g. a
    :class:`LikelihoodModel` for a likelihood stage and an :class:`AdversarialModel` for an
    adversarial one. A part exposes as parameters only what its stage trains (a frozen upstream
    network is referenced, not registered).
    """

    @abstractmethod
    def part(self, stage: str) -> GenerativeModel:
        """The part trained in stage ``stage`` (a name from the model's ``ModelSpec.stages``)."""
