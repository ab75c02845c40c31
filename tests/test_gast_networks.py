"""Tests of the GAST plugin: config, registration, generator and discriminator."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
import torch
from pydantic import ValidationError
from torch import Tensor

pytest.importorskip("pcgen_gast")

from pcgen import AdversarialModel, DataInfo, ModelSpec
from pcgen.nn import mask_from_multiplicity, masked_mean
from pcgen.plugins import contract_accepts, load_registry
from pcgen_gast import GASTConfig, GASTDiscriminator, GASTGenerator, build
from pcgen_gast import plugin as gast_plugin

F = 3
FEATURES = ("eta_rel", "phi_rel", "pt_rel")
SMALL = {"embed_dim": 16, "num_heads": 2, "generator_blocks": 2, "discriminator_blocks": 2, "num_inducing": 4}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def model() -> AdversarialModel:
    """Defaults, built for N = 30; GAST has no parameter tied to N, so it also runs at N = 150."""
    torch.manual_seed(1)
    return build(GASTConfig(), DataInfo(30, FEATURES)).eval()


def jets(n: int = 30) -> tuple[Tensor, Tensor]:
    """Masks of a full, partial, single-particle, empty and small jet, and cond = count / N."""
    counts = torch.tensor([n, n // 2 + 2, 1, 0, 9])
    mask = mask_from_multiplicity(counts, n)
    return mask, (counts.float() / n).unsqueeze(1)


def scramble_padding(x: Tensor, mask: Tensor, nan: bool = False) -> Tensor:
    junk = torch.full_like(x, float("nan")) if nan else 100 * torch.randn_like(x)
    return torch.where(mask.unsqueeze(-1), x, junk)


# --- config and registration -------------------------------------------------------------------


def test_config_defaults_follow_the_paper() -> None:
    cfg = GASTConfig()
    assert (cfg.generator_blocks, cfg.discriminator_blocks, cfg.num_inducing) == (3, 6, 20)
    assert (cfg.discriminator_dropout, cfg.discriminator_layer_norm) == (0.5, True)
    assert (cfg.embed_dim, cfg.num_heads, cfg.pooling_seeds) == (64, 4, 1)
    assert cfg.condition_on_multiplicity
    assert all(f.description for f in GASTConfig.model_fields.values())


@pytest.mark.parametrize(
    "bad",
    [
        {"unknown": 1},
        {"generator_blocks": 0},
        {"discriminator_blocks": 0},
        {"num_inducing": 0},
        {"embed_dim": 30, "num_heads": 4},
        {"discriminator_dropout": 1.0},
        {"particle_noise_std": 0.0},
        {"latent_dim": 0},
        {"ff_hidden": [0]},
    ],
)
def test_config_rejects_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        GASTConfig(**bad)  # type: ignore[arg-type]


def test_plugin_registers_the_model_spec() -> None:
    assert contract_accepts(gast_plugin.PCGEN_CONTRACT)
    (spec,) = gast_plugin.pcgen_register_models()
    assert isinstance(spec, ModelSpec) and spec.name == "gast"
    assert spec.config_class is GASTConfig and spec.recipe == "adversarial"
    assert spec.recipe_defaults == {"loss": "ls", "optimizer": "rmsprop", "lr_generator": 0.5e-4, "lr_critic": 1.5e-4}
    assert spec.train_defaults == {"batch_size": 128} and "Stelzner" in spec.paper
    assert spec.permutation_equivariant and spec.critic_permutation_invariant
    info = DataInfo(30, FEATURES)
    assert isinstance(spec.build(GASTConfig(**spec.quick_config), info), AdversarialModel)
    assert isinstance(load_registry().build_model(spec, SMALL, info), AdversarialModel)  # the core validates a dict
    names = {ep.name: ep.value for ep in entry_points(group="pcgen.plugins")}
    assert names.get("gast") == "pcgen_gast.plugin"


@pytest.mark.parametrize("n", [30, 150])
def test_parameter_counts(n: int, capsys: pytest.CaptureFixture[str]) -> None:
    adv = build(GASTConfig(), DataInfo(n, FEATURES))
    gen = sum(p.numel() for p in adv.generator.parameters())
    disc = sum(p.numel() for p in adv.critic.parameters())
    with capsys.disabled():
        print(f"\nGAST parameters at defaults (N={n}, F={F}): generator {gen:,}, discriminator {disc:,}")
    assert 50_000 < gen < 1_000_000 and 100_000 < disc < 2_000_000
    assert all(p.requires_grad for p in adv.parameters())


# --- generator ---------------------------------------------------------------------------------


def test_generator_shapes_range_and_padding(model: AdversarialModel) -> None:
    for num in (30, 150):
        mask, cond = jets(num)
        x = model.generator(mask, cond)
        assert x.shape == (5, num, F) and torch.isfinite(x).all()  # empty jet included
        assert (x[~mask] == 0).all() and x.abs().max() <= 1
        assert x[mask].abs().sum() > 0


def test_generator_is_seeded_by_torch_rng(model: AdversarialModel) -> None:
    mask, cond = jets()
    torch.manual_seed(7)
    a = model.generator(mask, cond)
    torch.manual_seed(7)
    noise = model.generator.sample_noise(mask)
    assert noise[0].shape == (5, 30, 16) and noise[1].shape == (5, 64)
    assert torch.equal(a, model.generator.forward_from_noise(noise, mask, cond))
    assert not torch.equal(a, model.generator(mask, cond))


def test_generator_ignores_padded_noise(model: AdversarialModel) -> None:
    mask, cond = jets()
    pn, zn = model.generator.sample_noise(mask)
    a = model.generator.forward_from_noise((pn, zn), mask, cond)
    b = model.generator.forward_from_noise((scramble_padding(pn, mask), zn), mask, cond)
    assert torch.allclose(a, b, atol=1e-5)
    # extra padded slots at the end change nothing for the real particles
    pad = torch.zeros(5, 4, dtype=torch.bool)
    more_noise = torch.cat([pn, torch.randn(5, 4, 16)], 1)
    c = model.generator.forward_from_noise((more_noise, zn), torch.cat([mask, pad], 1), cond)
    assert torch.allclose(c[:, :30], a, atol=1e-5) and (c[:, 30:] == 0).all()


def test_generator_nan_padded_noise_is_harmless() -> None:
    gen = GASTGenerator(GASTConfig(**SMALL), F, cond_dim=1)
    mask, cond = jets()
    pn, zn = gen.sample_noise(mask)
    out = gen.forward_from_noise((scramble_padding(pn, mask, nan=True), zn), mask, cond)
    assert torch.allclose(out, gen.forward_from_noise((pn, zn), mask, cond), atol=1e-6)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in gen.parameters())


def test_generator_permutation_equivariance(model: AdversarialModel) -> None:
    mask, cond = jets()
    pn, zn = model.generator.sample_noise(mask)
    perm = torch.randperm(30)
    a = model.generator.forward_from_noise((pn, zn), mask, cond)
    b = model.generator.forward_from_noise((pn[:, perm], zn), mask[:, perm], cond)
    assert torch.allclose(b, a[:, perm], atol=1e-5)


def test_latent_and_condition_reach_every_particle(model: AdversarialModel) -> None:
    mask, cond = jets()
    pn, zn = model.generator.sample_noise(mask)
    a = model.generator.forward_from_noise((pn, zn), mask, cond)
    new_z = model.generator.forward_from_noise((pn, torch.randn_like(zn)), mask, cond)
    new_cond = model.generator.forward_from_noise((pn, zn), mask, cond + 0.5)
    for b in (new_z, new_cond):  # the concatenated global feature moves every real particle
        assert ((a - b).abs().amax(-1) > 1e-6)[mask].all()
    # the particles interact: changing one real particle's noise moves the others
    pn2 = pn.clone()
    pn2[0, 0] += 3.0
    b = model.generator.forward_from_noise((pn2, zn), mask, cond)
    assert ((a[0, 1:] - b[0, 1:]).abs().amax(-1) > 1e-7).all()


def _global_inputs(blocks: torch.nn.ModuleList) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Register hooks recording each block's (x, g, mask) inputs."""
    records: list[tuple[Tensor, Tensor, Tensor]] = []
    for block in blocks:
        block.register_forward_hook(lambda _m, args, _out: records.append(args))
    return records


def test_global_feature_is_latent_then_masked_pooling() -> None:
    adv = build(GASTConfig(**{**SMALL, "generator_blocks": 3, "discriminator_blocks": 3}), DataInfo(30, FEATURES))
    adv.eval()
    mask, cond = jets()
    records = _global_inputs(adv.generator.blocks)
    pn, zn = adv.generator.sample_noise(mask)
    adv.generator.forward_from_noise((pn, zn), mask, cond)
    assert len(records) == 3
    assert torch.allclose(records[0][1], adv.generator.latent(zn, cond))
    for x, g, m in records[1:]:
        assert torch.allclose(g, masked_mean(x, m))
    records = _global_inputs(adv.critic.blocks)
    adv.critic(torch.randn(5, 30, F), mask, cond)
    assert adv.critic.cond_embed is not None
    c = adv.critic.cond_embed(cond)
    for x, g, m in records:
        assert torch.allclose(g, masked_mean(x, m) + c)


def test_global_concat_projection_matters() -> None:
    """Zeroing the projection of the global feature changes the outputs of every real particle."""
    gen = GASTGenerator(GASTConfig(**SMALL), F).eval()
    mask, cond = jets()
    noise = gen.sample_noise(mask)
    a = gen.forward_from_noise(noise, mask, cond)
    with torch.no_grad():
        for block in gen.blocks:
            block.concat.glob.weight.zero_()
    b = gen.forward_from_noise(noise, mask, cond)
    assert ((a - b).abs().amax(-1) > 1e-6)[mask].all()


def test_generator_requires_condition_when_conditioned() -> None:
    gen = GASTGenerator(GASTConfig(**SMALL), F, cond_dim=1)
    mask, _ = jets()
    with pytest.raises(ValueError, match="cond"):
        gen(mask, None)
    unconditioned = GASTGenerator(GASTConfig(**SMALL, condition_on_multiplicity=False), F, cond_dim=1)
    assert unconditioned(mask, None).shape == (5, 30, F)


# --- discriminator -----------------------------------------------------------------------------


def test_critic_shape_and_raw_score(model: AdversarialModel) -> None:
    for num in (30, 150):
        mask, cond = jets(num)
        x = torch.randn(5, num, F) * mask.unsqueeze(-1)
        score = model.critic(x, mask, cond)
        assert score.shape == (5,) and torch.isfinite(score).all()  # all-padded jet included
    assert not isinstance(list(model.critic.modules())[-1], torch.nn.Sigmoid)


def test_critic_ignores_padding_and_order(model: AdversarialModel) -> None:
    mask, cond = jets()
    x = torch.randn(5, 30, F) * mask.unsqueeze(-1)
    score = model.critic(x, mask, cond)
    assert torch.allclose(model.critic(scramble_padding(x, mask), mask, cond), score, atol=1e-5)
    assert torch.allclose(model.critic(scramble_padding(x, mask, nan=True), mask, cond), score, atol=1e-5)
    perm = torch.randperm(30)
    assert torch.allclose(model.critic(x[:, perm], mask[:, perm], cond), score, atol=1e-5)
    pad = torch.zeros(5, 6, dtype=torch.bool)
    longer = model.critic(torch.cat([x, torch.randn(5, 6, F)], 1), torch.cat([mask, pad], 1), cond)
    assert torch.allclose(longer, score, atol=1e-5)
    assert not torch.allclose(model.critic(x, mask, cond + 0.3), score, atol=1e-6)


def test_critic_nan_padding_gives_finite_gradients() -> None:
    critic = GASTDiscriminator(GASTConfig(**SMALL), F, cond_dim=1)
    mask, cond = jets()
    x = scramble_padding(torch.randn(5, 30, F), mask, nan=True).requires_grad_(True)
    critic(x, mask, cond).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and (x.grad[~mask] == 0).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in critic.parameters())


def test_critic_dropout_active_in_training_only() -> None:
    critic = GASTDiscriminator(GASTConfig(**SMALL), F, cond_dim=1)
    mask, cond = jets()
    x = torch.randn(5, 30, F) * mask.unsqueeze(-1)
    critic.train()
    assert not torch.allclose(critic(x, mask, cond), critic(x, mask, cond))
    critic.eval()
    assert torch.equal(critic(x, mask, cond), critic(x, mask, cond))
    plain = GASTDiscriminator(GASTConfig(**SMALL, discriminator_layer_norm=False), F)
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in plain.modules())


def test_adversarial_step_gives_gradients_everywhere() -> None:
    adv = build(GASTConfig(**SMALL), DataInfo(30, FEATURES))
    mask, cond = jets()
    fake = adv.generator(mask, cond)
    loss = ((adv.critic(fake, mask, cond) - 1) ** 2).mean()
    loss.backward()
    for name, p in adv.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    sample = adv.sample(mask, cond)
    assert sample.shape == (5, 30, F) and (sample[~mask] == 0).all()


def test_critic_learns_to_separate_a_shift() -> None:
    """A few RMSprop steps through the masked critic separate two simple distributions."""
    critic = GASTDiscriminator(GASTConfig(**SMALL, discriminator_dropout=0.0), F, cond_dim=1)
    counts = torch.randint(1, 31, (64,))
    mask = mask_from_multiplicity(counts, 30)
    cond = (counts.float() / 30).unsqueeze(1)
    real = (0.3 * torch.randn(64, 30, F) + 0.3) * mask.unsqueeze(-1)
    fake = (0.3 * torch.randn(64, 30, F) - 0.3) * mask.unsqueeze(-1)
    opt = torch.optim.RMSprop(critic.parameters(), lr=1e-3)

    def loss_fn() -> Tensor:
        return ((critic(real, mask, cond) - 1) ** 2).mean() + (critic(fake, mask, cond) ** 2).mean()

    first = loss_fn().item()
    for _ in range(30):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    assert loss_fn().item() < 0.5 * first
