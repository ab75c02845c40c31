"""The recipe interface: how the core's loop drives the optimisation of a model."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import torch
from pydantic import BaseModel
from torch import nn

from pcgen.models import Batch, GenerativeModel

__all__ = ["Batch", "Recipe", "grad_norm", "make_optimizer", "warmup_cosine"]


def warmup_cosine(step: int, progress: float, warmup_steps: int, min_fraction: float = 0.0, cycles: int = 1) -> float:
    """Learning-rate factor: linear warm-up over ``warmup_steps``, then cosine decay over ``progress`` in [0, 1].

    ``cycles`` > 1 restarts the cosine that many times (a "two-cycle cosine" has cycles=2).
    """
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    phase = (min(max(progress, 0.0), 1.0) * cycles) % 1.0 if progress < 1.0 else 1.0
    cosine = min_fraction + (1 - min_fraction) * 0.5 * (1 + math.cos(math.pi * phase))
    return warm * cosine


def grad_norm(module: nn.Module) -> float:
    """Total L2 norm of the gradients of a module's parameters (0 when none)."""
    norms = [p.grad.detach().norm() for p in module.parameters() if p.grad is not None]
    return float(torch.stack(norms).norm()) if norms else 0.0


class Recipe(ABC):
    """Owns the optimisers of a model and performs one training step at a time.

    The loop calls :meth:`training_step` with the step index and the fraction of the run done
    (for schedules), logs what it returns, and checkpoints :meth:`state_dict`. Multi-stage
    recipes report their current stage through :attr:`stage`.
    """

    def __init__(self, model: GenerativeModel, config: BaseModel) -> None:
        self.model = model
        self.config = config
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.base_lrs: dict[str, float] = {}

    @property
    def stage(self) -> str:
        """Name of the current training stage (single-stage recipes: 'train')."""
        return "train"

    @property
    def in_final_stage(self) -> bool:
        """Whether the model is now trained in its last stage, i.e. samples as the finished model will
        (single-stage recipes: always). Only then may an evaluation make the best checkpoint."""
        return True

    @abstractmethod
    def training_step(self, batch: Batch, step: int, progress: float) -> dict[str, float]:
        """Update the model on one batch; return scalars to log (losses, gradient norms)."""

    def validation_losses(self, batch: Batch, step: int) -> dict[str, float]:
        """The training loss terms on held-out clouds, nothing updated (default: none, e.g. a GAN's
        losses say little about overfitting)."""
        return {}

    def set_learning_rates(self, factor: float) -> None:
        """Set every optimiser's learning rate to its base value times ``factor``."""
        for name, opt in self.optimizers.items():
            for group in opt.param_groups:
                group["lr"] = self.base_lrs[name] * factor

    def learning_rates(self) -> dict[str, float]:
        return {name: opt.param_groups[0]["lr"] for name, opt in self.optimizers.items()}

    def state_dict(self) -> dict[str, Any]:
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])


def make_optimizer(
    name: str, params: Any, lr: float, betas: tuple[float, float], weight_decay: float
) -> torch.optim.Optimizer:
    """RMSprop, Adam or AdamW by name."""
    params = [p for p in params if p.requires_grad]
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; use 'rmsprop', 'adam' or 'adamw'")
