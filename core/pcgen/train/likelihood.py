"""The likelihood recipe: maximum-likelihood training of models with a tractable density.

Any model exposing ``log_prob(x, mask, cond) -> (B,)`` trains with it: a normalising flow over
whole jets, an autoregressive model over particles or tokens, a VAE's bound. The loss is the
negative log-likelihood per dimension, ``-sum_b log p(x_b) / sum_b dims_b``, where
:meth:`LikelihoodModel.log_prob_dims` says how many dimensions each cloud's density spans
(default 1: the NLL per cloud). Steps whose loss or gradient is not finite are skipped.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from pcgen.models import GenerativeModel
from pcgen.specs import RecipeSpec
from pcgen.train.recipe import Batch, Recipe, grad_norm, make_optimizer, warmup_cosine


class LikelihoodModel(GenerativeModel):
    """A generative model with a tractable (log-)density, trained by :class:`LikelihoodRecipe`.

    Tensors follow :class:`~pcgen.models.GenerativeModel`: ``x`` ``(B, N, F)`` in model space,
    ``mask`` ``(B, N)`` bool, ``cond`` ``(B, C)``. Padded entries of ``x`` are zero; how the
    density treats them is the model's business (and must be documented by it).
    """

    @abstractmethod
    def log_prob(self, x: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        """Log-likelihood of each cloud, ``(B,)``, differentiable in the model's parameters."""

    def log_prob_dims(self, mask: Tensor) -> Tensor:
        """Number of dimensions each cloud's log-likelihood spans, ``(B,)``; the recipe reports and
        minimises the NLL per dimension. Default: 1 per cloud (the NLL per cloud)."""
        return torch.ones(mask.shape[0], device=mask.device)


class LikelihoodConfig(BaseModel):
    """Settings of maximum-likelihood training; a model plugin supplies its paper's values as defaults."""

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
    max_nonfinite_steps: int = Field(
        5, ge=0, description="Skip steps with a non-finite loss or gradient; fail after this many in a row (0: never)."
    )


class LikelihoodRecipe(Recipe):
    """One optimiser over all of the model's trainable parameters; loss = NLL per dimension.

    Logs ``loss/nll`` (per dimension, the quantity minimised), ``nll/per_cloud`` and
    ``grad_norm/model``; a skipped (non-finite) step logs ``nonfinite_steps``.
    """

    model: LikelihoodModel
    config: LikelihoodConfig

    def __init__(self, model: LikelihoodModel, config: LikelihoodConfig) -> None:
        if not isinstance(model, LikelihoodModel):
            raise TypeError(
                f"the likelihood recipe needs a LikelihoodModel (with log_prob), got {type(model).__name__}"
            )
        super().__init__(model, config)
        c = config
        self.optimizers = {"model": make_optimizer(c.optimizer, model.parameters(), c.lr, c.betas, c.weight_decay)}
        self.base_lrs = {"model": c.lr}
        self.nonfinite_in_row = 0

    def training_step(self, batch: Batch, step: int, progress: float) -> dict[str, float]:
        c = self.config
        factor = warmup_cosine(step, progress if c.schedule == "cosine" else 0.0, c.warmup_steps,
                               c.min_lr_fraction, c.cosine_cycles)
        self.set_learning_rates(factor)
        log_prob = self.model.log_prob(batch.x, batch.mask, batch.cond)
        dims = self.model.log_prob_dims(batch.mask).to(log_prob)
        loss = -log_prob.sum() / dims.sum()
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = grad_norm(self.model)
        logs = {"loss/nll": loss.item(), "nll/per_cloud": -log_prob.detach().mean().item(), "grad_norm/model": norm}
        if not (math.isfinite(logs["loss/nll"]) and math.isfinite(norm)):
            self._skip(logs)
            return logs
        self.nonfinite_in_row = 0
        if c.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        opt.step()
        return logs

    def _skip(self, logs: dict[str, float]) -> None:
        """Drop a step with a non-finite loss or gradient; fail when too many come in a row."""
        self.optimizers["model"].zero_grad(set_to_none=True)
        self.nonfinite_in_row += 1
        logs["nonfinite_steps"] = float(self.nonfinite_in_row)
        limit = self.config.max_nonfinite_steps
        if limit and self.nonfinite_in_row >= limit:
            raise FloatingPointError(
                f"{self.nonfinite_in_row} training steps in a row had a non-finite likelihood or gradient; "
                "lower the learning rate or set a grad_clip"
            )

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "nonfinite_in_row": self.nonfinite_in_row}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.nonfinite_in_row = int(state.get("nonfinite_in_row", 0))


LIKELIHOOD = RecipeSpec(
    name="likelihood",
    recipe_class=LikelihoodRecipe,
    config_class=LikelihoodConfig,
    description="Maximum likelihood (flows, autoregressive models): NLL per dimension; Adam/AdamW/RMSprop; "
    "warm-up + cosine; gradient clipping; non-finite steps skipped.",
)
