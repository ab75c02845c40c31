"""Mean-field attention blocks (MDMA, Käch & Melzer-Pellmann, arXiv:2305.15254), linear in N.

A cloud is ``x`` ``(B, N, dim)`` with ``mask`` ``(B, N)`` bool (True = real point) and a
*mean-field* token ``field`` ``(B, dim)``, initialised as the masked mean of the embedded points.
In every :class:`MeanFieldBlock` the mean-field alone attends to the points (cross-attention with
one query per cloud, padded keys masked); this is the only way points interact, so the cost is
``O(N)``. Each point is then updated from itself and the mean-field by a point-wise layer. An
optional per-cloud condition ``cond`` ``(B, C)`` (jets: n / N; showers: incident energy, ...)
enters every block through a gated linear unit.

Guarantees, as in :mod:`pcgen.nn.attention`: padded entries (even NaN or inf) never reach an
output or a gradient; padded outputs are exactly zero; a cloud with no real point gives finite
outputs (its attention term is zero).

Options for critics: :func:`normalize_linear_layers` puts weight normalisation (unit-norm rows)
or spectral normalisation on every linear layer, and ``attention="l2"`` uses the distance-based
attention of Kim, Papamakarios & Mnih (arXiv:2006.04710), which, unlike dot-product attention,
is Lipschitz.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from pcgen.nn.conditioning import check_condition
from pcgen.nn.masking import apply_mask, keep_where, masked_mean, safe_key_padding

AttentionKind = Literal["dot", "l2"]
Normalization = Literal["none", "weight", "spectral"]


class UnitRowNorm(nn.Module):
    """Weight parametrisation ``W -> W / ||W_row||``: every output unit is a unit-norm projection.

    This is the *strict* weight normalisation (no learned gain) that MDMA's jet critic uses
    (Xiang & Li, arXiv:1704.03971).
    """

    def forward(self, weight: Tensor) -> Tensor:
        return weight / weight.norm(dim=1, keepdim=True).clamp_min(1e-8)


def normalize_linear_layers(module: nn.Module, kind: Normalization) -> nn.Module:
    """Put ``kind`` normalisation on the weight of every ``nn.Linear`` inside ``module`` (in place).

    ``"weight"``: :class:`UnitRowNorm`; ``"spectral"``: ``torch.nn.utils.parametrizations.
    spectral_norm`` (one power iteration per forward in training mode); ``"none"``: unchanged.
    Biases and LayerNorms are left alone. Returns ``module``.
    """
    if kind == "none":
        return module
    if kind not in ("weight", "spectral"):
        raise ValueError(f"unknown normalization {kind!r}; use 'none', 'weight' or 'spectral'")
    for layer in [m for m in module.modules() if isinstance(m, nn.Linear)]:
        if kind == "weight":
            parametrize.register_parametrization(layer, "weight", UnitRowNorm())
        else:
            spectral_norm(layer)
    return module


class MeanFieldAttention(nn.Module):
    """Multi-head attention of one query per cloud (the mean-field) over the cloud's real points.

    ``forward(query (B, dim), points (B, N, dim), mask (B, N) | None) -> (B, dim)``; ``O(N)``.
    ``kind="dot"``: scaled dot-product logits ``q.k / sqrt(d)``. ``kind="l2"``: logits
    ``-||q - k||^2 / sqrt(d)`` with the query and key projections tied (as Lipschitz L2 attention
    requires); ``d`` is the head width. An empty cloud gives zero. Parameters: ``q_proj``,
    ``k_proj`` (dot only, no bias), ``v_proj``, ``out_proj``, all ``nn.Linear(dim, dim)``.
    """

    def __init__(self, dim: int, num_heads: int, kind: AttentionKind = "dot") -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if kind not in ("dot", "l2"):
            raise ValueError(f"unknown attention {kind!r}; use 'dot' or 'l2'")
        self.dim, self.num_heads, self.kind = dim, num_heads, kind
        self.q_proj = nn.Linear(dim, dim)
        # a key bias adds q.b_k to every logit of a query, which the softmax cancels: none
        self.k_proj: nn.Linear | None = nn.Linear(dim, dim, bias=False) if kind == "dot" else None
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, query: Tensor, points: Tensor, mask: Tensor | None = None) -> Tensor:
        batch, n, _ = points.shape
        heads, head_dim = self.num_heads, self.dim // self.num_heads
        if mask is not None:
            points = apply_mask(points, mask)
        # With one query per cloud, project the query instead of every key: q.(W_k p + b_k) =
        # (W_k^T q).p + const, and pool the raw points before the value map: sum_n w_n (W_v p_n + b_v)
        # = W_v (sum_n w_n p_n) + b_v. Per point this costs O(heads * dim) instead of O(dim^2).
        q = self.q_proj(query).view(batch, heads, head_dim)
        if self.k_proj is not None:
            q_eff = torch.einsum("bhd,hdi->bhi", q, self.k_proj.weight.view(heads, head_dim, self.dim))
            logits = torch.bmm(points, q_eff.transpose(1, 2))  # (B, N, H)
        else:  # L2: -||q - k||^2 = 2 q.k - ||k||^2 - ||q||^2, the last constant over keys; keys tied to q_proj
            k = self.q_proj(points).view(batch, n, heads, head_dim)
            logits = 2 * (k * q.unsqueeze(1)).sum(-1) - k.square().sum(-1)
        logits = logits / math.sqrt(head_dim)
        nonempty: Tensor | None = None
        if mask is not None:
            key_padding, nonempty = safe_key_padding(mask)
            logits = logits.masked_fill(key_padding.unsqueeze(-1), float("-inf"))
        weights = torch.softmax(logits, dim=1)  # over the points
        pooled = torch.bmm(weights.transpose(1, 2), points)  # (B, H, dim)
        values = torch.einsum("bhi,hdi->bhd", pooled, self.v_proj.weight.view(heads, head_dim, self.dim))
        out = self.out_proj(values.reshape(batch, self.dim) + self.v_proj.bias)
        return out if nonempty is None else keep_where(out, nonempty.unsqueeze(-1))


class ConditionalGLU(nn.Module):
    """Gated linear unit conditioned on ``cond``: ``Linear([h, c]) * sigmoid(Linear(c))``.

    ``forward(h (B, in_dim), cond (B, cond_dim) | None) -> (B, out_dim)``. The condition
    enters the value linearly and scales it through the gate; with ``cond_dim=0`` this is a plain
    linear layer.
    """

    def __init__(self, in_dim: int, out_dim: int, cond_dim: int = 0) -> None:
        super().__init__()
        self.cond_dim = cond_dim
        self.value = nn.Linear(in_dim + cond_dim, out_dim)
        self.gate = nn.Linear(cond_dim, out_dim) if cond_dim > 0 else None

    def forward(self, h: Tensor, cond: Tensor | None = None) -> Tensor:
        if self.gate is None:
            return self.value(h)
        cond = check_condition(cond, self.cond_dim).to(h.dtype)
        return self.value(torch.cat([h, cond], dim=-1)) * torch.sigmoid(self.gate(cond))




class MeanFieldBlock(nn.Module):
    """One MDMA block: the mean-field gathers the points by cross-attention, then updates them.

    ``forward(x (B, N, dim), field (B, dim), mask (B, N) | None, cond (B, C) | None)
    -> (x_new (B, N, dim), field_new (B, dim))`` with, ``a`` being LeakyReLU:

    1. ``h = W_in a(x)`` per point (``hidden`` wide); the mean-field is mapped by the same layer
       and layer-normed: ``q = LN(W_in a(field))``;
    2. ``m = GLU(Attn(q, h, mask), cond)``: the mean-field attends to the real points;
    3. ``x_new = x + W_pt a([h, m])`` (each point sees itself and the mean-field);
       ``field_new = field + W_mf a(m)``.

    Padded rows of ``x_new`` are zero. Cost is linear in N. ``update_points=False`` (or
    ``update_field=False``) drops step 3's point (mean-field) update and returns that input
    unchanged, for a last block whose points (mean-field) nobody reads: then every parameter
    receives a gradient (as ``DistributedDataParallel`` requires by default).
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        num_heads: int,
        cond_dim: int = 0,
        *,
        attention: AttentionKind = "dot",
        negative_slope: float = 0.01,
        update_points: bool = True,
        update_field: bool = True,
    ) -> None:
        super().__init__()
        self.point_in = nn.Linear(dim, hidden)
        self.query_norm = nn.LayerNorm(hidden)
        self.attention = MeanFieldAttention(hidden, num_heads, attention)
        self.condition = ConditionalGLU(hidden, hidden, cond_dim)
        self.point_out = nn.Linear(2 * hidden, dim) if update_points else None
        self.field_out = nn.Linear(hidden, dim) if update_field else None
        self.act = nn.LeakyReLU(negative_slope)

    def forward(
        self, x: Tensor, field: Tensor, mask: Tensor | None = None, cond: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        if mask is not None:
            x = apply_mask(x, mask)  # padded garbage must not reach any gradient
        h = self.point_in(self.act(x))
        query = self.query_norm(self.point_in(self.act(field)))
        m = self.condition(self.attention(query, h, mask), cond)
        if self.point_out is not None:
            # W [a(h), a(m)] + b computed as W_h a(h) + (W_m a(m) + b): the mean-field half once per cloud
            weight, hidden = self.point_out.weight, h.shape[-1]
            per_cloud = F.linear(self.act(m), weight[:, hidden:], self.point_out.bias)
            x = x + F.linear(self.act(h), weight[:, :hidden]) + per_cloud.unsqueeze(1)
        if self.field_out is not None:
            field = field + self.field_out(self.act(m))
        return (x if mask is None else apply_mask(x, mask)), field


class MeanFieldEncoder(nn.Module):
    """Point-wise linear embedding, mean-field = masked mean of the embedded points, then blocks.

    ``forward(x (B, N, in_dim), mask (B, N) | None, cond (B, C) | None)
    -> (points (B, N, dim), field (B, dim))``: the last block's points (zero where padded) and
    mean-field. An empty cloud starts from a zero mean-field. ``output="points"`` (a generator) or
    ``"field"`` (a critic) leaves out the last block's update of the other one, which would get
    no gradient; that one is then returned as it entered the last block.
    """

    def __init__(
        self,
        in_dim: int,
        dim: int,
        hidden: int,
        num_heads: int,
        num_blocks: int,
        cond_dim: int = 0,
        *,
        attention: AttentionKind = "dot",
        negative_slope: float = 0.01,
        output: Literal["both", "points", "field"] = "both",
    ) -> None:
        super().__init__()
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {num_blocks}")
        if output not in ("both", "points", "field"):
            raise ValueError(f"unknown output {output!r}; use 'both', 'points' or 'field'")
        self.embed = nn.Linear(in_dim, dim)
        self.blocks = nn.ModuleList(
            MeanFieldBlock(
                dim,
                hidden,
                num_heads,
                cond_dim,
                attention=attention,
                negative_slope=negative_slope,
                update_points=i < num_blocks - 1 or output != "field",
                update_field=i < num_blocks - 1 or output != "points",
            )
            for i in range(num_blocks)
        )

    def forward(self, x: Tensor, mask: Tensor | None = None, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        mask = mask.bool()
        x = apply_mask(self.embed(apply_mask(x, mask)), mask)
        field = masked_mean(x, mask)
        for block in self.blocks:
            x, field = block(x, field, mask, cond)
        return x, field


__all__ = [
    "AttentionKind",
    "ConditionalGLU",
    "MeanFieldAttention",
    "MeanFieldBlock",
    "MeanFieldEncoder",
    "Normalization",
    "UnitRowNorm",
    "check_condition",
    "normalize_linear_layers",
]
