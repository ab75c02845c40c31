"""Issue 11, item 1: divergence is never silent. A non-finite loss, gradient or weight stops a run of
any recipe with a one-line message naming the step and the quantity, a non-zero exit status, and the
last good checkpoint kept; ``train.on_nonfinite = "skip"`` drops such steps and counts them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from .helpers import one_line, run_args

from pcgen.runtime.checkpoint import load_checkpoint
from pcgen.runtime.nonfinite import NonFiniteError, NonFiniteGuard
from pcgen.train.trainer import Trainer

NONFINITE_EXIT = 3


def finite_weights(path: Path) -> bool:
    return all(torch.isfinite(t).all() for t in load_checkpoint(path)["model"].values() if t.is_floating_point())


def test_the_issues_igapt_example_stops_at_step_one_and_writes_nothing(cli, jets_file: Path, tmp_path: Path) -> None:
    """`pcgen run --plugin igapt` with learning rates of 1e6 (the issue's reproduction, shortened)."""
    result = cli(*run_args(jets_file, tmp_path, "diverge", 40, **{
        "recipe.lr_generator": 1e6, "recipe.lr_critic": 1e6, "recipe.warmup_steps": 0}))
    assert result.exit_code == NONFINITE_EXIT
    message = one_line(result.stderr)
    assert "step 1: non-finite loss/generator (nan)" in message
    assert "no checkpoint had been saved yet" in message
    run = tmp_path / "diverge"
    assert not (run / "checkpoints" / "last.pt").exists()  # no checkpoint of bad weights
    assert not (run / "samples.h5").exists()  # and no NaN samples


def poison_gradients_from(monkeypatch: pytest.MonkeyPatch, first: int, last: int | None = None) -> None:
    """From training step ``first`` (1-based) to ``last``, every gradient of the model is NaN, whatever the recipe."""
    original, handles = Trainer._batch, []

    def batch(self: Trainer, step: int):  # noqa: ANN202
        for handle in handles:
            handle.remove()
        handles.clear()
        if first <= step + 1 <= (last or 10**9):
            handles.extend(p.register_hook(lambda g: g * math.nan)
                           for p in self.recipe.model.parameters() if p.requires_grad)
        return original(self, step)

    monkeypatch.setattr(Trainer, "_batch", batch)


@pytest.mark.parametrize(("plugin", "fractions", "recipe"), [
    ("igapt", {}, "adversarial"),
    ("omnijet", {"recipe.fractions.tokenizer": 0.9, "recipe.fractions.gpt": 0.1}, "objective (staged)"),
    ("omnijet", {"recipe.fractions.tokenizer": 0.1, "recipe.fractions.gpt": 0.9}, "autoregressive (staged)"),
    ("tf-refiner", {"recipe.fractions.flow": 0.9, "recipe.fractions.refiner": 0.1}, "likelihood (staged)"),
    ("tf-refiner", {"recipe.fractions.flow": 0.1, "recipe.fractions.refiner": 0.9}, "adversarial (staged)"),
    ("epic-fm", {}, "objective"),
    ("epic-gan", {}, "adversarial"),
])
def test_every_recipe_stops_at_a_nonfinite_gradient_and_keeps_the_last_good_checkpoint(
        cli, jets_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry,
        plugin: str, fractions: dict, recipe: str) -> None:
    small = {f"model.{k}": json.dumps(v) for k, v in registry.model(plugin).quick_config.items()}
    poison_gradients_from(monkeypatch, 9)
    result = cli(*run_args(jets_file, tmp_path, "nan", 10, plugin, **small, **fractions,
                           **{"train.checkpoint_every": 4, "recipe.warmup_steps": 0}))
    assert result.exit_code == NONFINITE_EXIT, (recipe, result.stderr)
    message = one_line(result.stderr)
    assert "step 9: non-finite" in message and ("grad_norm" in message or "gradient" in message), message
    last = tmp_path / "nan" / "checkpoints" / "last.pt"
    assert f"the last good checkpoint {last} (step 8) is kept" in message
    assert load_checkpoint(last)["loop"]["step"] == 8 and finite_weights(last)
    assert not (tmp_path / "nan" / "samples.h5").exists()


def test_skip_mode_drops_and_counts_nonfinite_steps(cli, jets_file: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    poison_gradients_from(monkeypatch, 3, 4)  # two bad steps, then training recovers
    result = cli(*run_args(jets_file, tmp_path, "skip", 8, **{"train.on_nonfinite": '"skip"',
                                                                "train.max_nonfinite_in_row": 3}))
    assert result.exit_code == 0, result.stderr
    checkpoint = tmp_path / "skip" / "checkpoints" / "last.pt"
    assert load_checkpoint(checkpoint)["loop"]["nonfinite_skipped"] == 2
    assert finite_weights(checkpoint)


def test_skip_mode_stops_after_k_nonfinite_steps_in_a_row(cli, jets_file: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    poison_gradients_from(monkeypatch, 3)
    result = cli(*run_args(jets_file, tmp_path, "skip", 20, **{"train.on_nonfinite": '"skip"',
                                                                 "train.max_nonfinite_in_row": 3,
                                                                 "train.checkpoint_every": 2}))
    assert result.exit_code == NONFINITE_EXIT
    message = one_line(result.stderr)
    assert "step 5: 3 steps in a row had non-finite values" in message
    assert load_checkpoint(tmp_path / "skip" / "checkpoints" / "last.pt")["loop"]["step"] == 4


def test_a_weight_made_nonfinite_by_an_update_stops_training() -> None:
    layer = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(layer.parameters(), lr=1e38)
    guard = NonFiniteGuard({"model": opt}, "skip")
    guard.step = 7
    layer(torch.full((4, 2), 1e5)).sum().backward()  # finite gradients, an update that overflows
    with pytest.raises(NonFiniteError, match="step 7: a weight trained by optimiser 'model' became non-finite"):
        opt.step()
    guard.close()


def test_a_nonfinite_gradient_update_is_dropped_weights_and_optimiser_state_unchanged() -> None:
    layer = torch.nn.Linear(2, 1)
    opt = torch.optim.Adam(layer.parameters(), lr=0.1)
    guard = NonFiniteGuard({"model": opt}, "skip")
    before = [p.detach().clone() for p in layer.parameters()]
    (layer(torch.ones(3, 2)).sum() * math.inf).backward()
    opt.step()
    assert all(torch.equal(b, p) for b, p in zip(before, layer.parameters(), strict=True))
    assert not opt.state  # Adam never stepped
    assert guard.check_step({"loss/total": 1.0}) is True and guard.skipped == 1
    guard.close()


def test_a_checkpoint_of_nonfinite_weights_is_never_written(cli, jets_file: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The last line of defence: even if a NaN weight got past the step checks, saving refuses it."""
    original = Trainer._batch

    def batch(self: Trainer, step: int):  # noqa: ANN202
        if step + 1 == 5:
            with torch.no_grad():
                next(self.recipe.model.parameters()).fill_(math.nan)
        return original(self, step)

    monkeypatch.setattr(Trainer, "_batch", batch)
    monkeypatch.setattr(NonFiniteGuard, "check_step", lambda self, logs: False)  # blind the step checks
    monkeypatch.setattr(NonFiniteGuard, "_after_update", lambda self, name: lambda *args: None)
    result = cli(*run_args(jets_file, tmp_path, "blind", 8, **{"train.checkpoint_every": 3}))
    assert result.exit_code == NONFINITE_EXIT
    assert "step 6: the weights hold non-finite values" in one_line(result.stderr)
    last = tmp_path / "blind" / "checkpoints" / "last.pt"
    assert load_checkpoint(last)["loop"]["step"] == 3 and finite_weights(last)
