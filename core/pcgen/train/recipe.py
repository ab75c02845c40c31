"""The recipe interface: how the core's loop drives the optimisation of a model."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch
from pydantic import BaseModel
from torch import Tensor, nn

from pcgen.data.preprocessing import FeatureScaler
from pcgen.models import Batch, GenerativeModel

__all__ = ["Batch", "Logs", "Recipe", "clip_gradients", "grad_norm", "host_values", "make_optimizer", "warmup_cosine"]


def warmup_cosine(step: int, progress: float, warmup_steps: int, min_fraction: float = 0.0, cycles: int = 1) -> float:
    """Learning-rate factor: linear warm-up over ``warmup_steps``, then cosine decay over ``progress`` in [0, 1].

    ``cycles`` > 1 restarts the cosine that many times (a "two-cycle cosine" has cycles=2).
    """
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    phase = (min(max(progress, 0.0), 1.0) * cycles) % 1.0 if progress < 1.0 else 1.0
    cosine = min_fraction + (1 - min_fraction) * 0.5 * (1 + math.cos(math.pi * phase))
    return warm * cosine


Logs = dict[str, Tensor | float]
"""What a training step returns: scalars to log, as 0-dim tensors (kept on the device; the loop reads
them to the host only when it writes them) or floats."""


def grad_norm(module: nn.Module) -> Tensor:
    """Total L2 norm of the gradients of a module's parameters, as a 0-dim tensor (0 when none).

    One fused computation (``torch.nn.utils.get_total_norm``: a multi-tensor norm kernel), no host
    synchronisation.
    """
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads, foreach=True)


def clip_gradients(module: nn.Module, max_norm: float | None) -> Tensor:
    """The gradients' total norm (:func:`grad_norm`), after scaling them to at most ``max_norm`` if given."""
    norm = grad_norm(module)
    if max_norm:
        params = [p for p in module.parameters() if p.grad is not None]
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm, foreach=True)
    return norm


def host_values(logs: Logs) -> dict[str, float]:
    """The values of ``logs`` as Python floats, with a single device-to-host copy for all tensors."""
    tensors = {k: v for k, v in logs.items() if isinstance(v, Tensor)}
    values = {k: float(v) for k, v in logs.items() if not isinstance(v, Tensor)}
    if tensors:
        stacked = torch.stack([t.detach().float().reshape(()) for t in tensors.values()]).tolist()
        values.update(zip(tensors, stacked, strict=True))
    return {k: values[k] for k in logs}


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
    def training_step(self, batch: Batch, step: int, progress: float) -> Logs:
        """Update the model on one batch; return scalars to log (losses, gradient norms), preferably as
        detached 0-dim tensors: reading a value to the host waits for the device, so the loop does it
        only every ``train.log_every`` steps."""

    def bind_data(self, feature_names: Sequence[str], scaler: FeatureScaler) -> None:
        """Told the data's feature names and scaler (model space -> physical units) before training, for
        recipes with losses on physical observables; raises ``ConfigError`` for settings the data cannot
        meet. Default: nothing to keep."""
        del feature_names, scaler

    def synchronise_gradients(self, module: nn.Module) -> None:
        """Average ``module``'s gradients over the ranks of a distributed run (nothing otherwise); a
        recipe calls it after each backward pass and before it clips or steps."""
        from pcgen.train.distributed import average_gradients

        average_gradients(module)

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
    """RMSprop, Adam or AdamW by name, with the fastest update of the same arithmetic: Adam and AdamW
    fused (one pass over each parameter for the whole update; on the CPU 4-10x faster than one
    operation at a time), RMSprop multi-tensor (``foreach``: one kernel per operation for all
    parameters). Parameters must all be on one device type that supports them (CPU, CUDA)."""
    params = [p for p in params if p.requires_grad]
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay, foreach=True)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=True)
    raise ValueError(f"unknown optimizer {name!r}; use 'rmsprop', 'adam' or 'adamw'")
