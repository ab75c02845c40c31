"""Embeddings of a continuous time ``t`` in [0, 1] for flow-matching and diffusion models."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def sinusoidal_time_embedding(t: Tensor, frequencies: int, max_frequency: float = 100.0) -> Tensor:
    """``(B,)`` or ``(B, 1)`` times -> ``(B, 2 * frequencies)``: ``cos`` and ``sin`` of ``pi * f_k * t``.

    The ``f_k`` run geometrically from 1 to ``max_frequency``, so both the coarse position in
    [0, 1] and fine differences near either end are resolved. (EPiC-FM's reference encodes time with
    cosines alone at frequencies ``exp(k)``, k = 0..31, most of which vary faster than any step of t.)
    """
    if frequencies < 1:
        raise ValueError(f"frequencies must be >= 1, got {frequencies}")
    t = t.reshape(-1, 1)
    scale = torch.exp(torch.linspace(0.0, math.log(max_frequency), frequencies, device=t.device, dtype=t.dtype))
    angles = math.pi * t * scale
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


__all__ = ["sinusoidal_time_embedding"]
