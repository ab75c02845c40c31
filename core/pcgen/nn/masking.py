"""Masking helpers for zero-padded point clouds.

Convention: ``mask`` is ``(B, N)`` bool with True for a real particle. Every helper here treats
padded entries as absent: whatever they hold (even NaN or inf) never reaches a result. Clouds
with no real particle at all are allowed and give finite, well-defined results.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _as_bool(mask: Tensor) -> Tensor:
    return mask if mask.dtype == torch.bool else mask != 0


def apply_mask(x: Tensor, mask: Tensor) -> Tensor:
    """``x`` ``(B, N, D)`` with padded rows set to exactly zero (NaN and inf included)."""
    return x.masked_fill(~_as_bool(mask).unsqueeze(-1), 0.0)


def masked_sum(x: Tensor, mask: Tensor) -> Tensor:
    """Sum over real particles: ``(B, N, D) -> (B, D)``; zero for an empty cloud."""
    return apply_mask(x, mask).sum(dim=1)


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over real particles: ``(B, N, D) -> (B, D)``; zero (not NaN) for an empty cloud."""
    count = _as_bool(mask).sum(dim=1, keepdim=True).clamp_min(1).to(x.dtype)
    return masked_sum(x, mask) / count


def multiplicity(mask: Tensor) -> Tensor:
    """Number of real particles per cloud, ``(B,)`` int64."""
    return _as_bool(mask).sum(dim=1)


def mask_from_multiplicity(n: Tensor, max_particles: int) -> Tensor:
    """Bool mask ``(B, max_particles)`` whose first ``n[b]`` entries are True.

    ``n`` is ``(B,)`` integer; values above ``max_particles`` give a full mask, values <= 0 an
    empty one.
    """
    slots = torch.arange(max_particles, device=n.device)
    return slots.unsqueeze(0) < n.reshape(-1, 1)


def attention_key_padding(mask: Tensor) -> Tensor:
    """Key padding mask in ``nn.MultiheadAttention``'s convention: ``(B, N)`` bool, True = ignore.

    This is the plain inversion; a cloud with no real particle gives an all-True row, for which
    the softmax is NaN. Use :func:`safe_key_padding` when such clouds may occur.
    """
    return ~_as_bool(mask)


def has_particles(mask: Tensor) -> Tensor:
    """``(B,)`` bool: whether each cloud has at least one real particle."""
    return _as_bool(mask).any(dim=1)


def safe_key_padding(mask: Tensor) -> tuple[Tensor, Tensor]:
    """Key padding (True = ignore) that never masks a whole row, plus the rows that were empty.

    Returns ``(key_padding, nonempty)``: ``key_padding`` is :func:`attention_key_padding` except
    that rows of empty clouds are all False (so a softmax over them is finite); ``nonempty`` is
    ``(B,)`` bool and the caller must discard (zero) the attention output where it is False.
    """
    mask = _as_bool(mask)
    nonempty = mask.any(dim=1)
    key_padding = ~mask & nonempty.unsqueeze(1)
    return key_padding, nonempty


__all__ = [
    "apply_mask",
    "attention_key_padding",
    "has_particles",
    "mask_from_multiplicity",
    "masked_mean",
    "masked_sum",
    "multiplicity",
    "safe_key_padding",
]
