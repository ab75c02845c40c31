"""Masked attention blocks for padded point clouds (Set Transformer family and iGAPT's IPAB).

Shapes: a point cloud is ``x`` ``(B, N, D)`` with ``mask`` ``(B, N)`` bool (True = real particle);
a global vector is ``z`` ``(B, Dz)``. Every block:

- gives padded keys zero attention weight, and ignores whatever padded entries hold;
- returns exactly zero at padded particle positions (when it knows their mask);
- treats a cloud with no real particle as an empty key set: the attention term is zero, so the
  output stays finite (no softmax over all-masked keys, hence no NaN).

Blocks are post-norm, as in the Set Transformer (Lee et al., arXiv:1810.00825):
``h = LN(q + Drop(Attn(q, kv)))``, ``out = LN(h + Drop(FF(h)))`` with LayerNorm optional.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcgen.nn.dropout import Dropout
from pcgen.nn.masking import apply_mask, keep_where, safe_key_padding


class FeedForward(nn.Sequential):
    """Linear layers ``in_dim -> *hidden -> out_dim`` with a LeakyReLU after each one.

    ``final_activation=False`` leaves the last layer linear (for output heads).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (),
        *,
        negative_slope: float = 0.2,
        final_activation: bool = True,
    ) -> None:
        sizes = [in_dim, *hidden, out_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(a, b))
            if final_activation or i < len(sizes) - 2:
                layers.append(nn.LeakyReLU(negative_slope))
        super().__init__(*layers)


SMALL_ATTENTION = 4096
"""Largest ``queries x keys`` per head that :func:`scaled_dot_product` computes with batched matrix
products on a CPU: for point clouds of tens of particles these were 1.1-2.3x faster than the fused
kernel of ``F.scaled_dot_product_attention`` (forward and backward, measured for issue 13)."""


def padding_bias(key_padding: Tensor, dtype: torch.dtype) -> Tensor:
    """Additive attention bias ``(B, Nk)``: ``-inf`` where ``key_padding`` is True (ignore), else 0."""
    return torch.zeros(key_padding.shape, dtype=dtype, device=key_padding.device).masked_fill_(key_padding, float("-inf"))


def scaled_dot_product(q: Tensor, k: Tensor, v: Tensor, key_padding: Tensor | None = None) -> Tensor:
    """Softmax attention ``(B, H, Nq, d)`` of queries ``q`` ``(B, H, Nq, d)`` over keys ``k`` and values
    ``v`` ``(B, H, Nk, d)``; ``key_padding`` ``(B, Nk)`` bool, True = ignore (never a whole row).

    ``F.scaled_dot_product_attention``, except for small attention on a CPU (at most
    :data:`SMALL_ATTENTION` query-key pairs), where the same maths runs as two batched matrix products
    with the padding as an additive ``-inf`` bias.
    """
    batch, heads, n_query, head_dim = q.shape
    n_key = k.shape[2]
    if q.device.type != "cpu" or n_query * n_key > SMALL_ATTENTION:
        attn_mask = None if key_padding is None else (~key_padding)[:, None, None, :]  # True = attend
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    q, k, v = (t.reshape(batch * heads, -1, head_dim) for t in (q, k, v))
    scale = 1.0 / math.sqrt(head_dim)
    if key_padding is None:
        logits = torch.bmm(q, k.transpose(1, 2)) * scale
    else:
        bias = padding_bias(key_padding, q.dtype)[:, None, None, :].expand(batch, heads, 1, n_key)
        logits = torch.baddbmm(bias.reshape(batch * heads, 1, n_key), q, k.transpose(1, 2), alpha=scale)
    return torch.bmm(torch.softmax(logits, dim=-1), v).view(batch, heads, n_query, head_dim)


class MaskedMultiheadAttention(nn.Module):
    """Multi-head scaled dot-product attention of a query set over a padded key set.

    ``query`` ``(B, Nq, dim)``, ``key`` ``(B, Nk, kv_dim)`` (also the values), ``key_mask``
    ``(B, Nk)`` bool or None (all real) -> ``(B, Nq, dim)``. For a cloud with no real key the
    output is zero. Parameters match ``nn.MultiheadAttention(dim, num_heads, kdim=kv_dim,
    vdim=kv_dim)``, except with ``single_key=True``: then the key set is always one token, the
    softmax is identically 1 and the output is ``out_proj(v_proj(key))`` for every query, so the
    query and key projections (which could never receive a gradient) are not created.
    """

    def __init__(self, dim: int, num_heads: int, kv_dim: int | None = None, single_key: bool = False) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        kv_dim = dim if kv_dim is None else kv_dim
        self.dim, self.num_heads, self.kv_dim, self.single_key = dim, num_heads, kv_dim, single_key
        self.q_proj = None if single_key else nn.Linear(dim, dim)
        self.k_proj = None if single_key else nn.Linear(kv_dim, dim)
        self.v_proj = nn.Linear(kv_dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, query: Tensor, key: Tensor, key_mask: Tensor | None = None) -> Tensor:
        batch, n_query, _ = query.shape
        n_key = key.shape[1]
        nonempty: Tensor | None = None
        key_padding: Tensor | None = None
        if key_mask is not None:
            key = apply_mask(key, key_mask)
            key_padding, nonempty = safe_key_padding(key_mask)
        if self.q_proj is None or self.k_proj is None:
            if n_key != 1:
                raise ValueError(f"single_key attention got {n_key} keys")
            out = self.out_proj(self.v_proj(key)).expand(batch, n_query, self.dim)
        elif self.num_heads * n_query * 4 <= self.dim:
            out = self._few_query_attention(self._project_query(query), key, key_padding)
        elif batch > 1 and query.stride(0) == 0 and query.device.type == "cpu" and n_query * n_key <= SMALL_ATTENTION:
            out = self._shared_query_attention(query[0], key, key_padding)
        else:
            heads, head_dim = self.num_heads, self.dim // self.num_heads
            q = self._project_query(query).view(batch, n_query, heads, head_dim).transpose(1, 2)
            k = self.k_proj(key).view(batch, n_key, heads, head_dim).transpose(1, 2)
            v = self.v_proj(key).view(batch, n_key, heads, head_dim).transpose(1, 2)
            out = scaled_dot_product(q, k, v, key_padding)
            out = self.out_proj(out.transpose(1, 2).reshape(batch, n_query, self.dim))
        if nonempty is not None and not (out.device.type == "cpu" and bool(nonempty.all())):
            out = keep_where(out, nonempty[:, None, None])  # (on a CPU, asking costs nothing)
        return out

    def _shared_query_attention(self, query: Tensor, key: Tensor, key_padding: Tensor | None) -> Tensor:
        """Attention of one query set ``(Nq, dim)`` shared by every cloud (inducing points) over
        ``key`` ``(B, Nk, kv_dim)``: the projected queries are mapped into key space once, so the
        logits of all clouds are one matrix product with the keys, which are not projected."""
        assert self.q_proj is not None and self.k_proj is not None
        batch, n_key, _ = key.shape
        n_query = query.shape[0]
        heads, head_dim = self.num_heads, self.dim // self.num_heads
        q = self.q_proj(query).view(n_query, heads, head_dim) * (1.0 / math.sqrt(head_dim))
        q_eff, key_bias = self._queries_in_key_space(q)
        logits = F.linear(key, q_eff.reshape(heads * n_query, self.kv_dim), key_bias.reshape(-1)).transpose(1, 2)
        if key_padding is not None:  # (B, heads * Nq, Nk)
            logits = logits + padding_bias(key_padding, logits.dtype).unsqueeze(1)
        weights = torch.softmax(logits, dim=-1).view(batch * heads, n_query, n_key)
        v = self.v_proj(key).view(batch, n_key, heads, head_dim).transpose(1, 2).reshape(batch * heads, n_key, head_dim)
        out = torch.bmm(weights, v).view(batch, heads, n_query, head_dim).transpose(1, 2)
        return self.out_proj(out.reshape(batch, n_query, self.dim))

    def _queries_in_key_space(self, q: Tensor) -> tuple[Tensor, Tensor]:
        """Projected queries ``(..., Nq, heads, head_dim)`` as ``W_k,h^T q_h`` ``(..., heads, Nq, kv_dim)``
        and ``q_h . b_k,h`` ``(..., heads, Nq)``: ``q_h . k_proj(k)`` is their product with ``k`` plus the
        second, a term the same for every key, kept so that ``b_k`` stays in the graph as in plain
        attention (DistributedDataParallel expects a gradient for every parameter)."""
        assert self.k_proj is not None
        heads, head_dim = self.num_heads, self.dim // self.num_heads
        q_eff = torch.einsum("...qhd,hdi->...hqi", q, self.k_proj.weight.view(heads, head_dim, self.kv_dim))
        return q_eff, torch.einsum("...qhd,hd->...hq", q, self.k_proj.bias.view(heads, head_dim))

    def _project_query(self, query: Tensor) -> Tensor:
        """``q_proj(query)``; a query set shared by the whole batch (an expanded parameter:
        inducing points, PMA seeds) is projected once and expanded."""
        assert self.q_proj is not None
        if query.shape[0] > 1 and query.stride(0) == 0:
            return self.q_proj(query[:1]).expand(query.shape[0], -1, -1)
        return self.q_proj(query)

    def _few_query_attention(self, q: Tensor, key: Tensor, key_padding: Tensor | None) -> Tensor:
        """Attention of a few projected queries ``q`` ``(B, Nq, dim)``, without projecting the keys.

        With ``heads * Nq`` well below ``dim`` it is cheaper to map each query back into key space
        than to map every key into query space: ``q_h . (W_k,h k + b_k,h) = (W_k,h^T q_h) . k +
        q_h . b_k,h`` (the last term is the same for every key), and, as the weights of a cloud sum to one,
        ``sum_n w_n (W_v k_n + b_v) = W_v (sum_n w_n k_n) + b_v``. Per key this costs
        ``O(heads * Nq * kv_dim)`` instead of ``O(kv_dim * dim)``; the result is the same attention.
        """
        batch, n_query, _ = q.shape
        heads, head_dim = self.num_heads, self.dim // self.num_heads
        w_v = self.v_proj.weight.view(heads, head_dim, self.kv_dim)
        q_eff, key_bias = self._queries_in_key_space(q.view(batch, n_query, heads, head_dim))
        logits = torch.baddbmm(key_bias.reshape(batch, heads * n_query, 1),
                               q_eff.reshape(batch, heads * n_query, self.kv_dim), key.transpose(1, 2))
        logits = logits * (1.0 / math.sqrt(head_dim))  # (B, heads * Nq, Nk)
        if key_padding is not None:
            logits = logits.masked_fill(key_padding[:, None, :], float("-inf"))
        pooled = torch.bmm(torch.softmax(logits, dim=-1), key).view(batch, heads, n_query, self.kv_dim)
        values = torch.einsum("bhqi,hdi->bqhd", pooled, w_v).reshape(batch, n_query, self.dim)
        return self.out_proj(values + self.v_proj.bias)


class MultiheadAttentionBlock(nn.Module):
    """MAB: a query set attends to a padded key set, then a residual feed-forward network.

    ``forward(query (B, Nq, dim), key (B, Nk, kv_dim), key_mask (B, Nk) | None,
    query_mask (B, Nq) | None) -> (B, Nq, dim)``; rows where ``query_mask`` is False are zero.
    The feed-forward net is ``dim -> *ff_hidden -> dim`` with LeakyReLU after every layer;
    dropout acts on the attention and feed-forward outputs before each residual sum.
    ``single_key=True`` is for a key set that is always one token (see
    :class:`MaskedMultiheadAttention`).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        kv_dim: int | None = None,
        ff_hidden: Sequence[int] = (),
        layer_norm: bool = False,
        dropout: float = 0.0,
        negative_slope: float = 0.2,
        single_key: bool = False,
    ) -> None:
        super().__init__()
        self.attention = MaskedMultiheadAttention(dim, num_heads, kv_dim, single_key)
        self.ff = FeedForward(dim, dim, ff_hidden, negative_slope=negative_slope)
        self.norm1: nn.Module = nn.LayerNorm(dim) if layer_norm else nn.Identity()
        self.norm2: nn.Module = nn.LayerNorm(dim) if layer_norm else nn.Identity()
        self.dropout = Dropout(dropout)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        key_mask: Tensor | None = None,
        query_mask: Tensor | None = None,
    ) -> Tensor:
        if query_mask is not None:
            query = apply_mask(query, query_mask)  # padded garbage must not reach any gradient
        h = self.norm1(query + self.dropout(self.attention(query, key, key_mask)))
        out = self.norm2(h + self.dropout(self.ff(h)))
        return out if query_mask is None else apply_mask(out, query_mask)


class SelfAttentionBlock(nn.Module):
    """SAB: ``MAB(x, x)`` with the cloud's mask on keys and queries; O(N^2).

    ``forward(x (B, N, dim), mask (B, N) | None) -> (B, N, dim)``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        ff_hidden: Sequence[int] = (),
        layer_norm: bool = False,
        dropout: float = 0.0,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        self.mab = MultiheadAttentionBlock(
            dim,
            num_heads,
            ff_hidden=ff_hidden,
            layer_norm=layer_norm,
            dropout=dropout,
            negative_slope=negative_slope,
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.mab(x, x, key_mask=mask, query_mask=mask)


class InducedSetAttentionBlock(nn.Module):
    """ISAB: ``M`` learned inducing points summarise the cloud, which then attends to them; O(NM).

    ``h = MAB0(I, x, mask)`` ``(B, M, dim)``; ``out = MAB1(x, h)`` ``(B, N, dim)``, zero where
    padded. :meth:`forward_with_induced` also returns ``h``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        num_inducing: int,
        *,
        ff_hidden: Sequence[int] = (),
        layer_norm: bool = False,
        dropout: float = 0.0,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if num_inducing < 1:
            raise ValueError(f"num_inducing must be >= 1, got {num_inducing}")
        make = partial(
            MultiheadAttentionBlock,
            num_heads=num_heads,
            ff_hidden=tuple(ff_hidden),
            layer_norm=layer_norm,
            dropout=dropout,
            negative_slope=negative_slope,
        )
        self.inducing = nn.Parameter(torch.empty(1, num_inducing, dim))
        nn.init.xavier_uniform_(self.inducing)
        self.mab0 = make(dim)
        self.mab1 = make(dim)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.forward_with_induced(x, mask)[0]

    def forward_with_induced(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(out (B, N, dim), h (B, M, dim))``: the block's output and the induced summary."""
        inducing = self.inducing.expand(x.shape[0], -1, -1)
        h = self.mab0(inducing, x, key_mask=mask)
        return self.mab1(x, h, query_mask=mask), h


class PoolingByMultiheadAttention(nn.Module):
    """PMA: ``k`` learned seed vectors attend to the real particles; permutation invariant.

    ``forward(x (B, N, dim), mask (B, N) | None) -> (B, k, dim)``. An empty cloud gives the
    seeds passed through the feed-forward part only.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        num_seeds: int = 1,
        *,
        ff_hidden: Sequence[int] = (),
        layer_norm: bool = False,
        dropout: float = 0.0,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if num_seeds < 1:
            raise ValueError(f"num_seeds must be >= 1, got {num_seeds}")
        self.seeds = nn.Parameter(torch.empty(1, num_seeds, dim))
        nn.init.xavier_uniform_(self.seeds)
        self.mab = MultiheadAttentionBlock(
            dim,
            num_heads,
            ff_hidden=ff_hidden,
            layer_norm=layer_norm,
            dropout=dropout,
            negative_slope=negative_slope,
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.mab(self.seeds.expand(x.shape[0], -1, -1), x, key_mask=mask)


class InducedParticleAttentionBlock(nn.Module):
    """IPAB (iGAPT): the global vector ``z`` is the single inducing point, updated every block.

    ``forward(x (B, N, dim), z (B, global_dim), mask (B, N) | None) -> (x_new, z_new)``:
    ``z_new = MAB0(z as a 1-token query, x, mask)`` ``(B, global_dim)``, then
    ``x_new = MAB1(x, z_new)`` ``(B, N, dim)`` (each particle attends to the one token), zero
    where padded. Cost is linear in N. As attention over one token has softmax weight 1,
    ``MAB1`` reduces to adding a projection of ``z_new`` to every particle before its
    feed-forward net; it has no query/key projections.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        global_dim: int | None = None,
        ff_hidden: Sequence[int] = (),
        layer_norm: bool = False,
        dropout: float = 0.0,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        global_dim = dim if global_dim is None else global_dim
        make = partial(
            MultiheadAttentionBlock,
            num_heads=num_heads,
            ff_hidden=tuple(ff_hidden),
            layer_norm=layer_norm,
            dropout=dropout,
            negative_slope=negative_slope,
        )
        self.global_update = make(global_dim, kv_dim=dim)
        self.particle_update = make(dim, kv_dim=global_dim, single_key=True)

    def forward(self, x: Tensor, z: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z_new = self.global_update(z.unsqueeze(1), x, key_mask=mask)
        x_new = self.particle_update(x, z_new, query_mask=mask)
        return x_new, z_new.squeeze(1)


__all__ = [
    "SMALL_ATTENTION",
    "FeedForward",
    "InducedParticleAttentionBlock",
    "InducedSetAttentionBlock",
    "MaskedMultiheadAttention",
    "MultiheadAttentionBlock",
    "PoolingByMultiheadAttention",
    "SelfAttentionBlock",
    "padding_bias",
    "scaled_dot_product",
]
