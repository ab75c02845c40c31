"""Generator inputs shared by models: per-particle plus global noise, and checked conditions."""

from __future__ import annotations

import torch
from torch import Tensor


def check_condition(cond: Tensor | None, cond_dim: int) -> Tensor:
    """``cond`` if it is ``(B, cond_dim)``, else a ``ValueError`` naming the shape received."""
    if cond is None or cond.ndim != 2 or cond.shape[1] != cond_dim:
        shape = None if cond is None else tuple(cond.shape)
        raise ValueError(f"cond must be (B, {cond_dim}), got {shape}")
    return cond


def particle_and_global_noise(mask: Tensor, particle_dim: int, global_dim: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Standard-normal ``(B, N, particle_dim)`` and ``(B, global_dim)`` noise for clouds shaped like ``mask``,

    from torch's (seeded) global RNG, on the device and in the dtype of ``like`` (e.g. a weight).
    """
    batch, num_particles = mask.shape
    particle = torch.randn(batch, num_particles, particle_dim, device=like.device, dtype=like.dtype)
    return particle, torch.randn(batch, global_dim, device=like.device, dtype=like.dtype)
