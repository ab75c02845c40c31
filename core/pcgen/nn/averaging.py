"""Exponential moving averages of weights (EMA), for sampling from a smoothed model.

A GAN's generator, or a flow-matching velocity field, jumps around between optimiser steps; sampling
from an average of its recent weights (Yazıcı et al., arXiv:1806.04498; the EPiC-FM reference) gives
samples that change smoothly from one evaluation to the next. :class:`ParameterAverage` keeps the
average of one module's parameters as buffers (so it is part of the owner's state dict, and of
checkpoints and exported weights) and evaluates the module with them through
:func:`torch.func.functional_call`, without a second copy of the module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn


def warmed_up_decay(decay: float, updates: int) -> float:
    """The decay of the next update after ``updates`` of them: ``min(decay, (1 + k) / (10 + k))``.

    Early on the average follows the weights closely, so that a short run samples from trained
    weights rather than from an average dominated by the initialisation.
    """
    return min(decay, (1 + updates) / (10 + updates))


@torch.no_grad()
def lerp_towards(averages: Iterable[Tensor], live: Iterable[Tensor], decay: float) -> None:
    """Move each average towards its live tensor: ``avg = decay * avg + (1 - decay) * live``."""
    for avg, value in zip(averages, live, strict=True):
        avg.lerp_(value.detach().to(avg.dtype), 1.0 - decay)


class ParameterAverage(nn.Module):
    """An exponential moving average of the parameters of ``module``, held as buffers.

    The buffers start as copies of the parameters; :meth:`update` moves them towards the current
    parameters; :meth:`forward` runs ``module`` with the averaged parameters (its own buffers as they
    are). Before the first update the average is not used: :attr:`active` is False and callers use
    the live module. Only the parameters ``module`` registers are averaged: a network it merely
    references (a frozen upstream stage) keeps its own weights.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.names = [name for name, _ in module.named_parameters()]
        for name, param in module.named_parameters():
            self.register_buffer(self.buffer_name(name), param.detach().clone())
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @staticmethod
    def buffer_name(parameter: str) -> str:
        """The buffer that averages ``parameter`` (buffer names cannot contain dots)."""
        return parameter.replace(".", "__")

    @property
    def active(self) -> bool:
        """Whether the average has been updated at least once (and so should be sampled from)."""
        return bool(self.updates > 0)

    def averages(self) -> dict[str, Tensor]:
        """The averaged value of every parameter, by the parameter's name in the module."""
        return {name: getattr(self, self.buffer_name(name)) for name in self.names}

    @torch.no_grad()
    def update(self, module: nn.Module, decay: float) -> float:
        """One EMA step towards ``module``'s parameters with the warmed-up ``decay``; returns the decay used."""
        used = warmed_up_decay(decay, int(self.updates))
        lerp_towards(self.averages().values(), (p for _, p in module.named_parameters()), used)
        self.updates += 1
        return used

    @torch.no_grad()
    def reset(self, module: nn.Module) -> None:
        """Start again from ``module``'s current parameters, with no update counted."""
        for avg, (_, param) in zip(self.averages().values(), module.named_parameters(), strict=True):
            avg.copy_(param)
        self.updates.zero_()

    def forward(self, module: nn.Module, *args: Any, **kwargs: Any) -> Any:
        """``module(*args, **kwargs)`` with the averaged parameters."""
        return torch.func.functional_call(module, self.averages(), args, kwargs, strict=False)
