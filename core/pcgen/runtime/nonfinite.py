"""Non-finite values (NaN, infinity) in training and sampling: found at once, named, never saved.

:class:`NonFiniteGuard` watches every optimiser of a recipe, whatever the recipe: before an
optimiser steps it checks the gradients and, if one is non-finite, drops the update (the gradients
are cleared, so weights and optimiser state stay as they were); after a step it checks the weights.
After each training step the trainer hands it the logged values, and it checks the losses and
gradient norms among them. With ``train.on_nonfinite = "stop"`` the first such step ends the run;
with ``"skip"`` the step's updates are dropped and counted, and ``train.max_nonfinite_in_row``
such steps in a row end it. A weight that became non-finite cannot be undone and always ends it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

MONITORED_LOGS = ("loss/", "grad_norm/")
"""Logged values that must be finite (prefixes of their tags)."""


class NonFiniteError(FloatingPointError):
    """A NaN or an infinity in a loss, gradient, weight or generated cloud; the message names where."""


class TooManyNonFiniteSteps(NonFiniteError):
    """Skip mode: ``train.max_nonfinite_in_row`` steps in a row had non-finite values."""


def all_finite(tensors: Iterable[Tensor]) -> bool:
    """Whether every element of every tensor is finite (one fused reduction, one device sync)."""
    tensors = [t.detach() for t in tensors if t.is_floating_point() or t.is_complex()]
    if not tensors:
        return True
    largest = torch.nn.utils.get_total_norm(tensors, norm_type=math.inf, foreach=None)
    return bool(torch.isfinite(largest))


def _value(value: Any) -> float:
    return float(value.detach()) if isinstance(value, Tensor) else float(value)


def nonfinite_logs(logs: Mapping[str, Any]) -> dict[str, float]:
    """The losses and gradient norms in ``logs`` that are NaN or infinite."""
    values = {k: _value(v) for k, v in logs.items() if k.startswith(MONITORED_LOGS)}
    return {k: v for k, v in values.items() if not math.isfinite(v)}


def nonfinite_tensors(state: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point tensors in a state dict that hold a NaN or an infinity."""
    return [k for k, v in state.items() if isinstance(v, Tensor) and v.is_floating_point() and not all_finite([v])]


class NonFiniteGuard:
    """Checks one recipe's gradients, weights and logged losses at every step (see the module docs)."""

    def __init__(self, optimizers: Mapping[str, torch.optim.Optimizer], mode: str = "stop", max_in_row: int = 5):
        if mode not in ("stop", "skip"):
            raise ValueError(f"on_nonfinite must be 'stop' or 'skip', got {mode!r}")
        self.mode, self.max_in_row = mode, max_in_row
        self.step = 0
        """The step being trained (1-based, as logged), for messages."""
        self.in_row = 0
        self.skipped = 0
        """Steps whose updates were dropped because of a non-finite value."""
        self._bad_gradients: list[str] = []
        self._handles = []
        for name, opt in optimizers.items():
            self._handles.append(opt.register_step_pre_hook(self._before_update(name)))
            self._handles.append(opt.register_step_post_hook(self._after_update(name)))

    @staticmethod
    def _params(opt: torch.optim.Optimizer) -> list[Tensor]:
        return [p for group in opt.param_groups for p in group["params"]]

    def _before_update(self, name: str) -> Any:
        def hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            params = [p for p in self._params(opt) if p.grad is not None]
            if params and not all_finite(p.grad for p in params):
                self._bad_gradients.append(name)
                for p in params:
                    p.grad = None  # an optimiser skips parameters without gradients: the update is dropped

        return hook

    def _after_update(self, name: str) -> Any:
        def hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            if not all_finite(self._params(opt)):
                raise NonFiniteError(
                    f"step {self.step}: a weight trained by optimiser '{name}' became non-finite in its update "
                    "(the learning rate is probably far too high)"
                )

        return hook

    def check_step(self, logs: Mapping[str, Any]) -> bool:
        """After a training step: raise :class:`NonFiniteError` or, in skip mode, count the step.

        Returns whether the step had a non-finite value (its bad updates were dropped).
        """
        bad = [f"{tag} ({value})" for tag, value in nonfinite_logs(logs).items()]
        bad += [f"gradient of optimiser '{name}'" for name in dict.fromkeys(self._bad_gradients)]
        self._bad_gradients.clear()
        if not bad:
            self.in_row = 0
            return False
        what = "non-finite " + ", ".join(bad)
        if self.mode == "stop":
            raise NonFiniteError(f"step {self.step}: {what}")
        self.in_row += 1
        self.skipped += 1
        if self.max_in_row and self.in_row >= self.max_in_row:
            raise TooManyNonFiniteSteps(
                f"step {self.step}: {self.in_row} steps in a row had non-finite values "
                f"(train.max_nonfinite_in_row = {self.max_in_row}); the last: {what}"
            )
        return True

    def close(self) -> None:
        """Remove the optimiser hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def check_finite_clouds(points: np.ndarray, mask: np.ndarray, what: str, hint: str = "") -> None:
    """Raise :class:`NonFiniteError` when a real (unmasked) particle of any cloud is NaN or infinite."""
    finite = np.isfinite(points).all(axis=-1) | ~mask.astype(bool)
    bad = int((~finite.all(axis=-1)).sum())
    if bad:
        raise NonFiniteError(
            f"{what}: {bad} of {len(points)} clouds hold non-finite values (NaN or infinity)" + (f"; {hint}" if hint else "")
        )
