"""Tests of the MDMA plugin: config, registration, generator, critic and mean-field matching."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
import torch
from pydantic import ValidationError
from torch import Tensor

pytest.importorskip("pcgen_mdma")

from pcgen import DataInfo, ModelSpec
from pcgen.nn import mask_from_multiplicity
from pcgen.plugins import contract_accepts, load_registry
from pcgen.train.adversarial import AdversarialConfig, AdversarialRecipe
from pcgen.train.recipe import Batch
from pcgen_mdma import MDMAConfig, MDMACritic, MDMAGenerator, MDMAModel, build
from pcgen_mdma import plugin as mdma_plugin

F = 3
FEATURES = ("eta_rel", "phi_rel", "pt_rel")
SMALL = {"generator_blocks": 2, "generator_hidden": 16, "generator_heads": 4, "critic_hidden": 16, "critic_heads": 4}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def model() -> MDMAModel:
    torch.manual_seed(1)
    return build(MDMAConfig(), DataInfo(30, FEATURES)).eval()


def jets(n: int = 30) -> tuple[Tensor, Tensor]:
    """Masks of multiplicity n, n // 2 + 2, 1, 0, 9 (full, partial, single, empty) and n / N."""
    counts = torch.tensor([n, n // 2 + 2, 1, 0, 9])
    return mask_from_multiplicity(counts, n), (counts.float() / n).unsqueeze(1)


def scramble(x: Tensor, mask: Tensor, value: float | None = None) -> Tensor:
    fill = torch.full_like(x, value) if value is not None else 100 * torch.randn_like(x)
    return torch.where(mask.unsqueeze(-1), x, fill)


def batch(size: int = 16, n: int = 30, shift: float = 0.0) -> Batch:
    counts = torch.randint(1, n + 1, (size,))
    mask = mask_from_multiplicity(counts, n)
    x = (torch.randn(size, n, F) + shift) * mask.unsqueeze(-1)
    return Batch(x, mask, (counts.float() / n).unsqueeze(1))


# --- config and registration -------------------------------------------------------------------


def test_config_defaults_follow_the_paper_and_reference() -> None:
    cfg = MDMAConfig()
    gen = (cfg.generator_blocks, cfg.generator_latent_dim, cfg.generator_hidden, cfg.generator_heads)
    crit = (cfg.critic_blocks, cfg.critic_latent_dim, cfg.critic_hidden, cfg.critic_heads)
    assert gen == (7, 16, 48, 16) and crit == (2, 16, 64, 16)
    assert (cfg.critic_normalization, cfg.critic_attention) == ("weight", "dot")
    assert (cfg.mean_field_loss_steps, cfg.mean_field_loss_weight, cfg.mean_field_matching) == (50_000, 1.0, "paired")
    assert cfg.negative_slope == 0.01 and cfg.head_hidden == 64
    assert all(f.description for f in MDMAConfig.model_fields.values())


@pytest.mark.parametrize(
    "bad",
    [
        {"unknown": 1},
        {"generator_blocks": 0},
        {"generator_hidden": 50},
        {"critic_hidden": 30, "critic_heads": 4},
        {"critic_normalization": "batch"},
        {"critic_attention": "cosine"},
        {"mean_field_loss_weight": -1.0},
        {"mean_field_matching": "fid"},
    ],
)
def test_config_rejects_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        MDMAConfig(**bad)  # type: ignore[arg-type]


def test_plugin_registers_the_model_spec() -> None:
    assert contract_accepts(mdma_plugin.PCGEN_CONTRACT)
    (spec,) = mdma_plugin.pcgen_register_models()
    assert isinstance(spec, ModelSpec) and spec.name == "mdma" and spec.recipe == "adversarial"
    assert spec.config_class is MDMAConfig
    assert spec.recipe_defaults == {
        "loss": "ls", "optimizer": "adam", "betas": (0.0, 0.999), "lr_generator": 1e-4, "lr_critic": 1e-4,
        "warmup_steps": 2000, "schedule": "cosine",
    }
    AdversarialConfig(**spec.recipe_defaults)  # valid recipe settings
    assert spec.train_defaults == {"batch_size": 128}
    assert (spec.multiplicity, spec.preprocessing) == ("kde", "standard")
    assert "2305.15254" in spec.paper and spec.permutation_equivariant and spec.critic_permutation_invariant
    MDMAConfig(**spec.quick_config)
    info = DataInfo(30, FEATURES)
    assert isinstance(spec.build(MDMAConfig(**SMALL), info), MDMAModel)
    assert isinstance(load_registry().build_model(spec, SMALL, info), MDMAModel)  # the core validates a dict
    names = {ep.name: ep.value for ep in entry_points(group="pcgen.plugins")}
    assert names.get("mdma") == "pcgen_mdma.plugin"


def test_parameter_counts(model: MDMAModel, capsys: pytest.CaptureFixture[str]) -> None:
    gen = sum(p.numel() for p in model.generator.parameters())
    critic = sum(p.numel() for p in model.critic.parameters())
    with capsys.disabled():
        print(f"\nMDMA parameters at defaults (N=30, F={F}): generator {gen:,}, critic {critic:,} (paper: 111k / 55k)")
    assert 90_000 < gen < 130_000 and 45_000 < critic < 65_000
    assert all(p.requires_grad for p in model.parameters())


# --- generator ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [30, 150])
def test_generator_shapes_padding_and_symmetry(model: MDMAModel, n: int) -> None:
    gen, (mask, cond) = model.generator, jets(n)
    (noise,) = gen.sample_noise(mask)
    assert noise.shape == (5, n, F)
    x = gen.forward_from_noise((noise,), mask, cond)
    assert x.shape == (5, n, F) and torch.isfinite(x).all()
    assert (x[~mask] == 0).all() and x[mask].abs().sum() > 0
    assert torch.allclose(gen.forward_from_noise((scramble(noise, mask),), mask, cond), x, atol=1e-5)
    perm = torch.randperm(n)
    assert torch.allclose(gen.forward_from_noise((noise[:, perm],), mask[:, perm], cond), x[:, perm], atol=1e-5)


def test_generator_starts_near_the_data_scale(model: MDMAModel) -> None:
    mask = torch.ones(64, 30, dtype=torch.bool)
    x = model.generator(mask, torch.ones(64, 1))
    assert 0.3 < x.std().item() < 3  # standardised data have unit variance


def test_generator_is_seeded_by_torch_rng(model: MDMAModel) -> None:
    mask, cond = jets()
    torch.manual_seed(7)
    a = model.generator(mask, cond)
    torch.manual_seed(7)
    assert torch.equal(a, model.generator.forward_from_noise(model.generator.sample_noise(mask), mask, cond))
    assert not torch.equal(a, model.generator(mask, cond))


def test_generator_nan_padded_noise_is_harmless() -> None:
    gen = MDMAGenerator(MDMAConfig(**SMALL), F, cond_dim=1)
    mask, cond = jets()
    (noise,) = gen.sample_noise(mask)
    out = gen.forward_from_noise((scramble(noise, mask, float("nan")),), mask, cond)
    assert torch.allclose(out, gen.forward_from_noise((noise,), mask, cond), atol=1e-6)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in gen.parameters())


def test_generator_uses_condition_and_other_particles(model: MDMAModel) -> None:
    gen, (mask, cond) = model.generator, jets()
    (noise,) = gen.sample_noise(mask)
    a = gen.forward_from_noise((noise,), mask, cond)
    assert not torch.allclose(a[mask], gen.forward_from_noise((noise,), mask, cond + 0.3)[mask], atol=1e-4)
    moved = noise.clone()
    moved[0, 0] += 3.0
    assert not torch.allclose(a[0, 1:], gen.forward_from_noise((moved,), mask, cond)[0, 1:], atol=1e-6)
    with pytest.raises(ValueError, match="cond"):
        gen(mask, None)
    assert MDMAGenerator(MDMAConfig(**SMALL), F, cond_dim=0)(mask).shape == (5, 30, F)


# --- critic ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [30, 150])
def test_critic_raw_score_ignores_padding_and_order(model: MDMAModel, n: int) -> None:
    critic, (mask, cond) = model.critic, jets(n)
    x = torch.randn(5, n, F) * mask.unsqueeze(-1)
    score = critic(x, mask, cond)
    assert score.shape == (5,) and torch.isfinite(score).all()  # the empty jet included
    assert torch.allclose(critic(scramble(x, mask, float("nan")), mask, cond), score, atol=1e-5)
    perm = torch.randperm(n)
    assert torch.allclose(critic(x[:, perm], mask[:, perm], cond), score, atol=1e-5)
    assert not torch.allclose(critic(x, mask, cond + 0.3), score, atol=1e-6)


def test_critic_returns_its_final_mean_field(model: MDMAModel) -> None:
    critic, (mask, cond) = model.critic, jets()
    x = torch.randn(5, 30, F) * mask.unsqueeze(-1)
    score, field = critic.forward_with_mean_field(x, mask, cond)
    assert field.shape == (5, 16) and torch.equal(score, critic(x, mask, cond))
    assert torch.equal(field, critic.mean_field(x, mask, cond))


@pytest.mark.parametrize(
    "options",
    [{"critic_normalization": "spectral", "critic_attention": "l2"}, {"critic_normalization": "none"},
     {"critic_attention": "l2"}],
)
def test_critic_variants(options: dict[str, str]) -> None:
    critic = MDMACritic(MDMAConfig(**SMALL, **options), F, cond_dim=1).eval()
    mask, cond = jets()
    x = torch.randn(5, 30, F) * mask.unsqueeze(-1)
    score = critic(x, mask, cond)
    perm = torch.randperm(30)
    assert torch.allclose(critic(scramble(x, mask), mask, cond), score, atol=1e-5)
    assert torch.allclose(critic(x[:, perm], mask[:, perm], cond), score, atol=1e-5)
    parametrized = any(hasattr(m, "parametrizations") for m in critic.modules())
    assert parametrized == (options.get("critic_normalization", "weight") != "none")


# --- deep mean-field matching ------------------------------------------------------------------


def test_mean_field_loss_is_applied_only_for_the_first_steps() -> None:
    adv = build(MDMAConfig(**{**SMALL, "mean_field_loss_steps": 10, "mean_field_loss_weight": 2.0}), DataInfo(30, FEATURES))
    real = batch()
    fake = adv.generator(real.mask, real.cond)
    losses = adv.generator_extra_losses(real, fake, step=9)
    assert set(losses) == {"mean_field"} and losses["mean_field"].ndim == 0
    assert torch.allclose(losses["mean_field"], 2.0 * adv.mean_field_loss(real, fake))
    assert adv.generator_extra_losses(real, fake, step=10) == {}
    off = build(MDMAConfig(**{**SMALL, "mean_field_loss_weight": 0.0}), DataInfo(30, FEATURES))
    assert off.generator_extra_losses(real, fake, step=0) == {}


def test_mean_field_loss_real_side_is_detached() -> None:
    adv = build(MDMAConfig(**SMALL), DataInfo(30, FEATURES))
    real = batch()
    real.x.requires_grad_(True)
    fake = adv.generator(real.mask, real.cond)
    loss = adv.mean_field_loss(real, fake)
    (grad_real,) = torch.autograd.grad(loss, real.x, retain_graph=True, allow_unused=True)
    assert grad_real is None  # no gradient path through the real clouds' mean-field
    critic_params = list(adv.critic.parameters())
    grads = torch.autograd.grad(loss, critic_params, retain_graph=True, allow_unused=True)
    target = adv.critic.mean_field(real.x, real.mask, real.cond).detach()
    manual = ((adv.critic.mean_field(fake, real.mask, real.cond) - target) ** 2).mean()
    for g, m in zip(grads, torch.autograd.grad(manual, critic_params, allow_unused=True), strict=True):
        assert (g is None and m is None) or torch.allclose(g, m, atol=1e-6)


@pytest.mark.parametrize("matching", ["paired", "mean"])
def test_mean_field_loss_decreases_when_optimised(matching: str) -> None:
    adv = build(MDMAConfig(**{**SMALL, "mean_field_matching": matching}), DataInfo(30, FEATURES))
    real = batch(32, shift=1.0)
    for p in adv.critic.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(adv.generator.parameters(), lr=3e-3)
    torch.manual_seed(3)
    noise = adv.generator.sample_noise(real.mask)

    def loss() -> Tensor:
        return adv.mean_field_loss(real, adv.generator.forward_from_noise(noise, real.mask, real.cond))

    first = loss().item()
    for _ in range(40):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert loss().item() < 0.5 * first


def test_adversarial_recipe_logs_and_trains_with_the_matching_loss() -> None:
    adv = build(MDMAConfig(**{**SMALL, "mean_field_loss_steps": 2}), DataInfo(30, FEATURES))
    recipe = AdversarialRecipe(adv, AdversarialConfig(**{**mdma_plugin.SPEC.recipe_defaults, "warmup_steps": 1}))
    before = [p.detach().clone() for p in adv.parameters()]
    logs = [recipe.training_step(batch(), step, step / 3) for step in range(3)]
    assert "loss/mean_field" in logs[0] and "loss/mean_field" in logs[1] and "loss/mean_field" not in logs[2]
    assert all(v == v for log in logs for v in log.values())  # no NaN
    assert all(not torch.equal(b, p) for b, p in zip(before, adv.parameters(), strict=True))


def test_matching_reuses_the_recipes_critic_passes() -> None:
    """One recipe step runs the critic 3 times (real, fake for D, fake for G), not 5, and forgets them."""
    adv = build(MDMAConfig(**SMALL), DataInfo(30, FEATURES))
    calls: list[int] = []
    adv.critic.encoder.register_forward_hook(lambda *_: calls.append(1))
    recipe = AdversarialRecipe(adv, AdversarialConfig(**mdma_plugin.SPEC.recipe_defaults))
    logs = recipe.training_step(batch(), 0, 0.0)
    assert len(calls) == 3 and "loss/mean_field" in logs and not adv.critic.recent.entries


def test_reused_mean_fields_equal_fresh_ones_and_are_never_copied() -> None:
    import copy
    import pickle

    adv = build(MDMAConfig(**SMALL), DataInfo(30, FEATURES)).train()
    real = batch()
    fake = adv.generator(real.mask, real.cond)
    fresh = adv.mean_field_loss(real, fake)
    real.x.requires_grad_(True)
    adv.critic(real.x, real.mask, real.cond)
    adv.critic(fake, real.mask, real.cond)
    assert len(adv.critic.recent.entries) == 2
    reused = adv.mean_field_loss(real, fake)
    assert torch.allclose(reused, fresh, atol=1e-6)
    assert torch.autograd.grad(reused, real.x, allow_unused=True) == (None,)  # the reused target is detached
    assert not copy.deepcopy(adv).critic.recent.entries
    assert not pickle.loads(pickle.dumps(adv.critic.recent)).entries
    adv.eval()
    adv.critic(real.x, real.mask, real.cond)
    assert len(adv.critic.recent.entries) == 2  # only training-mode passes are recorded
