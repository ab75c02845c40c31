"""Accelerator settings of a run: numeric precision, ``torch.compile`` and TF32.

``train.precision = "bf16-mixed"`` runs every training step (and sampling, if asked) under
``torch.autocast`` with bfloat16: matrix products and attention in bf16, reductions, losses,
weights, gradients and optimiser states in fp32 (bf16 has fp32's range, so no loss scaling is
needed). ``"32"`` is plain fp32. On CUDA, fp32 matrix products may use TF32 tensor cores
(``train.tf32``, default on). (Adam and AdamW use their fused update on every device:
:func:`pcgen.train.recipe.make_optimizer`.)

``train.compile = true`` compiles each top-level sub-network of the model in place
(``nn.Module.compile``: the state dict and checkpoints are unchanged). A recipe calls sub-networks
directly (e.g. a GAN's generator and critic), so these are what gets compiled. A critic that
takes a gradient penalty is left uncompiled: compiled graphs have no double backward.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from pcgen.runtime.cpu_memory import keep_freed_memory

Precision = Literal["32", "bf16-mixed"]
PRECISIONS: tuple[str, ...] = ("32", "bf16-mixed")

COMPILE_BACKEND = "inductor"
"""Backend of ``torch.compile`` (tests set a cheaper one)."""


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """The autocast context of ``precision`` on ``device`` (a no-op context for ``"32"``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def enable_tf32(device: torch.device, enabled: bool = True) -> None:
    """Let fp32 matrix products and convolutions use TF32 on CUDA (nothing on other devices)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


def compile_submodules(model: nn.Module, skip: tuple[str, ...] = ()) -> list[str]:
    """Compile in place the outermost networks of ``model`` that have a ``forward`` of their own.

    A module without a ``forward`` of its own (a :class:`~pcgen.models.GenerativeModel`: a container
    whose methods call its networks) is visited instead; children named in ``skip`` are left alone.
    Returns the qualified names of the compiled modules.
    """
    compiled: list[str] = []

    def visit(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            if name in skip or not any(True for _ in child.parameters()):
                continue
            qualified = f"{prefix}{name}"
            if type(child).forward is nn.Module.forward:
                visit(f"{qualified}.", child)
            else:
                child.compile(backend=COMPILE_BACKEND)
                compiled.append(qualified)

    visit("", model)
    return compiled


def uses_gradient_penalty(recipe: Any) -> bool:
    """Whether a recipe (or any stage of a staged one) differentiates its critic twice (WGAN-GP or R1), as its
    adversarial config says (``AdversarialConfig.differentiates_critic_twice``)."""
    recipes = [s.recipe for s in getattr(recipe, "stages", [])] or [recipe]
    return any(getattr(getattr(r, "config", None), "differentiates_critic_twice", False) for r in recipes)


@dataclass
class Accelerator:
    """The precision, compilation and device settings of one run, applied to its recipe and steps."""

    device: torch.device
    precision: str = "32"
    compile: bool = False
    tf32: bool = True

    @classmethod
    def from_config(cls, train: Any, device: torch.device) -> Accelerator:
        """From a ``TrainConfig`` (fields ``precision``, ``compile``, ``tf32``)."""
        return cls(device, getattr(train, "precision", "32"), getattr(train, "compile", False),
                   getattr(train, "tf32", True))

    def prepare(self, recipe: Any) -> None:
        """Set up TF32 and compilation for a recipe whose model is on :attr:`device` (on a CPU, freed
        memory is kept for reuse: :func:`pcgen.runtime.cpu_memory.keep_freed_memory`)."""
        enable_tf32(self.device, self.tf32)
        if self.device.type == "cpu":
            keep_freed_memory()
        if self.compile:
            skip = ("critic",) if uses_gradient_penalty(recipe) else ()
            compile_submodules(recipe.model, skip)

    @contextlib.contextmanager
    def step_context(self) -> Iterator[None]:
        """Where each training step runs: autocast for mixed precision."""
        with autocast(self.device, self.precision):
            yield


__all__ = ["PRECISIONS", "Accelerator", "Precision", "autocast", "compile_submodules", "enable_tf32"]
