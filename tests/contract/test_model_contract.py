"""Contract tests run against every discovered model plugin (add a plugin, get these for free)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ToyDataPlugin, quick_overrides
from scipy.stats import wasserstein_distance

from pcgen import AdversarialModel, DataInfo, ModelSpec, StagedModel
from pcgen.config import load_config
from pcgen.data.multiplicity import jet_condition, mask_for
from pcgen.data.pointclouds import JET_FEATURES
from pcgen.plugins import load_registry
from pcgen.sampling import load_trained, seeded
from pcgen.train.runner import execute

REGISTRY = load_registry(extra_plugins=[ToyDataPlugin()])
MODEL_NAMES = sorted(REGISTRY.models)


@pytest.fixture(params=MODEL_NAMES)
def spec(request: pytest.FixtureRequest) -> ModelSpec:
    return REGISTRY.models[request.param]


@pytest.fixture(params=[30, 150], ids=lambda n: f"N{n}")
def particles(request: pytest.FixtureRequest) -> int:
    """The two JetNet sizes: 30 and 150 particles per jet."""
    return request.param


def build(spec: ModelSpec, particles: int = 30) -> torch.nn.Module:
    with seeded(0):
        return spec.build(spec.config_class(), DataInfo(particles, JET_FEATURES)).eval()


def masks(n: int = 30) -> torch.Tensor:
    """Six clouds of N slots: nearly empty, small, medium, full, and one short of full."""
    counts = torch.tensor([1, 5, 12, n, n // 2 + 2, n - 1])
    return mask_for(counts, n)


def test_there_is_at_least_one_model_plugin() -> None:
    assert MODEL_NAMES, "no model plugin is installed: run scripts/setup.sh"


def test_sample_shapes_and_zero_padding(spec: ModelSpec, particles: int) -> None:
    model, mask = build(spec, particles), masks(particles)
    with torch.no_grad():
        x = model.sample(mask, jet_condition(mask))
    assert x.shape == (6, particles, 3)
    assert torch.isfinite(x).all()
    assert (x[~mask] == 0).all()


def adversarial_part(spec: ModelSpec, model: torch.nn.Module) -> AdversarialModel | None:
    """The generator/critic pair of a model: the model itself, or the stage of a staged model that has one."""
    if isinstance(model, AdversarialModel):
        return model
    if isinstance(model, StagedModel):
        for stage in spec.stages:
            part = model.part(stage.name)
            if isinstance(part, AdversarialModel):
                return part
    return None


def _critic_and_inputs(
    spec: ModelSpec, particles: int
) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    pair = adversarial_part(spec, build(spec, particles))
    if pair is None:
        pytest.skip(f"{spec.name} has no critic")
    mask = masks(particles)
    x = torch.randn(6, particles, 3) * mask.unsqueeze(-1)
    return pair.critic, x, mask, jet_condition(mask)


@pytest.mark.parametrize("loss", ["ls", "vanilla", "wgan-gp"])
def test_every_adversarial_loss_takes_a_finite_step(spec: ModelSpec, loss: str) -> None:
    from pcgen.train.adversarial import AdversarialConfig, AdversarialRecipe
    from pcgen.train.recipe import Batch

    pair = adversarial_part(spec, build(spec))
    if pair is None:
        pytest.skip(f"{spec.name} is not trained adversarially")
    pair.train()
    mask = masks()
    batch = Batch(torch.rand(6, 30, 3) * mask.unsqueeze(-1), mask, jet_condition(mask))
    logs = AdversarialRecipe(pair, AdversarialConfig(loss=loss, warmup_steps=0)).training_step(batch, 0, 0.0)
    assert all(np.isfinite(v) for v in logs.values()), logs


def test_padded_particles_do_not_influence_the_critic(spec: ModelSpec, particles: int) -> None:
    critic, x, mask, cond = _critic_and_inputs(spec, particles)
    garbage = x + 50 * torch.randn_like(x) * (~mask).unsqueeze(-1)
    with torch.no_grad():
        assert torch.allclose(critic(x, mask, cond), critic(garbage, mask, cond), atol=1e-5)


def test_critic_is_permutation_invariant(spec: ModelSpec, particles: int) -> None:
    if not spec.critic_permutation_invariant:
        pytest.skip(f"{spec.name} does not claim a permutation-invariant critic")
    critic, x, mask, cond = _critic_and_inputs(spec, particles)
    perm = torch.randperm(particles)
    with torch.no_grad():
        assert torch.allclose(critic(x, mask, cond), critic(x[:, perm], mask[:, perm], cond), atol=1e-5)


def _noise_api(spec: ModelSpec, particles: int) -> torch.nn.Module:
    pair = adversarial_part(spec, build(spec, particles))
    gen = getattr(pair, "generator", None)
    if gen is None or not hasattr(gen, "sample_noise") or not hasattr(gen, "forward_from_noise"):
        pytest.skip(f"{spec.name} exposes no noise interface (sample_noise / forward_from_noise)")
    return gen


def test_padded_noise_does_not_influence_generated_particles(spec: ModelSpec, particles: int) -> None:
    gen, mask = _noise_api(spec, particles), masks(particles)
    cond = jet_condition(mask)
    noise = gen.sample_noise(mask)
    changed = (noise[0] + 10 * torch.randn_like(noise[0]) * (~mask).unsqueeze(-1), *noise[1:])
    with torch.no_grad():
        a, b = gen.forward_from_noise(noise, mask, cond), gen.forward_from_noise(changed, mask, cond)
    assert torch.allclose(a[mask], b[mask], atol=1e-5)


def test_generator_is_permutation_equivariant(spec: ModelSpec, particles: int) -> None:
    if not spec.permutation_equivariant:
        pytest.skip(f"{spec.name} does not claim permutation equivariance")
    gen, mask = _noise_api(spec, particles), masks(particles)
    cond = jet_condition(mask)
    noise = gen.sample_noise(mask)
    perm = torch.randperm(particles)
    with torch.no_grad():
        out = gen.forward_from_noise(noise, mask, cond)
        permuted = gen.forward_from_noise((noise[0][:, perm], *noise[1:]), mask[:, perm], cond)
    assert torch.allclose(out[:, perm][mask[:, perm]], permuted[mask[:, perm]], atol=1e-5)


def marginal_w1(real: np.ndarray, real_mask: np.ndarray, fake: np.ndarray, fake_mask: np.ndarray) -> float:
    """Mean over features of the 1D Wasserstein distance between real and generated particles."""
    return float(np.mean([wasserstein_distance(real[real_mask][:, i], fake[fake_mask][:, i])
                          for i in range(real.shape[-1])]))


def quick_model(spec: ModelSpec) -> list[str]:
    """``--set`` strings selecting the plugin's small variant (the architecture, only narrower/shallower)."""
    return [f"model.{k}={json.dumps(v)}" for k, v in spec.quick_config.items()]


def test_a_few_hundred_cpu_steps_bring_samples_closer_to_the_data(spec: ModelSpec, tmp_path: Path) -> None:
    sets = quick_overrides(300, **{"train.batch_size": 64}) + quick_model(spec) + [f'run_dir="{tmp_path}"']
    before_dir = tmp_path / "before"
    execute(load_config(None, quick_overrides(1) + quick_model(spec) + [f'run_dir="{tmp_path}"'], REGISTRY,
                        plugin=spec.name), REGISTRY, run_dir=before_dir, show_progress=False, final_eval=False)
    cfg = load_config(None, sets, REGISTRY, plugin=spec.name)
    result = execute(cfg, REGISTRY, show_progress=False, final_eval=False)
    real = ToyDataPlugin().pcgen_register_datasets()[0].load(cfg.run.data)
    distances = []
    for run_dir in (before_dir, result.run_dir):
        fake = load_trained(run_dir, REGISTRY).generate(400, seed=3)
        distances.append(marginal_w1(real.points[:400], real.mask[:400], fake.points, fake.mask))
    assert distances[1] < 0.7 * distances[0], distances


def test_sample_then_evaluate_round_trip(spec: ModelSpec, tmp_path: Path) -> None:
    cfg = load_config(None, quick_overrides(5) + quick_model(spec) + [f'run_dir="{tmp_path}"'], REGISTRY,
                      plugin=spec.name)
    result = execute(cfg, REGISTRY, show_progress=False, final_eval=True)
    table = result.table
    model = build(spec)
    row = table.rows[spec.name if len(model.variants) == 1 else f"{spec.name} ({model.variants[0]})"]
    assert len(table.rows) == 1 + len(model.variants)  # truth + one row per sampling variant
    assert {"w1m", "w1p"} <= set(row)
    assert all(np.isfinite(v) for v, _ in row.values())
    trained = load_trained(result.run_dir / "checkpoints" / "last.pt", REGISTRY)
    clouds = trained.generate(50, seed=1)
    assert clouds.points.shape == (50, 30, 3) and (clouds.points[~clouds.mask] == 0).all()
    assert (clouds.points[..., 2][clouds.mask] >= 0).all()  # pt_rel is physical after un-scaling
