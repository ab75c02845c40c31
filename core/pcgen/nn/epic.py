"""EPiC blocks: equivariant point-cloud layers with a global vector (Buhmann, Kasieczka, Thaler,
arXiv:2301.08128), the architecture of EPiC-GAN and of the EPiC flow-matching velocity network.

A cloud is ``x`` ``(B, N, hidden)`` with ``mask`` ``(B, N)`` bool (True = real point) and a global
vector ``g`` ``(B, global_dim)``. An :class:`EPiCLayer` first updates ``g`` from the masked mean
and the (scaled) masked sum of the points and from ``g`` itself, then updates every point from
itself and the new ``g``; both updates are two-layer MLPs with a residual connection. Points
interact only through the pooled global vector, so the cost is ``O(N)``.

An optional per-cloud *context* ``(B, C)`` (a condition such as n / N, a time embedding, or both)
is concatenated to the input of every linear layer, global and per point, as in EPiC-FM.

Guarantees, as in :mod:`pcgen.nn.attention`: padded entries (even NaN or inf) never reach an
output or a gradient; padded outputs are exactly zero; a cloud with no real point gives finite
outputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pcgen.nn.dropout import Dropout
from pcgen.nn.masking import apply_mask, masked_sum, mean_of_sum


def _linear(in_dim: int, out_dim: int, weight_norm: bool) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim)
    return nn.utils.parametrizations.weight_norm(layer) if weight_norm else layer


def _cloud_inputs(*parts: Tensor | None) -> Tensor | None:
    """The per-cloud inputs ``(B, *)`` of a linear layer side by side (None when there are none)."""
    present = [p for p in parts if p is not None]
    return torch.cat(present, dim=-1) if present else None


def _linear_of(layer: nn.Linear, h: Tensor, per_cloud: Tensor | None) -> Tensor:
    """``layer(cat([h, per_cloud]))``, with ``per_cloud`` ``(B, C)`` repeated for every point of ``h``
    ``(B, N, D)`` (or beside ``h`` ``(B, D)``), computed without building that concatenation.

    The columns of the weight that see the per-cloud inputs are applied once per cloud and
    broadcast over the points; only the per-point columns cost a matrix product over the points.
    The same weights and the same result as the concatenated form (to rounding), fewer operations
    and no copy of the point tensor.
    """
    if per_cloud is None:
        return layer(h)
    weight, width = layer.weight, h.shape[-1]
    cloud_term = F.linear(per_cloud, weight[:, width:], layer.bias)
    return F.linear(h, weight[:, :width]) + (cloud_term.unsqueeze(1) if h.ndim == 3 else cloud_term)


class EPiCPooling(nn.Module):
    """The pooled summary of a cloud: ``cat(masked mean, sum_scale * masked sum)``, ``(B, 2 * dim)``.

    The sum carries the multiplicity, scaled down (reference: 1e-2) so that it stays of order one.
    """

    def __init__(self, sum_scale: float = 1e-2) -> None:
        super().__init__()
        self.sum_scale = sum_scale

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        total = masked_sum(x, mask)
        return torch.cat([mean_of_sum(total, mask), self.sum_scale * total], dim=-1)


class EPiCLayer(nn.Module):
    """One EPiC layer: global update from pooled points, then point update from the global vector.

    ``forward(x (B, N, hidden), g (B, global_dim), mask (B, N), context (B, context_dim) | None)``
    returns the new ``(x, g)``; padded rows of ``x`` are zero.
    """

    def __init__(
        self,
        hidden: int,
        global_dim: int,
        context_dim: int = 0,
        sum_scale: float = 1e-2,
        negative_slope: float = 0.01,
        weight_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.context_dim = context_dim
        self.pool = EPiCPooling(sum_scale)
        self.global1 = _linear(2 * hidden + global_dim + context_dim, hidden, weight_norm)
        self.global2 = _linear(hidden + context_dim, global_dim, weight_norm)
        self.local1 = _linear(hidden + global_dim + context_dim, hidden, weight_norm)
        self.local2 = _linear(hidden + context_dim, hidden, weight_norm)
        self.negative_slope = negative_slope
        self.dropout = Dropout(dropout) if dropout > 0 else nn.Identity()

    def _act(self, h: Tensor) -> Tensor:
        return F.leaky_relu(h, self.negative_slope)

    def forward(self, x: Tensor, g: Tensor, mask: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x = apply_mask(x, mask)
        h = self._act(_linear_of(self.global1, torch.cat([self.pool(x, mask), g], dim=-1), context))
        g = self.dropout(self._act(_linear_of(self.global2, h, context) + g))
        h = self._act(_linear_of(self.local1, x, _cloud_inputs(g, context)))
        x = self.dropout(self._act(_linear_of(self.local2, h, context) + x))
        return apply_mask(x, mask), g


class EPiCNetwork(nn.Module):
    """Point embedding, a global vector, ``layers`` EPiC layers and a point-wise output.

    ``forward(x (B, N, in_dim), mask, context=None, global_input=None)`` returns
    ``(points (B, N, out_dim), g (B, global_dim))``. The global vector starts from the pooled
    embedded points (EPiC-FM, EPiC-GAN's critic) or, when ``global_input_dim > 0``, from a given
    per-cloud vector such as global noise (EPiC-GAN's generator). With ``input_skip`` the embedded
    points and the starting global vector are added to the output of every EPiC layer (EPiC-GAN's
    generator keeps its noise in reach of every layer this way). With ``out_dim=None`` the points
    are returned at the hidden width (for a critic that pools them itself).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int | None,
        hidden: int = 128,
        global_dim: int = 10,
        layers: int = 6,
        context_dim: int = 0,
        global_input_dim: int = 0,
        sum_scale: float = 1e-2,
        negative_slope: float = 0.01,
        weight_norm: bool = True,
        dropout: float = 0.0,
        input_skip: bool = False,
    ) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.context_dim = context_dim
        self.input_skip = input_skip
        self.embed1 = _linear(in_dim + context_dim, hidden, weight_norm)
        self.embed2 = _linear(hidden + context_dim, hidden, weight_norm)
        self.pool = EPiCPooling(sum_scale)
        start = global_input_dim if global_input_dim > 0 else 2 * hidden
        self.global_input_dim = global_input_dim
        self.global1 = _linear(start + context_dim, hidden, weight_norm)
        self.global2 = _linear(hidden + context_dim, global_dim, weight_norm)
        self.layers = nn.ModuleList(
            EPiCLayer(hidden, global_dim, context_dim, sum_scale, negative_slope, weight_norm, dropout)
            for _ in range(layers)
        )
        self.output = _linear(hidden + context_dim, out_dim, weight_norm) if out_dim is not None else None

    def _act(self, h: Tensor) -> Tensor:
        return F.leaky_relu(h, self.negative_slope)

    def forward(
        self, x: Tensor, mask: Tensor, context: Tensor | None = None, global_input: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        if (context is None) != (self.context_dim == 0) or (context is not None and context.shape[-1] != self.context_dim):
            shape = None if context is None else tuple(context.shape)
            raise ValueError(f"context must be (B, {self.context_dim}) (None when 0), got {shape}")
        if (global_input is None) != (self.global_input_dim == 0):
            raise ValueError(f"global_input must be (B, {self.global_input_dim}) (None when 0)")
        x = apply_mask(x, mask)
        h = self._act(_linear_of(self.embed1, x, context))
        h = apply_mask(self._act(_linear_of(self.embed2, h, context) + h), mask)
        start = self.pool(h, mask) if global_input is None else global_input
        g = self._act(_linear_of(self.global1, start, context))
        g = self._act(_linear_of(self.global2, g, context))
        h0, g0 = h, g
        for layer in self.layers:
            h, g = layer(h, g, mask, context)
            if self.input_skip:
                h, g = h + h0, g + g0
        if self.output is not None:
            h = _linear_of(self.output, h, context)
        return apply_mask(h, mask), g


__all__ = ["EPiCLayer", "EPiCNetwork", "EPiCPooling"]
