"""Issue 21, item 5: settings that fought. ``train.max_nonfinite_in_row`` is the one limit of non-finite
steps in a row, for every recipe; the objective recipes' undocumented ``recipe.max_nonfinite_steps``,
which silently stopped skip-mode runs after 5 and then told the user to set skip mode, is gone. An old
config that still carries it (every run folder and model card made before) is mapped onto the train
setting; one that contradicts it is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pcgen.config import load_config
from pcgen.runtime.checkpoint import load_checkpoint

from .helpers import one_line, run_args
from .test_nonfinite_training import NONFINITE_EXIT, poison_gradients_from


@pytest.mark.parametrize("plugin", ["epic-fm", "omnijet"])  # the objective recipe, and staged objective stages
def test_skip_mode_stops_at_train_max_nonfinite_in_row_with_the_right_advice(
        cli, jets_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Any, plugin: str) -> None:
    """Before: the recipe's own limit of 5 stopped the run at step 7 and said 'set train.on_nonfinite="skip"'."""
    small = {f"model.{k}": json.dumps(v) for k, v in registry.model(plugin).quick_config.items()}
    poison_gradients_from(monkeypatch, 3)
    result = cli(*run_args(jets_file, tmp_path, "skip", 30, plugin, **small, **{
        "train.on_nonfinite": '"skip"', "train.max_nonfinite_in_row": 8, "train.checkpoint_every": 2,
        "recipe.warmup_steps": 0}))
    assert result.exit_code == NONFINITE_EXIT, result.stderr
    message = one_line(result.stderr)
    assert "step 10: 8 steps in a row had non-finite values (train.max_nonfinite_in_row = 8)" in message, message
    assert message.endswith("Lower the learning rate or clip gradients (recipe.grad_clip), or allow more such "
                            "steps in a row (train.max_nonfinite_in_row)"), message
    assert 'on_nonfinite="skip"' not in message
    assert load_checkpoint(tmp_path / "skip" / "checkpoints" / "last.pt")["loop"]["step"] == 8  # skipped steps change nothing: saved


def test_the_recipe_setting_is_gone_from_every_recipe(registry: Any) -> None:
    for plugin in ("epic-fm", "omnijet", "tf-refiner"):
        recipe = load_config(None, ["train.max_steps=1"], registry, plugin=plugin).to_dict()["recipe"]
        assert "max_nonfinite_steps" not in json.dumps(recipe), plugin


@pytest.mark.parametrize(("plugin", "key"), [("epic-fm", "recipe.max_nonfinite_steps"),
                                              ("omnijet", "recipe.tokenizer.max_nonfinite_steps")])
def test_an_old_config_setting_it_is_mapped_onto_the_train_limit(registry: Any, plugin: str, key: str) -> None:
    resolved = load_config(None, ["train.max_steps=1", f"{key}=3"], registry, plugin=plugin)
    assert resolved.run.train.max_nonfinite_in_row == 3
    equal = load_config(None, ["train.max_steps=1", f"{key}=4", "train.max_nonfinite_in_row=4"], registry,
                        plugin=plugin)  # every run folder made before: both written, equal (5 and 5)
    assert equal.run.train.max_nonfinite_in_row == 4
    never = load_config(None, ["train.max_steps=1", f"{key}=0"], registry, plugin=plugin)  # 0 was "never"
    assert never.run.train.max_nonfinite_in_row == 5


def test_an_old_config_contradicting_the_train_limit_is_one_line(cli) -> None:
    result = cli("run", "--plugin", "epic-fm", "--set", "recipe.max_nonfinite_steps=3",
                 "--set", "train.max_nonfinite_in_row=8")
    assert result.exit_code == 2
    assert one_line(result.stderr) == (
        "error: 'recipe.max_nonfinite_steps' = 3 is no longer a setting and conflicts with "
        "'train.max_nonfinite_in_row' = 8, the one limit of non-finite steps in a row; delete "
        "recipe.max_nonfinite_steps (from the config file, or the run folder's config.toml)")


def test_shipped_weights_whose_card_carries_the_old_setting_still_sample(cli, tmp_path: Path) -> None:
    out = tmp_path / "s.h5"
    result = cli("sample", "--pretrained", "epic-fm-top30", "--n", "8", "--out", out, "--device", "cpu",
                 "--set", "model.solver_steps=2")
    assert result.exit_code == 0, result.stderr
    assert out.is_file()
