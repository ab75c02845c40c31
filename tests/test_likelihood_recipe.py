"""The likelihood recipe: maximum likelihood of any model with log_prob, on a toy density."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from pcgen import AdversarialModel, LikelihoodModel
from pcgen.data.multiplicity import jet_condition, mask_for
from pcgen.nn import apply_mask
from pcgen.plugins import load_registry
from pcgen.train.likelihood import LikelihoodConfig, LikelihoodRecipe
from pcgen.train.recipe import Batch
from torch import Tensor, nn


class GaussianParticles(LikelihoodModel):
    """Real particles i.i.d. from a learnable diagonal Gaussian; padded entries carry no density."""

    def __init__(self, features: int = 3) -> None:
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(features))
        self.log_std = nn.Parameter(torch.zeros(features))

    def log_prob(self, x: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        z = (x - self.mean) / self.log_std.exp()
        log_density = -0.5 * z**2 - self.log_std - 0.5 * math.log(2 * math.pi)
        return apply_mask(log_density, mask).sum(dim=(1, 2))

    def log_prob_dims(self, mask: Tensor) -> Tensor:
        return mask.sum(1).float() * self.mean.numel()

    def _sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        x = self.mean + self.log_std.exp() * torch.randn(*mask.shape, self.mean.numel())
        return apply_mask(x, mask)


def batch(seed: int = 0, size: int = 64) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    mask = mask_for(torch.randint(1, 11, (size,), generator=gen), 10)
    x = torch.tensor([2.0, -1.0, 0.5]) + torch.tensor([0.5, 2.0, 1.0]) * torch.randn(size, 10, 3, generator=gen)
    return Batch(apply_mask(x, mask), mask, jet_condition(mask))


def test_maximum_likelihood_fits_the_data_and_the_nll_falls() -> None:
    torch.manual_seed(0)
    model = GaussianParticles()
    recipe = LikelihoodRecipe(model, LikelihoodConfig(optimizer="adam", lr=0.05, warmup_steps=0, schedule="constant"))
    logs = [recipe.training_step(batch(step), step, step / 300) for step in range(300)]
    assert logs[-1]["loss/nll"] < logs[0]["loss/nll"] - 0.5
    assert torch.allclose(model.mean, torch.tensor([2.0, -1.0, 0.5]), atol=0.15)
    assert torch.allclose(model.log_std.exp(), torch.tensor([0.5, 2.0, 1.0]), atol=0.15)
    b = batch(1000)
    per_dim = -model.log_prob(b.x, b.mask, b.cond).sum() / model.log_prob_dims(b.mask).sum()
    entropy = sum(0.5 * math.log(2 * math.pi * math.e * s**2) for s in (0.5, 2.0, 1.0)) / 3
    assert per_dim.item() == pytest.approx(entropy, abs=0.05)  # the NLL per dimension reaches the entropy
    assert set(logs[0]) == {"loss/nll", "nll/per_cloud", "grad_norm/model"}


def test_warmup_cosine_and_gradient_clipping() -> None:
    model = GaussianParticles()
    recipe = LikelihoodRecipe(model, LikelihoodConfig(lr=0.1, warmup_steps=10, grad_clip=1e-3, cosine_cycles=2))
    logs = recipe.training_step(batch(), 0, 0.0)
    assert recipe.learning_rates()["model"] == pytest.approx(0.01)
    assert logs["grad_norm/model"] > 1e-3  # logged before clipping
    clipped = torch.stack([p.grad.norm() for p in model.parameters()]).norm()
    assert clipped.item() == pytest.approx(1e-3, rel=1e-4)
    recipe.training_step(batch(), 20, 0.25)  # a quarter through: half-way down the first of two cosines
    assert recipe.learning_rates()["model"] == pytest.approx(0.05)


def test_non_finite_steps_are_skipped() -> None:
    """Dropped without touching the weights, however many in a row: the limit is the trainer's
    (train.max_nonfinite_in_row)."""
    model = GaussianParticles()
    recipe = LikelihoodRecipe(model, LikelihoodConfig(lr=0.1, warmup_steps=0))
    bad = batch()
    bad.x[bad.mask] = float("nan")
    before = [p.detach().clone() for p in model.parameters()]
    for step in range(8):
        assert not torch.isfinite(torch.as_tensor(recipe.training_step(bad, step, 0.0)["loss/nll"]))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert torch.isfinite(torch.as_tensor(recipe.training_step(batch(), 8, 0.0)["loss/nll"]))


def test_state_dict_round_trip_continues_identically() -> None:
    torch.manual_seed(0)
    config = LikelihoodConfig(optimizer="adamw", lr=0.05, warmup_steps=2)
    a = GaussianParticles()
    ra = LikelihoodRecipe(a, config)
    for step in range(3):
        ra.training_step(batch(step), step, step / 6)
    b = GaussianParticles()
    b.load_state_dict(a.state_dict())
    rb = LikelihoodRecipe(b, config)
    rb.load_state_dict(copy.deepcopy(ra.state_dict()))  # as from a checkpoint file: no shared tensors
    for step in range(3, 6):
        ra.training_step(batch(step), step, step / 6)
        rb.training_step(batch(step), step, step / 6)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_the_recipe_refuses_models_without_a_density_and_is_registered() -> None:
    with pytest.raises(TypeError, match="LikelihoodModel"):
        LikelihoodRecipe(AdversarialModel(nn.Linear(1, 1), nn.Linear(1, 1)), LikelihoodConfig())  # type: ignore[arg-type]
    registry = load_registry(entry_points=[])
    assert registry.recipe("likelihood").config_class is LikelihoodConfig
    with pytest.raises(ValueError, match="optimizer"):
        LikelihoodConfig(optimizer="sgd")  # type: ignore[arg-type]
