"""Adversarial losses on raw critic scores, with masked gradient penalties (WGAN-GP, R1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.attention import SDPBackend, sdpa_kernel

LossName = Literal["ls", "vanilla", "wgan-gp"]


def critic_loss(name: LossName, real: Tensor, fake: Tensor) -> Tensor:
    """Loss the critic minimises, from its scores on real and generated clouds."""
    if name == "ls":
        return F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake))
    if name == "vanilla":
        return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake)
        )
    if name == "wgan-gp":
        return fake.mean() - real.mean()
    raise ValueError(f"unknown adversarial loss {name!r}; use 'ls', 'vanilla' or 'wgan-gp'")


def generator_loss(name: LossName, fake: Tensor) -> Tensor:
    """Loss the generator minimises (non-saturating for the vanilla GAN)."""
    if name == "ls":
        return F.mse_loss(fake, torch.ones_like(fake))
    if name == "vanilla":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if name == "wgan-gp":
        return -fake.mean()
    raise ValueError(f"unknown adversarial loss {name!r}; use 'ls', 'vanilla' or 'wgan-gp'")


def _masked_input_gradient(critic: Callable[[Tensor], Tensor], points: Tensor, mask: Tensor) -> Tensor:
    """Gradient of the summed critic scores with respect to ``points`` (kept in the graph), zero at padding."""
    points = points.detach().requires_grad_(True)
    # The penalties differentiate twice; fused attention kernels have no double backward.
    with sdpa_kernel(SDPBackend.MATH):
        scores = critic(points)
    (grad,) = torch.autograd.grad(scores.sum(), points, create_graph=True)
    return grad * mask.unsqueeze(-1).to(grad.dtype)


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, mask: Tensor) -> Tensor:
    """WGAN-GP penalty (||grad||-1)^2 on per-cloud interpolates; padded particles carry no gradient."""
    alpha = torch.rand(real.shape[0], 1, 1, device=real.device, dtype=real.dtype)
    grad = _masked_input_gradient(critic, alpha * real + (1 - alpha) * fake, mask)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def r1_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, mask: Tensor) -> Tensor:
    """Zero-centred R1 penalty ||grad||^2 on real clouds (Mescheder et al. 2018, arXiv:1801.04406):
    the critic is pushed to be flat on the data, which damps the oscillation of the adversarial game;
    padded particles carry no gradient."""
    grad = _masked_input_gradient(critic, real, mask)
    return grad.flatten(1).pow(2).sum(dim=1).mean()
