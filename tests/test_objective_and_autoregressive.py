"""The objective and autoregressive recipes, on tiny models written here."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from pcgen import IGNORE, AdversarialModel, AutoregressiveModel, Batch, ObjectiveModel
from pcgen.plugins import load_registry
from pcgen.train.autoregressive import AutoregressiveConfig, AutoregressiveRecipe
from pcgen.train.objective import ObjectiveRecipe, OptimiserConfig


class Shift(ObjectiveModel):
    """Learns the mean of real particles; counts its after-step calls."""

    def __init__(self) -> None:
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(2))
        self.after_calls: list[int] = []

    def training_losses(self, batch: Batch, step: int) -> dict[str, Tensor]:
        real = batch.x[batch.mask]
        return {"fit": ((real - self.mean) ** 2).mean(), "prior": 1e-3 * (self.mean**2).sum()}

    def after_step(self, batch: Batch, step: int) -> dict[str, float]:
        self.after_calls.append(step)
        return {"after": float(step)}

    def _sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        return self.mean.expand(*mask.shape, 2) * mask.unsqueeze(-1)


def shifted_batch(value: float = 3.0) -> Batch:
    mask = torch.ones(8, 5, dtype=torch.bool)
    mask[:, 3:] = False
    x = (torch.randn(8, 5, 2) * 0.1 + value) * mask.unsqueeze(-1)
    x[~mask] = 1e3  # padding garbage: must not matter to the model's own loss
    return Batch(x, mask, torch.ones(8, 1))


def test_the_objective_recipe_minimises_the_sum_of_the_models_terms_and_calls_after_step() -> None:
    model = Shift()
    recipe = ObjectiveRecipe(model, OptimiserConfig(optimizer="adam", lr=0.1, warmup_steps=0, schedule="constant"))
    for step in range(100):
        logs = recipe.training_step(shifted_batch(), step, step / 100)
    assert torch.allclose(model.mean, torch.full((2,), 3.0), atol=0.1)
    assert {"loss/fit", "loss/prior", "loss/total", "after", "grad_norm/model"} <= set(logs)
    assert logs["loss/total"] == pytest.approx(logs["loss/fit"] + logs["loss/prior"])
    assert model.after_calls == list(range(100))


def test_a_non_finite_step_is_skipped_without_after_step() -> None:
    """The recipe drops such steps; how many in a row a run allows is the trainer's one limit
    (train.max_nonfinite_in_row), not the recipe's."""
    model = Shift()
    recipe = ObjectiveRecipe(model, OptimiserConfig(warmup_steps=0))
    bad = shifted_batch(float("nan"))
    for step in range(8):
        logs = recipe.training_step(bad, step, 0.0)
    assert not torch.isfinite(logs["loss/fit"])  # reported, for the trainer's guard
    assert model.after_calls == [] and not model.mean.any()


class Bigram(AutoregressiveModel):
    """Next-token logits from the current token only; particles are tokens 0..V-1 in feature 0."""

    vocab = 4

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Embedding(self.vocab + 1, self.vocab + 1)
        nn.init.zeros_(self.table.weight)

    def token_sequences(self, x: Tensor, mask: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        tokens = x[..., 0].long()
        start = torch.full((len(x), 1), self.vocab)
        inputs = torch.cat([start, tokens], dim=1)
        targets = torch.cat([torch.where(mask, tokens, IGNORE), torch.full_like(start, IGNORE)], dim=1)
        targets.scatter_(1, mask.sum(1, keepdim=True), self.vocab)  # the stop token
        return inputs, targets

    def next_token_logits(self, tokens: Tensor, cond: Tensor) -> Tensor:
        return self.table(tokens)

    def _sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        return torch.zeros(*mask.shape, 1)


def test_the_autoregressive_recipe_learns_a_deterministic_sequence() -> None:
    model = Bigram()
    mask = torch.ones(6, 3, dtype=torch.bool)
    batch = Batch(torch.tensor([[1.0], [2.0], [3.0]]).T.expand(6, 3).unsqueeze(-1), mask, torch.ones(6, 1))
    recipe = AutoregressiveRecipe(model, AutoregressiveConfig(optimizer="adam", lr=0.3, warmup_steps=0))
    first = recipe.training_step(batch, 0, 0.0)
    for step in range(1, 80):
        logs = recipe.training_step(batch, step, step / 80)
    assert first["tokens/perplexity"] == pytest.approx(5.0, rel=1e-4)  # uniform over 4 codes + stop
    assert logs["tokens/accuracy"] == 1.0 and logs["tokens/perplexity"] < 1.2
    assert logs["tokens/per_cloud"] == 4.0  # three particles and the stop token


def test_label_smoothing_changes_the_loss_but_not_the_logged_perplexity() -> None:
    mask = torch.ones(2, 2, dtype=torch.bool)
    batch = Batch(torch.ones(2, 2, 1), mask, torch.ones(2, 1))
    plain = AutoregressiveRecipe(Bigram(), AutoregressiveConfig(warmup_steps=0)).losses(batch, 0)
    smooth = AutoregressiveRecipe(Bigram(), AutoregressiveConfig(warmup_steps=0, label_smoothing=0.2)).losses(batch, 0)
    assert plain[1]["tokens/perplexity"] == pytest.approx(smooth[1]["tokens/perplexity"])


def test_recipes_refuse_models_of_the_wrong_kind_and_are_registered() -> None:
    pair = AdversarialModel(nn.Linear(1, 1), nn.Linear(1, 1))
    with pytest.raises(TypeError, match="ObjectiveModel"):
        ObjectiveRecipe(pair, OptimiserConfig())
    with pytest.raises(TypeError, match="AutoregressiveModel"):
        AutoregressiveRecipe(pair, AutoregressiveConfig())
    registry = load_registry(entry_points=[])
    assert registry.recipe("objective").recipe_class is ObjectiveRecipe
    assert registry.recipe("autoregressive").config_class is AutoregressiveConfig
