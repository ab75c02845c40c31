"""The weight average (EMA) of GAN generators: what it averages, when sampling uses it, that it is saved
and loaded with the model, and that the adversarial recipe keeps it up to date."""

from __future__ import annotations

import copy

import pytest
import torch
from pcgen import AdversarialModel
from pcgen.nn import ParameterAverage, apply_mask, warmed_up_decay
from pcgen.train.adversarial import AdversarialConfig, AdversarialRecipe
from pcgen.train.recipe import Batch
from torch import Tensor, nn
from toygan import Critic


class Generator(nn.Module):
    """Noise through a small MLP (with a weight-normalised layer, as MDMA's are)."""

    def __init__(self, features: int = 3) -> None:
        super().__init__()
        self.first = nn.utils.parametrizations.weight_norm(nn.Linear(features, 8))
        self.second = nn.Linear(8, features)

    def forward(self, mask: Tensor, cond: Tensor) -> Tensor:
        noise = torch.randn(*mask.shape, self.second.out_features)
        return apply_mask(self.second(torch.tanh(self.first(noise))), mask)


def toy_model() -> AdversarialModel:
    torch.manual_seed(0)
    return AdversarialModel(Generator(), Critic())


def sample(model: AdversarialModel, seed: int = 3) -> Tensor:
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[2, 3:] = False
    torch.manual_seed(seed)
    return model.sample(mask, torch.zeros(4, 1))


def test_warm_up_of_the_decay() -> None:
    assert warmed_up_decay(0.999, 0) == pytest.approx(0.1)
    assert warmed_up_decay(0.999, 90) == pytest.approx(91 / 100)
    assert warmed_up_decay(0.999, 100_000) == 0.999


def test_average_is_a_lerp_of_the_parameters_and_forward_uses_it() -> None:
    module = nn.Linear(3, 2)
    average = ParameterAverage(module)
    start = {k: v.clone() for k, v in average.averages().items()}
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    used = average.update(module, decay=0.5)
    assert used == pytest.approx(0.1)  # warmed up: the first update mostly copies
    for name, param in module.named_parameters():
        torch.testing.assert_close(average.averages()[name], 0.1 * start[name] + 0.9 * param.detach())
    twin = copy.deepcopy(module)
    with torch.no_grad():
        for name, param in twin.named_parameters():
            param.copy_(average.averages()[name])
    x = torch.randn(5, 3)
    torch.testing.assert_close(average(module, x), twin(x))
    assert not torch.allclose(average(module, x), module(x))


def test_sampling_uses_the_average_only_once_it_was_updated() -> None:
    model = toy_model()
    live = sample(model)
    assert not model.generator_average.active
    model.update_generator_average(0.999)
    with torch.no_grad():  # the live generator moves on; the average must not follow by itself
        for p in model.generator.parameters():
            p.mul_(3.0)
    assert model.generator_average.active
    torch.testing.assert_close(sample(model), live)


def test_average_is_saved_and_loaded_with_the_model() -> None:
    model = toy_model()
    model.update_generator_average(0.999)
    with torch.no_grad():
        for p in model.generator.parameters():
            p.add_(0.5)
    model.update_generator_average(0.999)
    state = model.state_dict()
    assert int(state["generator_average.updates"]) == 2
    other = toy_model()
    other.load_state_dict(state)
    torch.testing.assert_close(sample(other), sample(model))


def test_weights_saved_without_an_average_load_and_sample_from_the_generator() -> None:
    model = toy_model()
    old = {k: v for k, v in model.state_dict().items() if not k.startswith("generator_average.")}
    fresh = toy_model()
    with torch.no_grad():
        for p in fresh.generator.parameters():
            p.add_(1.0)
    fresh.load_state_dict(old)  # strict: the missing average is filled in, inactive
    assert not fresh.generator_average.active
    torch.testing.assert_close(sample(fresh), sample(model))


def test_average_covers_only_the_generators_own_parameters() -> None:
    class Refiner(nn.Module):
        def __init__(self, upstream: nn.Module) -> None:
            super().__init__()
            self.shift = nn.Parameter(torch.zeros(3))
            object.__setattr__(self, "upstream", upstream)  # referenced, not registered

        def forward(self, mask: Tensor, cond: Tensor) -> Tensor:
            return apply_mask(self.upstream(mask, cond) + self.shift, mask)

    model = AdversarialModel(Refiner(Generator()), Critic())
    assert model.generator_average.names == ["shift"]


@pytest.mark.parametrize("decay", [0.0, 0.9])
def test_the_recipe_updates_the_average_after_each_generator_step(decay: float) -> None:
    model = toy_model()
    config = AdversarialConfig(critic_steps=2, ema_decay=decay, optimizer="adam", lr_generator=1e-2)
    recipe = AdversarialRecipe(model, config)
    x = apply_mask(torch.randn(8, 5, 3), torch.ones(8, 5, dtype=torch.bool))
    batch = Batch(x, torch.ones(8, 5, dtype=torch.bool), torch.zeros(8, 1))
    for step in range(6):
        recipe.training_step(batch, step, step / 6)
    assert int(model.generator_average.updates) == (3 if decay else 0)
    assert model.generator_average.active == bool(decay)
    if decay:  # the average lags behind the trained generator
        live = dict(model.generator.named_parameters())
        assert any(not torch.allclose(v, live[k]) for k, v in model.generator_average.averages().items())
