"""Tests of the iGAPT plugin: config, registration, generator and discriminator."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
import torch
from pydantic import ValidationError
from torch import Tensor

pytest.importorskip("pcgen_igapt")

import itertools

from pcgen import AdversarialModel, DataInfo, ModelSpec
from pcgen.nn import mask_from_multiplicity
from pcgen.plugins import contract_accepts, load_registry
from pcgen_igapt import IGAPTConfig, IGAPTDiscriminator, IGAPTGenerator, build
from pcgen_igapt import plugin as igapt_plugin

N, F = 30, 3
INFO = DataInfo(max_particles=N, feature_names=("eta_rel", "phi_rel", "pt_rel"), cond_dim=1)
SMALL = {"embed_dim": 16, "num_heads": 2, "generator_blocks": 2, "discriminator_blocks": 2}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def model() -> AdversarialModel:
    torch.manual_seed(1)
    return build(IGAPTConfig(), INFO).eval()


def jets(batch: int = 5) -> tuple[Tensor, Tensor]:
    """Masks of multiplicity 30, 17, 1, 0, 9 (a full, partial, single and empty jet) and n/N."""
    counts = torch.tensor([30, 17, 1, 0, 9])[:batch]
    mask = mask_from_multiplicity(counts, N)
    return mask, (counts.float() / N).unsqueeze(1)


def scramble_padding(x: Tensor, mask: Tensor) -> Tensor:
    return torch.where(mask.unsqueeze(-1), x, 100 * torch.randn_like(x))


# --- config and registration -------------------------------------------------------------------


def test_config_defaults_follow_the_paper() -> None:
    cfg = IGAPTConfig()
    assert (cfg.generator_blocks, cfg.discriminator_blocks) == (4, 8)
    assert (cfg.particle_noise_dim, cfg.jet_noise_dim) == (16, 128)
    assert (cfg.discriminator_dropout, cfg.discriminator_layer_norm) == (0.5, True)
    assert (cfg.embed_dim, cfg.num_heads, cfg.particle_noise_std) == (64, 4, 0.2)
    assert cfg.condition_on_multiplicity and cfg.z_dim == 64
    assert all(f.description for f in IGAPTConfig.model_fields.values())


@pytest.mark.parametrize(
    "bad",
    [
        {"unknown": 1},
        {"generator_blocks": 0},
        {"embed_dim": 30, "num_heads": 4},
        {"global_dim": 6},
        {"discriminator_dropout": 1.0},
        {"particle_noise_std": 0.0},
        {"ff_hidden": [0]},
    ],
)
def test_config_rejects_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        IGAPTConfig(**bad)  # type: ignore[arg-type]


def test_plugin_registers_the_model_spec() -> None:
    assert contract_accepts(igapt_plugin.PCGEN_CONTRACT)
    (spec,) = igapt_plugin.pcgen_register_models()
    assert isinstance(spec, ModelSpec) and spec.name == "igapt"
    assert spec.config_class is IGAPTConfig and spec.recipe == "adversarial"
    assert spec.recipe_defaults == {"loss": "ls", "optimizer": "rmsprop", "lr_generator": 0.5e-4, "lr_critic": 1.5e-4}
    assert spec.preprocessing == "minmax" and "2312.04757" in spec.paper
    assert spec.train_defaults["batch_size"] >= 1
    assert isinstance(spec.build(IGAPTConfig(**SMALL), INFO), AdversarialModel)
    assert isinstance(load_registry().build_model(spec, SMALL, INFO), AdversarialModel)  # the core validates a dict
    names = {ep.name: ep.value for ep in entry_points(group="pcgen.plugins")}
    assert names.get("igapt") == "pcgen_igapt.plugin"


def test_parameter_counts(model: AdversarialModel, capsys: pytest.CaptureFixture[str]) -> None:
    gen = sum(p.numel() for p in model.generator.parameters())
    disc = sum(p.numel() for p in model.critic.parameters())
    with capsys.disabled():
        print(f"\niGAPT parameters at defaults (N={N}, F={F}): generator {gen:,}, discriminator {disc:,}")
    assert 50_000 < gen < 1_000_000 and 50_000 < disc < 2_000_000
    assert all(p.requires_grad for p in model.parameters())


# --- generator ---------------------------------------------------------------------------------


def test_generator_shapes_range_and_padding(model: AdversarialModel) -> None:
    mask, cond = jets()
    x = model.generator(mask, cond)
    assert x.shape == (5, N, F) and torch.isfinite(x).all()
    assert (x[~mask] == 0).all() and x.abs().max() <= 1
    assert x[mask].abs().sum() > 0


def test_generator_is_seeded_by_torch_rng(model: AdversarialModel) -> None:
    mask, cond = jets()
    torch.manual_seed(7)
    a = model.generator(mask, cond)
    torch.manual_seed(7)
    pn, jn = model.generator.sample_noise(mask)
    assert torch.equal(a, model.generator.forward_from_noise((pn, jn), mask, cond))
    assert not torch.equal(a, model.generator(mask, cond))


def test_generator_ignores_padded_noise(model: AdversarialModel) -> None:
    mask, cond = jets()
    pn, jn = model.generator.sample_noise(mask)
    a = model.generator.forward_from_noise((pn, jn), mask, cond)
    b = model.generator.forward_from_noise((scramble_padding(pn, mask), jn), mask, cond)
    assert torch.allclose(a, b, atol=1e-5)
    # extra padded slots at the end change nothing for the real particles
    pad = torch.zeros(5, 4, dtype=torch.bool)
    more_noise = torch.cat([pn, torch.randn(5, 4, 16)], 1)
    c = model.generator.forward_from_noise((more_noise, jn), torch.cat([mask, pad], 1), cond)
    assert torch.allclose(c[:, :N], a, atol=1e-5) and (c[:, N:] == 0).all()


def test_generator_nan_padded_noise_is_harmless() -> None:
    gen = IGAPTGenerator(IGAPTConfig(**SMALL), F, cond_dim=1)
    mask, cond = jets()
    pn, jn = gen.sample_noise(mask)
    bad = torch.where(mask.unsqueeze(-1), pn, torch.tensor(float("nan")))
    out = gen.forward_from_noise((bad, jn), mask, cond)
    assert torch.allclose(out, gen.forward_from_noise((pn, jn), mask, cond), atol=1e-6)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in gen.parameters())


def _block_io(blocks: torch.nn.ModuleList) -> list[tuple[Tensor, Tensor]]:
    """Register hooks recording each block's (z in, z out)."""
    records: list[tuple[Tensor, Tensor]] = []
    for block in blocks:
        block.register_forward_hook(lambda _m, args, out: records.append((args[1], out[1])))
    return records


def test_global_vector_is_carried_from_block_to_block() -> None:
    adv = build(IGAPTConfig(**{**SMALL, "generator_blocks": 3, "discriminator_blocks": 3}), INFO).eval()
    mask, cond = jets()
    for net, call in (
        (adv.generator, lambda: adv.generator(mask, cond)),
        (adv.critic, lambda: adv.critic(torch.randn(5, N, F), mask, cond)),
    ):
        records = _block_io(net.blocks)
        call()
        assert len(records) == 3
        for (_, z_out), (z_in, _) in itertools.pairwise(records):
            assert z_in is z_out


def test_generator_permutation_equivariance(model: AdversarialModel) -> None:
    mask, cond = jets()
    pn, jn = model.generator.sample_noise(mask)
    perm = torch.randperm(N)
    a = model.generator.forward_from_noise((pn, jn), mask, cond)
    b = model.generator.forward_from_noise((pn[:, perm], jn), mask[:, perm], cond)
    assert torch.allclose(b, a[:, perm], atol=1e-5)


def test_generator_uses_noise_and_condition(model: AdversarialModel) -> None:
    mask, cond = jets()
    pn, jn = model.generator.sample_noise(mask)
    a = model.generator.forward_from_noise((pn, jn), mask, cond)
    assert not torch.allclose(a, model.generator.forward_from_noise((pn, jn), mask, cond + 0.5), atol=1e-4)
    assert not torch.allclose(a, model.generator.forward_from_noise((pn, torch.randn_like(jn)), mask, cond), atol=1e-4)
    # the particles interact through z: changing one real particle's noise moves the others
    pn2 = pn.clone()
    pn2[0, 0] += 3.0
    b = model.generator.forward_from_noise((pn2, jn), mask, cond)
    assert not torch.allclose(a[0, 1:], b[0, 1:], atol=1e-6)


def test_generator_requires_condition_when_conditioned() -> None:
    gen = IGAPTGenerator(IGAPTConfig(**SMALL), F, cond_dim=1)
    mask, _ = jets()
    with pytest.raises(ValueError, match="cond"):
        gen(mask, None)
    unconditioned = IGAPTGenerator(IGAPTConfig(**SMALL, condition_on_multiplicity=False), F, cond_dim=1)
    assert unconditioned(mask, None).shape == (5, N, F)


# --- discriminator -----------------------------------------------------------------------------


def test_critic_shape_and_raw_score(model: AdversarialModel) -> None:
    mask, cond = jets()
    x = torch.randn(5, N, F) * mask.unsqueeze(-1)
    score = model.critic(x, mask, cond)
    assert score.shape == (5,) and torch.isfinite(score).all()  # all-padded jet included
    assert not isinstance(list(model.critic.modules())[-1], torch.nn.Sigmoid)


def test_critic_ignores_padding_and_order(model: AdversarialModel) -> None:
    mask, cond = jets()
    x = torch.randn(5, N, F) * mask.unsqueeze(-1)
    score = model.critic(x, mask, cond)
    assert torch.allclose(model.critic(scramble_padding(x, mask), mask, cond), score, atol=1e-5)
    perm = torch.randperm(N)
    assert torch.allclose(model.critic(x[:, perm], mask[:, perm], cond), score, atol=1e-5)
    pad = torch.zeros(5, 6, dtype=torch.bool)
    longer = model.critic(torch.cat([x, torch.randn(5, 6, F)], 1), torch.cat([mask, pad], 1), cond)
    assert torch.allclose(longer, score, atol=1e-5)
    assert not torch.allclose(model.critic(x, mask, cond + 0.3), score, atol=1e-6)


def test_critic_dropout_active_in_training_only() -> None:
    critic = IGAPTDiscriminator(IGAPTConfig(**SMALL), F, N, cond_dim=1)
    mask, cond = jets()
    x = torch.randn(5, N, F) * mask.unsqueeze(-1)
    critic.train()
    assert not torch.allclose(critic(x, mask, cond), critic(x, mask, cond))
    critic.eval()
    assert torch.equal(critic(x, mask, cond), critic(x, mask, cond))


def test_adversarial_step_gives_gradients_everywhere() -> None:
    adv = build(IGAPTConfig(**SMALL), INFO)
    mask, cond = jets()
    fake = adv.generator(mask, cond)
    loss = ((adv.critic(fake, mask, cond) - 1) ** 2).mean()
    loss.backward()
    for name, p in adv.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    sample = adv.sample(mask, cond)
    assert sample.shape == (5, N, F) and (sample[~mask] == 0).all()


def test_critic_learns_to_separate_a_shift() -> None:
    """A few RMSprop steps through the masked critic separate two simple distributions."""
    critic = IGAPTDiscriminator(IGAPTConfig(**SMALL, discriminator_dropout=0.0), F, N, cond_dim=1)
    counts = torch.randint(1, N + 1, (64,))
    mask = mask_from_multiplicity(counts, N)
    cond = (counts.float() / N).unsqueeze(1)
    real = (0.3 * torch.randn(64, N, F) + 0.3) * mask.unsqueeze(-1)
    fake = (0.3 * torch.randn(64, N, F) - 0.3) * mask.unsqueeze(-1)
    opt = torch.optim.RMSprop(critic.parameters(), lr=1e-3)

    def loss_fn() -> Tensor:
        return ((critic(real, mask, cond) - 1) ** 2).mean() + (critic(fake, mask, cond) ** 2).mean()

    first = loss_fn().item()
    for _ in range(30):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    assert loss_fn().item() < 0.5 * first
