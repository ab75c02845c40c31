"""The critic's gradient penalties (WGAN-GP, R1): their values on critics with known gradients, that
padded particles never count, and when the adversarial recipe applies them."""

from __future__ import annotations

import pytest
import torch
from pcgen import AdversarialModel
from pcgen.nn import apply_mask
from pcgen.runtime.precision import uses_gradient_penalty
from pcgen.train.adversarial import AdversarialConfig, AdversarialRecipe
from pcgen.train.losses import gradient_penalty, r1_penalty
from pcgen.train.recipe import Batch
from torch import Tensor, nn
from toygan import Critic, Generator

WEIGHTS = torch.tensor([0.5, -1.0, 2.0])


def linear_critic(x: Tensor, mask: Tensor) -> Tensor:
    """Score = sum over real particles of w.x: its gradient is w at every real particle, 0 at padding."""
    return (apply_mask(x, mask) * WEIGHTS).sum(dim=(1, 2))


def clouds() -> tuple[Tensor, Tensor]:
    torch.manual_seed(0)
    x = torch.randn(3, 5, 3)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1, 2:] = False
    mask[2, 4:] = False
    return x, mask


def test_r1_is_the_squared_gradient_norm_over_real_particles() -> None:
    x, mask = clouds()
    expected = (mask.sum(dim=1).float() * WEIGHTS.pow(2).sum()).mean()
    torch.testing.assert_close(r1_penalty(lambda p: linear_critic(p, mask), x, mask), expected)


def test_r1_is_zero_for_a_flat_critic_and_ignores_padding() -> None:
    x, mask = clouds()
    assert r1_penalty(lambda p: 0.0 * p.sum(dim=(1, 2)), x, mask) == 0
    # a critic that (wrongly) reads padded particles: the penalty still counts only the real ones
    leaky = r1_penalty(lambda p: (p * WEIGHTS).sum(dim=(1, 2)), x, mask)
    torch.testing.assert_close(leaky, r1_penalty(lambda p: linear_critic(p, mask), x, mask))
    moved = x.clone()
    moved[~mask] = 100.0
    torch.testing.assert_close(r1_penalty(lambda p: linear_critic(p, mask), moved, mask), leaky)


def test_gradient_penalty_of_a_critic_with_unit_gradient_is_zero() -> None:
    x, mask = clouds()
    full = torch.ones_like(mask)
    unit = WEIGHTS / WEIGHTS.norm() / 5**0.5  # gradient norm 1 over 5 real particles
    gp = gradient_penalty(lambda p: (p * unit).sum(dim=(1, 2)), x, torch.randn_like(x), full)
    torch.testing.assert_close(gp, torch.tensor(0.0))


def test_the_penalties_keep_the_graph_for_the_critics_update() -> None:
    x, mask = clouds()
    layer = nn.Linear(3, 1)
    r1 = r1_penalty(lambda p: apply_mask(layer(p), mask).sum(dim=(1, 2)), x, mask)
    r1.backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("every", [1, 3])
def test_the_recipe_applies_r1_on_every_rth_step_only_when_asked(every: int) -> None:
    x, mask = clouds()
    batch = Batch(x, mask, torch.zeros(3, 1))
    torch.manual_seed(1)
    recipe = AdversarialRecipe(AdversarialModel(Generator(), Critic()),
                               AdversarialConfig(r1_weight=1.0, r1_every=every, warmup_steps=0))
    logged = ["loss/r1" in recipe.training_step(batch, step, 0.0) for step in range(6)]
    assert logged == [(step + 1) % every == 0 for step in range(6)]
    plain = AdversarialRecipe(AdversarialModel(Generator(), Critic()), AdversarialConfig(warmup_steps=0))
    assert "loss/r1" not in plain.training_step(batch, 0, 0.0)


def test_r1_changes_the_critics_update_by_its_gradient() -> None:
    """A heavy R1 penalty shrinks the linear critic's weights (its input gradient) against the same
    run without it."""
    x, mask = clouds()
    batch = Batch(x, mask, torch.zeros(3, 1))
    norms = {}
    for weight in (0.0, 100.0):
        torch.manual_seed(2)
        model = AdversarialModel(Generator(), Critic())
        recipe = AdversarialRecipe(model, AdversarialConfig(r1_weight=weight, r1_every=1, warmup_steps=0,
                                                            lr_critic=1e-2))
        for step in range(20):
            recipe.training_step(batch, step, 0.0)
        norms[weight] = model.critic.score.weight.norm().item()
    assert norms[100.0] < norms[0.0]


def test_r1_or_wgan_gp_keeps_the_critic_out_of_compilation() -> None:
    model = AdversarialModel(Generator(), Critic())
    assert not uses_gradient_penalty(AdversarialRecipe(model, AdversarialConfig()))
    assert uses_gradient_penalty(AdversarialRecipe(model, AdversarialConfig(r1_weight=0.5)))
    assert uses_gradient_penalty(AdversarialRecipe(model, AdversarialConfig(loss="wgan-gp")))
