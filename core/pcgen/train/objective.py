"""The objective recipe: one optimiser minimising the loss terms a model computes itself.

Autoencoders (a VQ-VAE tokenizer), denoising diffusion models and anything else whose training
loss is the model's own business train with it: the model returns its loss terms from
:meth:`ObjectiveModel.training_losses`, the recipe minimises their sum with warm-up + cosine,
optional gradient clipping and skipping of non-finite steps, and then calls
:meth:`ObjectiveModel.after_step` (for codebook maintenance, EMA updates, ...). The likelihood and
autoregressive recipes are this recipe with a fixed loss.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from pcgen.models import GenerativeModel, ObjectiveModel
from pcgen.specs import RecipeSpec
from pcgen.train.distributed import all_ranks_finite, broadcast_module
from pcgen.train.recipe import (
    Batch,
    Logs,
    Recipe,
    clip_gradients,
    grad_norm,
    host_values,
    make_optimizer,
    warmup_cosine,
)

__all__ = ["OBJECTIVE", "ObjectiveModel", "ObjectiveRecipe", "OptimiserConfig"]


class OptimiserConfig(BaseModel):
    """Settings of single-optimiser training; a model plugin supplies its paper's values as defaults."""

    model_config = ConfigDict(extra="forbid")

    optimizer: Literal["adam", "adamw", "rmsprop"] = Field("adamw", description="Optimiser.")
    lr: float = Field(1e-3, gt=0, description="Peak learning rate.")
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam/AdamW betas.")
    weight_decay: float = Field(0.0, ge=0, description="Weight decay (decoupled for AdamW).")
    warmup_steps: int = Field(100, ge=0, description="Linear warm-up steps before the cosine decay.")
    schedule: Literal["cosine", "constant"] = Field("cosine", description="Decay after warm-up.")
    cosine_cycles: int = Field(1, ge=1, description="Number of cosine cycles over the run (or stage).")
    min_lr_fraction: float = Field(0.0, ge=0, le=1, description="Floor of the cosine, as a fraction of the peak.")
    grad_clip: float | None = Field(None, gt=0, description="Clip the gradient norm to this value.")


class ObjectiveRecipe(Recipe):
    """One optimiser over the model's trainable parameters; loss = the sum of :meth:`losses`.

    Logs ``loss/<term>`` for each term, ``loss/total`` when there are several, whatever
    :meth:`extra_logs` adds, and ``grad_norm/model``. A step with a non-finite loss or gradient
    changes nothing (no update, no :meth:`after_step`); whether the run then stops, or how many such
    steps in a row it allows, is the trainer's business (``train.on_nonfinite``,
    ``train.max_nonfinite_in_row``, see :mod:`pcgen.runtime.nonfinite`).
    """

    model_class: type[GenerativeModel] = ObjectiveModel
    """The model interface this recipe needs (checked on construction)."""

    def __init__(self, model: GenerativeModel, config: OptimiserConfig) -> None:
        if not isinstance(model, self.model_class):
            raise TypeError(
                f"the {type(self).__name__} needs a {self.model_class.__name__}, got {type(model).__name__}"
            )
        super().__init__(model, config)
        c = config
        self.optimizers = {"model": make_optimizer(c.optimizer, model.parameters(), c.lr, c.betas, c.weight_decay)}
        self.base_lrs = {"model": c.lr}

    def losses(self, batch: Batch, step: int) -> tuple[dict[str, Tensor], Logs]:
        """The loss terms of one batch and extra scalars to log (default: the model's own terms)."""
        return self.model.training_losses(batch, step), {}  # type: ignore[attr-defined]

    def training_step(self, batch: Batch, step: int, progress: float) -> Logs:
        c = self.config
        factor = warmup_cosine(step, progress if c.schedule == "cosine" else 0.0, c.warmup_steps,
                               c.min_lr_fraction, c.cosine_cycles)
        self.set_learning_rates(factor)
        terms, logs = self.losses(batch, step)
        loss = torch.stack(list(terms.values())).sum()
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        self.synchronise_gradients(self.model)
        norm = grad_norm(self.model)
        logs.update({f"loss/{name}": term.detach() for name, term in terms.items()})
        if len(terms) > 1:
            logs["loss/total"] = loss.detach()
        logs["grad_norm/model"] = norm
        if not all_ranks_finite(loss.detach() + norm.to(loss.device)):  # the step's one host synchronisation
            opt.zero_grad(set_to_none=True)  # dropped: the trainer's guard counts it, or stops the run
            return logs
        if c.grad_clip:
            clip_gradients(self.model, c.grad_clip)
        opt.step()
        logs.update(self.after_step(batch, step))
        if self._changes_weights_itself:
            broadcast_module(self.model)  # e.g. codebook maintenance from this rank's data: rank 0's wins
        return logs

    @property
    def _changes_weights_itself(self) -> bool:
        """Whether the model changes its weights or buffers outside the optimiser (it overrides
        :meth:`ObjectiveModel.after_step`); in a distributed run every rank then takes rank 0's."""
        own = getattr(type(self.model), "after_step", None)
        return own is not None and own is not ObjectiveModel.after_step

    @torch.no_grad()
    def validation_losses(self, batch: Batch, step: int) -> dict[str, float]:
        """:meth:`losses` of a held-out batch in eval mode, and what they log (e.g. token accuracy)."""
        was_training = self.model.training
        self.model.eval()
        try:
            terms, logs = self.losses(batch, step)
        finally:
            self.model.train(was_training)
        return host_values({**terms, **logs})

    def after_step(self, batch: Batch, step: int) -> Logs:
        """Work after an optimiser step (default: the model's :meth:`ObjectiveModel.after_step`)."""
        hook = getattr(self.model, "after_step", None)
        return hook(batch, step) if hook is not None else {}


OBJECTIVE = RecipeSpec(
    name="objective",
    recipe_class=ObjectiveRecipe,
    config_class=OptimiserConfig,
    description="Minimises the loss terms the model computes itself (autoencoders, VQ-VAEs, denoisers); "
    "one optimiser, warm-up + cosine, gradient clipping, non-finite steps dropped.",
)
