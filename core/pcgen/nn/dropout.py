"""Dropout that is fast on the CPU.

``nn.Dropout`` draws its mask with ``bernoulli_``, which on the CPU generates one random number
at a time: in iGAPT's critic it was 30 % of a training step, and ``rand_like`` (one 32-bit draw
per value) is still 2-3x slower than what follows. :func:`dropout` draws 64-bit random words from
torch's generator (so ``torch.manual_seed`` fixes it) and cuts them into ``b``-bit uniform integers
``r``, ``b`` the fewest bits that hold ``p`` exactly (1 for p = 0.5, 2 for 0.25, ...; at most 15);
a value is kept when ``r >= p 2^b``, in vectorised integer arithmetic. Each value is therefore kept
with probability ``1 - p'`` where ``p' = round(p 2^b) / 2^b`` is ``p`` itself or, for a ``p`` such as
0.2, differs from it by at most 1.5e-5; kept values are scaled by ``1 / (1 - p)`` as in
``nn.Dropout``. On other devices it is ``torch.nn.functional.dropout`` (a fused kernel there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_MAX_BITS = 15


def _check(p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")


def _bits_for(p: float) -> int:
    """The fewest bits ``b`` (at most 15) for which ``p 2^b`` is a whole number."""
    return next((b for b in range(1, _MAX_BITS) if (p * 2**b).is_integer()), _MAX_BITS)


def _keep_scale(x: Tensor, p: float) -> Tensor:
    """``1 / (1 - p)`` where a value of ``x`` is kept, 0 where it is dropped (``x``'s shape and dtype)."""
    bits = _bits_for(p)
    levels, per_int = 1 << bits, 31 // bits  # the top bit of every other 32-bit half is 0: use 31
    threshold = min(round(p * levels), levels - 1)
    n = x.numel()
    words = torch.empty((n + 2 * per_int - 1) // (2 * per_int), dtype=torch.int64, device=x.device).random_()
    shifts = torch.arange(0, per_int * bits, bits, dtype=torch.int32, device=x.device)
    uniform = (words.view(torch.int32).unsqueeze(-1) >> shifts) & (levels - 1)
    keep = ((threshold - 1) - uniform.view(-1)[:n].view(x.shape)) >> 31  # -1 where uniform >= threshold
    return keep.to(x.dtype) * (-1.0 / (1.0 - p))


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Zero each entry of ``x`` with probability ``p`` and scale the rest by ``1 / (1 - p)`` (when training)."""
    if not training or p == 0.0:
        return x
    _check(p)
    if x.device.type != "cpu":
        return F.dropout(x, p, training=True)
    return x * _keep_scale(x, p)


class Dropout(nn.Module):
    """Drop-in replacement of ``nn.Dropout`` (no parameters, same state dict) using :func:`dropout`."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        _check(p)
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


__all__ = ["Dropout", "dropout"]
