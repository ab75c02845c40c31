"""Unit tests of pcgen.nn.mean_field: MDMA's mean-field attention, block, encoder and normalisations."""

from __future__ import annotations

import math

import pytest
import torch
from pcgen.nn.masking import mask_from_multiplicity, masked_mean
from pcgen.nn.mean_field import (
    ConditionalGLU,
    MeanFieldAttention,
    MeanFieldBlock,
    MeanFieldEncoder,
    UnitRowNorm,
    normalize_linear_layers,
)
from torch import Tensor, nn

DIM, HIDDEN, HEADS, N = 8, 16, 4, 7


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def ragged(n: int = N) -> tuple[Tensor, Tensor]:
    """Masks of multiplicity n, n-2, 1, 0 (full, partial, single, empty) and a 2-wide condition."""
    mask = mask_from_multiplicity(torch.tensor([n, n - 2, 1, 0]), n)
    return mask, torch.randn(4, 2)


def garbage(x: Tensor, mask: Tensor, value: float = float("nan")) -> Tensor:
    return x.masked_fill(~mask.unsqueeze(-1), value)


def encoder(**kw: object) -> MeanFieldEncoder:
    return MeanFieldEncoder(3, DIM, HIDDEN, HEADS, num_blocks=2, cond_dim=2, **kw).eval()  # type: ignore[arg-type]


# --- attention ---------------------------------------------------------------------------------


def _explicit_attention(att: MeanFieldAttention, q_in: Tensor, points: Tensor, mask: Tensor) -> Tensor:
    """Per-cloud, per-head attention written out over the real points only."""
    heads, d = att.num_heads, att.dim // att.num_heads
    k_proj = att.k_proj or att.q_proj
    outs = []
    for b in range(len(points)):
        real = points[b, mask[b]]
        q = att.q_proj(q_in[b]).view(heads, d)
        k, v = k_proj(real).view(-1, heads, d), att.v_proj(real).view(-1, heads, d)
        if att.kind == "dot":
            logits = torch.einsum("hd,nhd->hn", q, k) / math.sqrt(d)
        else:
            logits = -(q.unsqueeze(1) - k.transpose(0, 1)).square().sum(-1) / math.sqrt(d)
        out = torch.einsum("hn,nhd->hd", logits.softmax(-1), v).reshape(-1)
        outs.append(att.out_proj(out))
    return torch.stack(outs)


@pytest.mark.parametrize("kind", ["dot", "l2"])
def test_attention_matches_explicit_formula_and_ignores_padding(kind: str) -> None:
    att = MeanFieldAttention(HIDDEN, HEADS, kind)  # type: ignore[arg-type]
    mask, _ = ragged()
    points, query = torch.randn(4, N, HIDDEN), torch.randn(4, HIDDEN)
    out = att(query, garbage(points, mask), mask)
    assert out.shape == (4, HIDDEN) and torch.isfinite(out).all()
    assert torch.allclose(out[:3], _explicit_attention(att, query[:3], points[:3], mask[:3]), atol=1e-5)
    assert torch.equal(out[3], torch.zeros(HIDDEN))  # empty cloud
    assert (att.k_proj is None) == (kind == "l2")  # L2 attention ties the query and key maps


def test_attention_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="divisible"):
        MeanFieldAttention(10, 4)
    with pytest.raises(ValueError, match="attention"):
        MeanFieldAttention(8, 2, "cosine")  # type: ignore[arg-type]


# --- block and encoder -------------------------------------------------------------------------


@pytest.mark.parametrize("attention", ["dot", "l2"])
def test_encoder_shapes_padding_and_empty_cloud(attention: str) -> None:
    enc, (mask, cond) = encoder(attention=attention), ragged()
    x = torch.randn(4, N, 3)
    points, field = enc(garbage(x, mask), mask, cond)
    assert points.shape == (4, N, DIM) and field.shape == (4, DIM)
    assert torch.isfinite(points).all() and torch.isfinite(field).all()
    assert (points[~mask] == 0).all()
    ref_points, ref_field = enc(garbage(x, mask, 1e4), mask, cond)
    assert torch.allclose(points, ref_points, atol=1e-5) and torch.allclose(field, ref_field, atol=1e-5)


def test_nan_padding_gives_finite_gradients() -> None:
    enc, (mask, cond) = encoder(), ragged()
    x = garbage(torch.randn(4, N, 3), mask).requires_grad_(True)
    points, field = enc(x, mask, cond)
    (points.sum() + field.sum()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())
    assert x.grad is not None and (x.grad[~mask] == 0).all()


def test_mean_field_starts_as_the_masked_mean_of_the_embedded_points() -> None:
    enc, (mask, cond) = encoder(), ragged()
    x = torch.randn(4, N, 3)
    seen: list[Tensor] = []
    enc.blocks[0].register_forward_hook(lambda _m, args, _out: seen.append(args[1]))
    enc(garbage(x, mask, 1e3), mask, cond)
    assert torch.allclose(seen[0], masked_mean(enc.embed(x), mask), atol=1e-5)


def test_permutation_equivariance_and_invariance() -> None:
    enc, (mask, cond) = encoder(), ragged()
    x = torch.randn(4, N, 3) * mask.unsqueeze(-1)
    perm = torch.randperm(N)
    points, field = enc(x, mask, cond)
    p_points, p_field = enc(x[:, perm], mask[:, perm], cond)
    assert torch.allclose(p_points, points[:, perm], atol=1e-5)
    assert torch.allclose(p_field, field, atol=1e-5)


def test_points_interact_only_through_the_mean_field() -> None:
    block = MeanFieldBlock(DIM, HIDDEN, HEADS).eval()
    mask = torch.ones(1, N, dtype=torch.bool)
    x, field = torch.randn(1, N, DIM), torch.randn(1, DIM)
    out, new_field = block(x, field, mask)
    moved = x.clone()
    moved[0, 0] += 2.0
    out2, new_field2 = block(moved, field, mask)
    assert not torch.allclose(out[0, 1:], out2[0, 1:], atol=1e-6)  # the others feel it ...
    assert not torch.allclose(new_field, new_field2, atol=1e-6)
    # ... only through the mean-field's message m: given m, each point is updated from itself alone
    h = block.point_in(block.act(moved))
    query = block.query_norm(block.point_in(block.act(field)))
    message = block.condition(block.attention(query, h, mask)).unsqueeze(1).expand_as(h)
    expect = moved + block.point_out(block.act(torch.cat([h, message], -1)))
    assert torch.allclose(out2, expect, atol=1e-5)


def test_glu_conditioning() -> None:
    enc, (mask, cond) = encoder(), ragged()
    x = torch.randn(4, N, 3) * mask.unsqueeze(-1)
    points, field = enc(x, mask, cond)
    points2, field2 = enc(x, mask, cond + 0.5)
    assert not torch.allclose(field[:3], field2[:3], atol=1e-5)
    assert not torch.allclose(points[mask], points2[mask], atol=1e-5)
    with pytest.raises(ValueError, match="cond"):
        enc(x, mask, None)
    with pytest.raises(ValueError, match="cond"):
        enc(x, mask, cond[:, :1])
    glu = ConditionalGLU(HIDDEN, DIM, cond_dim=0)
    assert glu.gate is None and glu(torch.randn(3, HIDDEN)).shape == (3, DIM)
    unconditioned = MeanFieldEncoder(3, DIM, HIDDEN, HEADS, num_blocks=1)
    assert unconditioned(x, mask)[1].shape == (4, DIM)
    assert unconditioned(x)[0].shape == (4, N, DIM)  # no mask: every point is real


def test_cost_is_linear_in_n_large_clouds_run() -> None:
    """A 2,400-point cloud (calorimeter scale) needs only O(N) memory: no N x N attention map."""
    enc = MeanFieldEncoder(4, DIM, HIDDEN, HEADS, num_blocks=2, cond_dim=1)
    n = torch.tensor([2400, 1000])
    mask = mask_from_multiplicity(n, 2400)
    points, field = enc(torch.randn(2, 2400, 4), mask, (n / 2400.0).unsqueeze(1))
    (points.square().mean() + field.sum()).backward()
    assert points.shape == (2, 2400, DIM) and torch.isfinite(field).all()


# --- normalisations ----------------------------------------------------------------------------


def test_weight_normalization_gives_unit_rows() -> None:
    enc = normalize_linear_layers(encoder(), "weight")
    linears = [m for m in enc.modules() if isinstance(m, nn.Linear)]
    assert linears and all(isinstance(m.parametrizations.weight[0], UnitRowNorm) for m in linears)
    for m in linears:
        assert torch.allclose(m.weight.norm(dim=1), torch.ones(m.out_features), atol=1e-5)


def test_spectral_normalization_bounds_the_largest_singular_value() -> None:
    enc = normalize_linear_layers(encoder(), "spectral").train()
    mask, cond = ragged()
    x = torch.randn(4, N, 3) * mask.unsqueeze(-1)
    for _ in range(30):  # power iterations run in training mode
        enc(x, mask, cond)
    enc.eval()
    for m in (m for m in enc.modules() if isinstance(m, nn.Linear)):
        assert torch.linalg.matrix_norm(m.weight.detach(), ord=2).item() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("norm", ["weight", "spectral"])
@pytest.mark.parametrize("attention", ["dot", "l2"])
def test_normalized_encoders_keep_masking_and_symmetry(norm: str, attention: str) -> None:
    enc = normalize_linear_layers(encoder(attention=attention), norm).eval()  # type: ignore[arg-type]
    mask, cond = ragged()
    x = torch.randn(4, N, 3) * mask.unsqueeze(-1)
    perm = torch.randperm(N)
    points, field = enc(x, mask, cond)
    assert torch.allclose(enc(garbage(x, mask), mask, cond)[1], field, atol=1e-5)
    assert torch.allclose(enc(x[:, perm], mask[:, perm], cond)[1], field, atol=1e-5)
    (points.sum() + field.sum()).backward()
    assert all(p.grad is not None for p in enc.parameters())


def test_normalize_rejects_unknown_kind_and_none_is_identity() -> None:
    enc = encoder()
    assert normalize_linear_layers(enc, "none") is enc
    assert not any(hasattr(m, "parametrizations") for m in enc.modules())
    with pytest.raises(ValueError, match="normalization"):
        normalize_linear_layers(enc, "batch")  # type: ignore[arg-type]


@pytest.mark.parametrize("output", ["points", "field"])
def test_encoder_output_leaves_out_unread_updates(output: str) -> None:
    enc = MeanFieldEncoder(3, DIM, HIDDEN, HEADS, num_blocks=2, cond_dim=2, output=output)  # type: ignore[arg-type]
    mask, cond = ragged()
    points, field = enc(torch.randn(4, N, 3), mask, cond)
    (points if output == "points" else field).square().sum().backward()
    assert all(p.grad is not None for p in enc.parameters())  # nothing unused (DDP-friendly)
    last = enc.blocks[-1]
    assert (last.point_out is None) == (output == "field") and (last.field_out is None) == (output == "points")
    with pytest.raises(ValueError, match="output"):
        MeanFieldEncoder(3, DIM, HIDDEN, HEADS, num_blocks=1, output="score")  # type: ignore[arg-type]
