"""Unit tests of pcgen.nn: masking helpers and masked attention blocks."""

from __future__ import annotations


import pytest
import torch
from pcgen.nn import (
    FeedForward,
    InducedParticleAttentionBlock,
    InducedSetAttentionBlock,
    MaskedMultiheadAttention,
    MultiheadAttentionBlock,
    PoolingByMultiheadAttention,
    SelfAttentionBlock,
    apply_mask,
    attention_key_padding,
    has_particles,
    mask_from_multiplicity,
    masked_mean,
    masked_sum,
    multiplicity,
    safe_key_padding,
)
from torch import Tensor, nn

DIM, HEADS = 16, 4


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def ragged_mask(batch: int = 4, n: int = 7) -> Tensor:
    """Multiplicities n, n-2, 1, 0: a full, a partial, a single-particle and an empty cloud."""
    counts = torch.tensor([n, n - 2, 1, 0])[:batch]
    return mask_from_multiplicity(counts, n)


def scramble_padding(x: Tensor, mask: Tensor, value: float = 1e3) -> Tensor:
    """``x`` with padded entries replaced by large random values."""
    noise = value * torch.randn_like(x)
    return torch.where(mask.unsqueeze(-1), x, noise)


# --- masking helpers ---------------------------------------------------------------------------


def test_mask_from_multiplicity() -> None:
    mask = mask_from_multiplicity(torch.tensor([0, 2, 5, 9]), 5)
    assert mask.dtype == torch.bool and mask.shape == (4, 5)
    assert mask.sum(1).tolist() == [0, 2, 5, 5]
    assert mask[1].tolist() == [True, True, False, False, False]
    assert multiplicity(mask).tolist() == [0, 2, 5, 5]


def test_masked_reductions_ignore_padding_and_handle_empty() -> None:
    mask = ragged_mask()
    x = torch.randn(4, 7, 3)
    x_bad = x.masked_fill(~mask.unsqueeze(-1), float("nan"))
    for fn in (masked_sum, masked_mean):
        assert torch.equal(fn(x, mask), fn(x_bad, mask))
    assert torch.allclose(masked_sum(x, mask)[1], x[1, :5].sum(0))
    assert torch.allclose(masked_mean(x, mask)[1], x[1, :5].mean(0))
    assert torch.equal(masked_mean(x, mask)[3], torch.zeros(3))
    assert torch.isfinite(masked_mean(x_bad, mask)).all()


def test_apply_mask_zeroes_padding_including_nan() -> None:
    mask = ragged_mask()
    x = torch.full((4, 7, 2), float("inf"))
    out = apply_mask(x, mask)
    assert (out[~mask] == 0).all() and torch.isinf(out[mask]).all()


def test_key_padding_conventions() -> None:
    mask = ragged_mask()
    assert torch.equal(attention_key_padding(mask), ~mask)
    padding, nonempty = safe_key_padding(mask)
    assert nonempty.tolist() == [True, True, True, False] == has_particles(mask).tolist()
    assert torch.equal(padding[:3], ~mask[:3])
    assert not padding[3].any(), "an empty cloud's row must not be fully masked"


# --- attention ---------------------------------------------------------------------------------


def test_attention_matches_torch_multihead_attention() -> None:
    ours = MaskedMultiheadAttention(DIM, HEADS)
    ref = nn.MultiheadAttention(DIM, HEADS, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        ref.out_proj.bias.copy_(ours.out_proj.bias)
    mask = ragged_mask()[:3]  # torch's module gives NaN for the empty cloud
    q, kv = torch.randn(3, 5, DIM), torch.randn(3, 7, DIM)
    expected = ref(q, kv, kv, key_padding_mask=attention_key_padding(mask), need_weights=False)[0]
    assert torch.allclose(ours(q, kv, mask), expected, atol=1e-5)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())


def test_single_key_attention_equals_general_attention() -> None:
    general = MaskedMultiheadAttention(DIM, HEADS, kv_dim=8)
    single = MaskedMultiheadAttention(DIM, HEADS, kv_dim=8, single_key=True)
    single.v_proj.load_state_dict(general.v_proj.state_dict())
    single.out_proj.load_state_dict(general.out_proj.state_dict())
    assert single.q_proj is None and single.k_proj is None
    q, key = torch.randn(2, 6, DIM), torch.randn(2, 1, 8)
    assert torch.allclose(single(q, key), general(q, key), atol=1e-5)
    assert torch.allclose(single(q, key), general(q, key.expand(2, 3, 8)), atol=1e-5)
    out = single(q, key, torch.tensor([[True], [False]]))
    assert torch.equal(out[1], torch.zeros(6, DIM))
    with pytest.raises(ValueError, match="single_key"):
        single(q, key.expand(2, 2, 8))


def test_attention_empty_cloud_is_zero_and_finite() -> None:
    attn = MaskedMultiheadAttention(DIM, HEADS)
    mask = ragged_mask()
    kv = scramble_padding(torch.randn(4, 7, DIM), mask)
    out = attn(torch.randn(4, 3, DIM), kv, mask)
    assert torch.isfinite(out).all()
    assert torch.equal(out[3], torch.zeros(3, DIM))


def test_attention_rejects_bad_heads() -> None:
    with pytest.raises(ValueError, match="divisible"):
        MaskedMultiheadAttention(10, 4)


def test_feedforward_layout() -> None:
    ff = FeedForward(3, 5, (7,), final_activation=False)
    kinds = [type(m).__name__ for m in ff]
    assert kinds == ["Linear", "LeakyReLU", "Linear"]
    assert kinds[-1] != "LeakyReLU"
    assert [type(m).__name__ for m in FeedForward(3, 5)] == ["Linear", "LeakyReLU"]


@pytest.mark.parametrize("layer_norm", [False, True])
def test_mab_shapes_and_padding(layer_norm: bool) -> None:
    mab = MultiheadAttentionBlock(DIM, HEADS, kv_dim=8, ff_hidden=(32,), layer_norm=layer_norm, dropout=0.1).eval()
    mask = ragged_mask()
    q = torch.randn(4, 7, DIM)
    kv = torch.randn(4, 7, 8)
    out = mab(q, kv, key_mask=mask, query_mask=mask)
    assert out.shape == (4, 7, DIM)
    assert (out[~mask] == 0).all()
    out2 = mab(scramble_padding(q, mask), scramble_padding(kv, mask), key_mask=mask, query_mask=mask)
    assert torch.allclose(out, out2, atol=1e-5)
    assert torch.isfinite(out).all()


def test_nan_in_padding_reaches_neither_outputs_nor_gradients() -> None:
    mab = MultiheadAttentionBlock(DIM, HEADS, layer_norm=True)
    mask = ragged_mask()
    q, kv = torch.randn(4, 7, DIM), torch.randn(4, 7, DIM)
    nan = torch.tensor(float("nan"))
    q_bad = torch.where(mask.unsqueeze(-1), q, nan)
    kv_bad = torch.where(mask.unsqueeze(-1), kv, nan)
    out = mab(q_bad, kv_bad, key_mask=mask, query_mask=mask)
    assert torch.allclose(out, mab(q, kv, key_mask=mask, query_mask=mask), atol=1e-6)
    out.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in mab.parameters())


def test_sab_equivariance_and_padding() -> None:
    sab = SelfAttentionBlock(DIM, HEADS, layer_norm=True).eval()
    mask = ragged_mask()
    x = torch.randn(4, 7, DIM)
    out = sab(x, mask)
    assert out.shape == x.shape and (out[~mask] == 0).all()
    assert torch.allclose(out, sab(scramble_padding(x, mask), mask), atol=1e-5)
    perm = torch.randperm(7)
    assert torch.allclose(sab(x[:, perm], mask[:, perm]), out[:, perm], atol=1e-5)
    # a real particle's output must not depend on how much padding follows it
    longer = sab(torch.cat([x, torch.randn(4, 5, DIM)], 1), torch.cat([mask, torch.zeros(4, 5, dtype=torch.bool)], 1))
    assert torch.allclose(longer[:, :7], out, atol=1e-5)


def test_isab_padding_equivariance_and_large_n() -> None:
    isab = InducedSetAttentionBlock(DIM, HEADS, num_inducing=5, layer_norm=True).eval()
    mask = ragged_mask()
    x = torch.randn(4, 7, DIM)
    out, induced = isab.forward_with_induced(x, mask)
    assert out.shape == x.shape and induced.shape == (4, 5, DIM)
    assert (out[~mask] == 0).all() and torch.isfinite(out).all()
    assert torch.allclose(out, isab(scramble_padding(x, mask), mask), atol=1e-5)
    perm = torch.randperm(7)
    assert torch.allclose(isab(x[:, perm], mask[:, perm]), out[:, perm], atol=1e-5)
    # N = 2000 on CPU: linear in N, so this is cheap
    big_mask = mask_from_multiplicity(torch.tensor([2000, 1234]), 2000)
    big = isab(torch.randn(2, 2000, DIM), big_mask)
    assert big.shape == (2, 2000, DIM) and torch.isfinite(big).all() and (big[~big_mask] == 0).all()


def test_pma_invariance_and_empty_cloud() -> None:
    pma = PoolingByMultiheadAttention(DIM, HEADS, num_seeds=3, layer_norm=True).eval()
    mask = ragged_mask()
    x = torch.randn(4, 7, DIM)
    out = pma(x, mask)
    assert out.shape == (4, 3, DIM) and torch.isfinite(out).all()
    perm = torch.randperm(7)
    assert torch.allclose(pma(x[:, perm], mask[:, perm]), out, atol=1e-5)
    assert torch.allclose(pma(scramble_padding(x, mask), mask), out, atol=1e-5)
    # the empty cloud sees no particle at all, whatever the padded entries hold
    assert torch.allclose(out[3], pma(torch.zeros(1, 7, DIM), mask[3:])[0], atol=1e-6)


def test_ipab_shapes_padding_and_symmetry() -> None:
    block = InducedParticleAttentionBlock(DIM, HEADS, global_dim=8, layer_norm=True).eval()
    mask = ragged_mask()
    x, z = torch.randn(4, 7, DIM), torch.randn(4, 8)
    x_new, z_new = block(x, z, mask)
    assert x_new.shape == (4, 7, DIM) and z_new.shape == (4, 8)
    assert (x_new[~mask] == 0).all()
    assert torch.isfinite(x_new).all() and torch.isfinite(z_new).all()
    x2, z2 = block(scramble_padding(x, mask), z, mask)
    assert torch.allclose(x_new, x2, atol=1e-5) and torch.allclose(z_new, z2, atol=1e-5)
    perm = torch.randperm(7)
    x3, z3 = block(x[:, perm], z, mask[:, perm])
    assert torch.allclose(x3, x_new[:, perm], atol=1e-5) and torch.allclose(z3, z_new, atol=1e-5)
    # z actually reads the particles: changing a real particle changes z
    x4 = x.clone()
    x4[0, 0] += 1.0
    assert not torch.allclose(block(x4, z, mask)[1][0], z_new[0])


def test_dropout_only_in_training() -> None:
    block = InducedParticleAttentionBlock(DIM, HEADS, dropout=0.5)
    x, z = torch.randn(2, 5, DIM), torch.randn(2, DIM)
    block.train()
    assert not torch.allclose(block(x, z)[0], block(x, z)[0])
    block.eval()
    assert torch.equal(block(x, z)[0], block(x, z)[0])


class _TinySetRegressor(nn.Module):
    """Embed -> SAB -> ISAB -> IPAB -> PMA -> linear: predicts one number per cloud."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(2, DIM)
        self.sab = SelfAttentionBlock(DIM, HEADS)
        self.isab = InducedSetAttentionBlock(DIM, HEADS, 4)
        self.ipab = InducedParticleAttentionBlock(DIM, HEADS, layer_norm=True)
        self.pma = PoolingByMultiheadAttention(DIM, HEADS)
        self.head = nn.Linear(DIM, 1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = apply_mask(self.embed(x), mask)
        h = self.isab(self.sab(h, mask), mask)
        h, _ = self.ipab(h, masked_mean(h, mask), mask)
        return self.head(self.pma(h, mask)[:, 0]).squeeze(-1)


def test_gradients_flow_through_masked_blocks() -> None:
    model = _TinySetRegressor()
    counts = torch.randint(1, 11, (64,))
    mask = mask_from_multiplicity(counts, 10)
    x = apply_mask(torch.rand(64, 10, 2), mask)
    target = masked_sum(x[..., :1] * x[..., 1:], mask).squeeze(-1) / 3  # a set function of the reals
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss_fn() -> Tensor:
        return ((model(x, mask) - target) ** 2).mean()

    first = loss_fn().item()
    for _ in range(40):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert loss_fn().item() < 0.5 * first
    # gradients reach every parameter, and never the padded inputs
    x_req = x.clone().requires_grad_(True)
    model.zero_grad()
    model(x_req, mask).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert x_req.grad is not None and (x_req.grad[~mask] == 0).all() and x_req.grad[mask].abs().sum() > 0
