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
    levels = 1 << bits
    threshold = min(round(p * levels), levels - 1)
    n = x.numel()
    if bits > 7:  # four 15-bit uniforms per 64-bit word, in int16 (half the memory traffic of int32)
        words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_()
        uniform = words.view(torch.int16)[:n].view(x.shape) & (levels - 1)
        keep = (((threshold - 1) - uniform) >> 15).to(torch.int32)  # -1 where uniform >= threshold
    else:  # 31 // bits uniforms per 32-bit half word (the top bit of every other half is 0: unused)
        per_int = 31 // bits
        words = torch.empty((n + 2 * per_int - 1) // (2 * per_int), dtype=torch.int64, device=x.device).random_()
        shifts = torch.arange(0, per_int * bits, bits, dtype=torch.int32, device=x.device)
        uniform = ((words.view(torch.int32).unsqueeze(-1) >> shifts) & (levels - 1)).view(-1)[:n].view(x.shape)
        keep = -uniform if bits == 1 else ((threshold - 1) - uniform) >> 31  # p = 1/2: the bit itself
    scale = 1.0 / (1.0 - p)
    if x.dtype == torch.float32:  # the mask's float bits straight from the integers
        return (keep & int(torch.tensor(scale, dtype=torch.float32).view(torch.int32))).view(torch.float32)
    return keep.to(x.dtype) * -scale


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
