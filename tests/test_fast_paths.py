"""The fast paths compute what the plain ones did: dropout's distribution, fused optimisers, one fused gradient
norm, OmniJet's blocked nearest code, log values read once; and the accelerator options (bf16 autocast,
torch.compile, sampling under inference mode) train and sample correctly on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import quick_overrides
from torch import nn

from pcgen.config import load_config
from pcgen.nn import Dropout, dropout
from pcgen.runtime import precision
from pcgen.runtime.checkpoint import load_checkpoint
from pcgen.train.recipe import clip_gradients, grad_norm, host_values, make_optimizer
from pcgen.train.runner import execute


def test_dropout_keeps_each_value_with_probability_one_minus_p_and_rescales() -> None:
    torch.manual_seed(0)
    x = torch.ones(400_000)
    out = dropout(x, 0.3)
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / 0.7))
    assert dropout(x, 0.3, training=False) is x and dropout(x, 0.0) is x
    layer = Dropout(0.5).eval()
    assert torch.equal(layer(x), x)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        Dropout(1.0)


def test_dropout_gradient_flows_through_kept_values_only() -> None:
    torch.manual_seed(1)
    x = torch.randn(64, 32, requires_grad=True)
    out = dropout(x, 0.5)
    out.sum().backward()
    assert torch.equal(x.grad != 0, out != 0)


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop"])
def test_fused_and_multi_tensor_optimisers_follow_the_plain_update(name: str) -> None:
    fast, plain = _mlp(), _mlp()
    kwargs = {"lr": 1e-2, "weight_decay": 0.01}
    opt_fast = make_optimizer(name, fast.parameters(), betas=(0.5, 0.999), **kwargs)
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop}[name]
    extra = {} if name == "rmsprop" else {"betas": (0.5, 0.999)}
    opt_plain = cls(plain.parameters(), foreach=False, **kwargs, **extra)
    x = torch.randn(32, 5)
    for _ in range(5):
        for model, opt in ((fast, opt_fast), (plain, opt_plain)):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for a, b in zip(fast.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_fused_gradient_norm_is_the_norm_of_all_gradients_and_clips() -> None:
    model = _mlp()
    model(torch.randn(8, 5)).sum().backward()
    per_parameter = torch.stack([p.grad.norm() for p in model.parameters()]).norm()
    torch.testing.assert_close(grad_norm(model), per_parameter)
    before = clip_gradients(model, 0.1)
    torch.testing.assert_close(before, per_parameter)
    torch.testing.assert_close(grad_norm(model), torch.tensor(0.1), rtol=1e-4, atol=1e-6)
    assert grad_norm(nn.Linear(2, 2)).item() == 0.0  # no gradients yet


def test_host_values_reads_tensors_and_floats_in_order() -> None:
    values = host_values({"a": torch.tensor(1.5), "b": 2.0, "c": torch.tensor(3, dtype=torch.int64)})
    assert values == {"a": 1.5, "b": 2.0, "c": 3.0} and list(values) == ["a", "b", "c"]


def test_blocked_nearest_code_matches_the_plain_search() -> None:
    from pcgen_omnijet.config import OmniJetConfig
    from pcgen_omnijet.tokenizer import Tokenizer

    torch.manual_seed(0)
    tokenizer = Tokenizer(OmniJetConfig(codebook_size=512, latent_dim=4), 3)
    z = torch.randn(1000, 4)
    plain = torch.cdist(z, tokenizer.codebook.detach()).argmin(-1)
    assert torch.equal(tokenizer.nearest(z), plain)


def train(registry, tmp_path: Path, name: str, plugin: str = "igapt", steps: int = 6, **extra: str) -> Path:
    small = {f"model.{k}": json.dumps(v) for k, v in registry.model(plugin).quick_config.items()}
    cfg = load_config(None, quick_overrides(steps, **small, **extra) + [f'name="{name}"', f'run_dir="{tmp_path}"'],
                      registry, plugin=plugin)
    return execute(cfg, registry, show_progress=False, final_eval=False).run_dir


def test_precision_setting_accepts_numbers_and_text(registry) -> None:
    for value in ("32", '"32"'):
        assert load_config(None, [f"train.precision={value}"], registry, plugin="igapt").run.train.precision == "32"
    with pytest.raises(ValueError, match="precision"):
        load_config(None, ['train.precision="fp8"'], registry, plugin="igapt")


@pytest.mark.parametrize("plugin", ["igapt", "omnijet"])
def test_bf16_mixed_precision_trains_with_fp32_weights(registry, tmp_path: Path, plugin: str) -> None:
    run = train(registry, tmp_path, "bf16", plugin, **{"train.precision": '"bf16-mixed"'})
    weights = load_checkpoint(run)["model"]
    assert all(w.dtype in (torch.float32, torch.bool, torch.int64) for w in weights.values())
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())


def test_bf16_autocast_runs_matrix_products_in_bf16_on_the_cpu() -> None:
    layer = nn.Linear(4, 4)
    with precision.autocast(torch.device("cpu"), "bf16-mixed"):
        assert layer(torch.randn(2, 4)).dtype == torch.bfloat16
    with precision.autocast(torch.device("cpu"), "32"):
        assert layer(torch.randn(2, 4)).dtype == torch.float32


def test_compile_wraps_the_networks_and_gives_the_same_training(registry, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The wiring of ``train.compile`` (with torch.compile's eager backend: no code generation, which takes
    minutes on a CPU): the generator and the critic are compiled in place, checkpoints keep their keys,
    and the weights are those of the uncompiled run."""
    monkeypatch.setattr(precision, "COMPILE_BACKEND", "eager")
    plain = load_checkpoint(train(registry, tmp_path, "plain"))["model"]
    compiled = load_checkpoint(train(registry, tmp_path, "compiled", **{"train.compile": "true"}))["model"]
    assert plain.keys() == compiled.keys()
    for key in plain:
        torch.testing.assert_close(plain[key], compiled[key])


def test_compile_skips_a_critic_that_takes_a_gradient_penalty(registry) -> None:
    from pcgen.models import AdversarialModel

    class Tiny(AdversarialModel):
        pass

    model = Tiny(nn.Linear(2, 2), nn.Linear(2, 1))
    names = precision.compile_submodules(model, skip=("critic",))
    assert names == ["generator"]


def test_sampling_runs_in_inference_mode_and_bf16(registry, tmp_path: Path) -> None:
    from pcgen.sampling import load_trained

    run = train(registry, tmp_path, "sample")
    trained = load_trained(run, registry)
    seen: list[bool] = []
    original = trained.model.sample

    def watched(mask, cond):  # noqa: ANN001, ANN202
        seen.append(torch.is_inference_mode_enabled())
        return original(mask, cond)

    trained.model.sample = watched  # type: ignore[method-assign]
    plain = trained.generate(50, batch_size=None, seed=3)
    assert seen and all(seen)
    again = trained.generate(50, batch_size=None, seed=3)
    assert (plain.points == again.points).all()  # reproducible
    assert len(trained.generate(50, batch_size=16, seed=3)) == 50
    low = trained.generate(50, seed=3, precision="bf16-mixed")
    assert low.points.shape == plain.points.shape and torch.isfinite(torch.from_numpy(low.points)).all()


# ------------------------------------------------------------------------------------------------
# Masking by bitwise AND, attention of a few queries, cache-sized CPU generation
# ------------------------------------------------------------------------------------------------


def test_keep_where_zeros_nan_and_inf_in_value_and_gradient_and_differentiates_twice() -> None:
    from pcgen.nn import apply_mask, keep_where

    torch.manual_seed(2)
    mask = torch.rand(6, 9) > 0.4
    for dtype in (torch.float32, torch.float64, torch.bfloat16, torch.float16):
        x = torch.randn(6, 9, 4).to(dtype)
        x[~mask] = float("nan")
        x[~mask & (torch.arange(9) % 2 == 0)] = float("inf")
        out = apply_mask(x, mask)
        assert out.dtype == dtype and torch.equal(out[mask], x[mask])
        assert (out[~mask] == 0).all() and not torch.signbit(out[~mask]).any()  # +0.0 exactly
    x = torch.randn(6, 9, 4, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda t: keep_where(t, mask.unsqueeze(-1)), (x,))
    torch.autograd.gradgradcheck(lambda t: keep_where(t, mask.unsqueeze(-1)) ** 2, (x,))
    (grad,) = torch.autograd.grad(apply_mask(x, mask).sum(), x)
    assert torch.equal(grad, mask.unsqueeze(-1).expand_as(grad).to(grad.dtype))
    ints = torch.arange(12).view(2, 6)
    assert torch.equal(keep_where(ints, ints % 2 == 0), torch.where(ints % 2 == 0, ints, 0))


@pytest.mark.parametrize("n_query", [1, 2])
def test_few_query_attention_is_plain_multihead_attention(n_query: int) -> None:
    from pcgen.nn import MaskedMultiheadAttention

    torch.manual_seed(3)
    att = MaskedMultiheadAttention(64, 4, kv_dim=48).double()
    assert att.num_heads * n_query * 4 <= att.dim  # the few-query path is taken
    reference = nn.MultiheadAttention(64, 4, kdim=48, vdim=48, batch_first=True).double()
    with torch.no_grad():
        reference.q_proj_weight.copy_(att.q_proj.weight)
        reference.k_proj_weight.copy_(att.k_proj.weight)
        reference.v_proj_weight.copy_(att.v_proj.weight)
        reference.in_proj_bias.copy_(torch.cat([att.q_proj.bias, att.k_proj.bias, att.v_proj.bias]))
        reference.out_proj.weight.copy_(att.out_proj.weight)
        reference.out_proj.bias.copy_(att.out_proj.bias)
    query = torch.randn(8, n_query, 64, dtype=torch.float64)
    key = torch.randn(8, 30, 48, dtype=torch.float64)
    mask = torch.rand(8, 30) > 0.4
    mask[1] = False  # an empty cloud: zero output
    mask[0] = True
    key_with_garbage = key.masked_fill(~mask.unsqueeze(-1), float("nan"))
    out = att(query, key_with_garbage, mask)
    expected = reference(query, key, key, key_padding_mask=~(mask | ~mask.any(1, keepdim=True)))[0]
    expected[1] = 0
    assert torch.allclose(out, expected, atol=1e-12)
    out.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in att.parameters())


def test_a_query_shared_by_the_batch_is_projected_once_with_the_same_result_and_gradient() -> None:
    from pcgen.nn import MaskedMultiheadAttention

    torch.manual_seed(4)
    att = MaskedMultiheadAttention(16, 2).double()
    seeds = torch.randn(1, 12, 16, dtype=torch.float64, requires_grad=True)
    key, mask = torch.randn(5, 7, 16, dtype=torch.float64), torch.rand(5, 7) > 0.3
    shared = att(seeds.expand(5, -1, -1), key, mask)
    (g_shared,) = torch.autograd.grad(shared.sum(), seeds)
    copied = att(seeds.expand(5, -1, -1).contiguous(), key, mask)
    (g_copied,) = torch.autograd.grad(copied.sum(), seeds)
    assert torch.allclose(shared, copied, atol=1e-12) and torch.allclose(g_shared, g_copied, atol=1e-12)


def test_generation_on_the_cpu_runs_in_cache_sized_passes() -> None:
    from pcgen.sampling import CPU_PASS_PARTICLES, largest_batch

    cpu = torch.device("cpu")
    assert largest_batch(cpu, 10_000, 30) == CPU_PASS_PARTICLES // 30
    assert largest_batch(cpu, 10_000, 150) == CPU_PASS_PARTICLES // 150
    assert largest_batch(cpu, 5, 30) == 5 and largest_batch(cpu, 10, 10_000) == 1
    assert largest_batch(torch.device("cuda"), 10_000_000, 30) == 65_536


@pytest.mark.parametrize("p", [0.1, 0.2, 0.375, 0.5, 0.9])
def test_dropout_keep_rate_any_shape_and_seeded(p: float) -> None:
    x = torch.ones(1001, 337)  # a size that is not a multiple of the four values per random word
    torch.manual_seed(7)
    first = dropout(x, p)
    torch.manual_seed(7)
    assert torch.equal(dropout(x, p), first)  # torch's generator decides: seeded runs repeat
    kept = first != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 4e-3
    assert torch.allclose(first[kept], torch.full_like(first[kept], 1 / (1 - p)))
    rows, cols = kept.float().mean(1), kept.float().mean(0)  # no structure along either axis
    assert rows.std() < 0.05 and cols.std() < 0.05


def test_small_attention_by_batched_products_equals_the_fused_kernel() -> None:
    import torch.nn.functional as F

    from pcgen.nn.attention import SMALL_ATTENTION, scaled_dot_product

    torch.manual_seed(8)
    for n_query, n_key, padded in [(20, 30, True), (30, 20, False), (1, 7, True)]:
        assert n_query * n_key <= SMALL_ATTENTION
        q, k, v = (torch.randn(5, 4, n, 8, dtype=torch.float64, requires_grad=True)
                   for n in (n_query, n_key, n_key))
        key_padding = (torch.rand(5, n_key) > 0.6) if padded else None
        if key_padding is not None:
            key_padding[:, 0] = False
        ours = scaled_dot_product(q, k, v, key_padding)
        attend = None if key_padding is None else ~key_padding[:, None, None, :]
        fused = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)
        assert torch.allclose(ours, fused, atol=1e-12)
        g = torch.randn_like(ours)
        assert all(torch.allclose(a, b, atol=1e-12) for a, b in zip(
            torch.autograd.grad(ours, (q, k, v), g), torch.autograd.grad(fused, (q, k, v), g), strict=True))


def test_mean_field_point_update_equals_the_concatenated_linear_layer() -> None:
    from pcgen.nn import MeanFieldBlock, apply_mask

    torch.manual_seed(9)
    block = MeanFieldBlock(16, 48, 16, cond_dim=1).double()
    x, field = torch.randn(4, 30, 16, dtype=torch.float64), torch.randn(4, 16, dtype=torch.float64)
    mask, cond = torch.rand(4, 30) > 0.3, torch.rand(4, 1, dtype=torch.float64)
    out, _ = block(x, field, mask, cond)
    xm = apply_mask(x, mask)  # the block as written in the paper: W a([h, m]) on every point
    h = block.point_in(block.act(xm))
    m = block.condition(block.attention(block.query_norm(block.point_in(block.act(field))), h, mask), cond)
    expected = apply_mask(xm + block.point_out(block.act(torch.cat([h, m.unsqueeze(1).expand_as(h)], -1))), mask)
    assert torch.allclose(out, expected, atol=1e-12)


def test_inducing_points_shared_by_the_batch_attend_as_plain_attention() -> None:
    from pcgen.nn import MaskedMultiheadAttention

    torch.manual_seed(10)
    att = MaskedMultiheadAttention(64, 4).double()
    inducing = torch.randn(1, 20, 64, dtype=torch.float64, requires_grad=True)
    key = torch.randn(6, 30, 64, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(6, 30) > 0.4
    mask[1] = False  # an empty cloud
    shared = att(inducing.expand(6, -1, -1), key, mask)  # the shared-query path
    copied = att(inducing.expand(6, -1, -1).clone(), key, mask)  # the plain path
    assert torch.allclose(shared, copied, atol=1e-12) and (shared[1] == 0).all()
    g_shared = torch.autograd.grad(shared.square().sum(), [inducing, key, *att.parameters()])
    g_copied = torch.autograd.grad(copied.square().sum(), [inducing, key, *att.parameters()])
    assert all(torch.allclose(a, b, atol=1e-12) for a, b in zip(g_shared, g_copied, strict=True))


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_cpu_memory_is_reused_without_new_page_faults() -> None:
    import resource

    from pcgen.runtime.cpu_memory import keep_freed_memory

    if not keep_freed_memory():
        pytest.skip("the C library is not glibc")
    assert keep_freed_memory()  # done once, the answer kept
    for _ in range(2):  # 64 MiB, freed at once: with glibc's defaults munmap'ed every time
        torch.ones(16 << 20)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):  # mostly the same memory again (16,384 fresh pages each time if not)
        torch.ones(16 << 20)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 5 * 16384
