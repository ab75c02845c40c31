"""The staged recipe: stages switch at their share of the run, keep their own optimisers, resume exactly,
and their config tables validate with the stage's recipe config class."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import ToyDataPlugin, quick_overrides
from pcgen import (
    AdversarialModel,
    GenerativeModel,
    LikelihoodModel,
    ModelSpec,
    StagedModel,
    StageSpec,
    hookimpl,
)
from pcgen.config import ConfigError, load_config, read_toml, resolve
from pcgen.data.multiplicity import jet_condition, mask_for
from pcgen.nn import apply_mask, masked_mean
from pcgen.plugins import PluginError, load_registry
from pcgen.runtime.checkpoint import load_checkpoint
from pcgen.train.recipe import Batch
from pcgen.train.runner import execute, resume_config
from pcgen.train.staged import StagedConfig, StagedRecipe, staged_config_for
from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

# -- a toy two-stage model: a Gaussian fitted by likelihood, then a shift trained adversarially ---------


class Gaussian(LikelihoodModel):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(features))
        self.log_std = nn.Parameter(torch.zeros(features))

    def log_prob(self, x: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        z = (x - self.mean) / self.log_std.exp()
        return apply_mask(-0.5 * z**2 - self.log_std - 0.5 * math.log(2 * math.pi), mask).sum(dim=(1, 2))

    def _sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        return apply_mask(self.mean + self.log_std.exp() * torch.randn(*mask.shape, self.mean.numel()), mask)


class Shift(nn.Module):
    """Generator: the (referenced, frozen) Gaussian's sample plus a learned shift."""

    def __init__(self, base: Gaussian) -> None:
        super().__init__()
        self.delta = nn.Parameter(torch.zeros(base.mean.numel()))
        object.__setattr__(self, "base", base)

    def forward(self, mask: Tensor, cond: Tensor) -> Tensor:
        with torch.no_grad():
            x = self.base.sample(mask, cond)
        return apply_mask(x + self.delta, mask)


class MeanCritic(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.particle = nn.Sequential(nn.Linear(features, 8), nn.LeakyReLU(0.2))
        self.out = nn.Linear(8, 1)

    def forward(self, x: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        return self.out(masked_mean(self.particle(x), mask)).squeeze(-1)


class ToyStaged(StagedModel):
    variants = ("refined", "base")

    def __init__(self, features: int) -> None:
        super().__init__()
        self.base = Gaussian(features)
        self.adversarial = AdversarialModel(Shift(self.base), MeanCritic(features))

    def part(self, stage: str) -> GenerativeModel:
        return {"base": self.base, "refine": self.adversarial}[stage]

    def _sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        return self.base.sample(mask, cond) if self.variant == "base" else self.adversarial.sample(mask, cond)


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


TOY_SPEC = ModelSpec(
    name="toy-staged",
    config_class=ToyConfig,
    build=lambda config, info: ToyStaged(info.num_features),
    recipe="staged",
    stages=(StageSpec("base", "likelihood", 0.25), StageSpec("refine", "adversarial", 0.75)),
    recipe_defaults={
        "base": {"optimizer": "adam", "lr": 0.05},
        "refine": {"optimizer": "adam", "lr_generator": 0.01, "critic_steps": 2},
    },
    preprocessing="standard",
    permutation_equivariant=True,
)


class ToyStagedPlugin:
    __name__ = "toy-staged"

    @hookimpl
    def pcgen_register_models(self) -> list[ModelSpec]:
        return [TOY_SPEC]


REGISTRY = load_registry(entry_points=[], extra_plugins=[ToyDataPlugin(), ToyStagedPlugin()])


def config(**recipe: Any) -> StagedConfig:
    return resolve({"plugin": "toy-staged", "recipe": recipe}, REGISTRY).recipe  # type: ignore[return-value]


def batch(step: int) -> Batch:
    gen = torch.Generator().manual_seed(step)
    mask = mask_for(torch.randint(1, 11, (16,), generator=gen), 10)
    return Batch(apply_mask(1.0 + torch.randn(16, 10, 3, generator=gen), mask), mask, jet_condition(mask))


def snapshot(module: nn.Module) -> list[Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def unchanged(module: nn.Module, before: list[Tensor]) -> bool:
    return all(torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


# -- switching and per-stage schedules ---------------------------------------------------------------


def test_the_stage_switches_at_its_share_and_each_stage_trains_only_its_part() -> None:
    torch.manual_seed(0)
    model = ToyStaged(3)
    recipe = StagedRecipe(model, config(fractions={"base": 0.25, "refine": 0.75}, refine={"warmup_steps": 4}))
    assert recipe.stage == "base" and set(recipe.learning_rates()) == {"base/model"}
    adversarial = snapshot(model.adversarial)
    stages = []
    for step in range(12):
        if step == 3:
            assert unchanged(model.adversarial, adversarial)  # stage 1 left generator and critic alone
            base = snapshot(model.base)
        logs = recipe.training_step(batch(step), step, step / 12)
        stages.append((recipe.stage, logs["stage"]))
        if step == 3:  # the adversarial stage's own step 0: the first step of its warm-up
            assert recipe.learning_rates()["refine/generator"] == pytest.approx(0.01 / 4)
            assert set(recipe.learning_rates()) == {"refine/generator", "refine/critic"}
    assert stages == [("base", 0.0)] * 3 + [("refine", 1.0)] * 9
    assert unchanged(model.base, base)  # stage 2 left the likelihood part alone
    assert not unchanged(model.adversarial, adversarial)


def test_each_stage_sees_its_own_progress() -> None:
    recipe = StagedRecipe(ToyStaged(3), config(fractions={"base": 0.5, "refine": 0.5},
                                               base={"warmup_steps": 0}, refine={"warmup_steps": 0}))
    recipe.training_step(batch(0), 0, 0.25)  # half-way through the likelihood stage's cosine
    assert recipe.learning_rates()["base/model"] == pytest.approx(0.05 * 0.5)
    recipe.training_step(batch(1), 1, 0.75)  # half-way through the adversarial stage's cosine
    assert recipe.learning_rates()["refine/generator"] == pytest.approx(0.01 * 0.5)
    recipe.training_step(batch(2), 2, 0.1)  # a longer horizon never returns to an earlier stage
    assert recipe.stage == "refine"


def test_state_dict_holds_every_stage_and_round_trips() -> None:
    torch.manual_seed(0)
    cfg = config()
    a = ToyStaged(3)
    ra = StagedRecipe(a, cfg)
    for step in range(6):
        ra.training_step(batch(step), step, step / 12)
    state = copy.deepcopy(ra.state_dict())  # as from a checkpoint file: no shared tensors
    assert state["stage_index"] == 1 and state["stage_start"] == 3 and set(state["stages"]) == {"base", "refine"}
    b = ToyStaged(3)
    b.load_state_dict(a.state_dict())
    rb = StagedRecipe(b, cfg)
    rb.load_state_dict(state)
    for step in range(6, 9):
        torch.manual_seed(step)
        ra.training_step(batch(step), step, step / 12)
        torch.manual_seed(step)
        rb.training_step(batch(step), step, step / 12)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


# -- resume through the real loop -----------------------------------------------------------------------


def run(tmp_path: Path, name: str, steps: int, *extra: str) -> Any:
    cfg = load_config(None, quick_overrides(steps) + [f'name="{name}"', f'run_dir="{tmp_path}"', *extra], REGISTRY,
                      plugin="toy-staged")
    return execute(cfg, REGISTRY, show_progress=False, final_eval=False)


@pytest.mark.parametrize(("interrupt", "stage"), [(3, 0), (11, 1)], ids=["mid-stage-1", "mid-stage-2"])
def test_a_run_interrupted_in_either_stage_resumes_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupt: int, stage: int
) -> None:
    # Warm-up and generator cadence count steps within a stage: resuming with the wrong origin would show.
    sets = ("recipe.warmup_steps=8", "recipe.refine.critic_steps=3")
    straight = load_checkpoint(run(tmp_path, "straight", 16, *sets).run_dir)["model"]
    original, calls = StagedRecipe.training_step, {"n": 0}

    def flaky(self: StagedRecipe, batch: Batch, step: int, progress: float) -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == interrupt:
            raise KeyboardInterrupt
        return original(self, batch, step, progress)

    monkeypatch.setattr(StagedRecipe, "training_step", flaky)
    cut = run(tmp_path, "cut", 16, *sets)
    assert not cut.completed and cut.step == interrupt - 1
    assert load_checkpoint(cut.run_dir)["recipe"]["stage_index"] == stage
    monkeypatch.undo()
    result = execute(resume_config(cut.run_dir, [], REGISTRY), REGISTRY, run_dir=cut.run_dir, resume=True,
                     show_progress=False, final_eval=False)
    assert result.completed and result.step == 16
    resumed = load_checkpoint(cut.run_dir)["model"]
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_a_stage_with_share_0_is_skipped_and_its_part_kept_from_the_initial_weights(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    first = run(tmp_path, "first", 8).run_dir
    trained = load_checkpoint(first)["model"]
    second = run(tmp_path, "second", 6, "recipe.fractions.base=0", "recipe.fractions.refine=1",
                 f'train.init_weights="{first}"', "train.log_every=1").run_dir
    after = load_checkpoint(second)["model"]
    base = [k for k in trained if k.startswith("base.")]
    assert base and all(torch.equal(trained[k], after[k]) for k in base)  # the skipped stage's part as loaded
    assert any(not torch.equal(trained[k], after[k]) for k in trained if k.startswith("adversarial.generator"))
    acc = EventAccumulator(str(second / "tensorboard"))
    acc.Reload()
    assert [e.value for e in acc.Scalars("stage")] == [1.0] * 6  # the refiner's stage from the first step
    assert "lr/base/model" not in acc.Tags()["scalars"]


def test_tensorboard_shows_the_stage_and_each_stages_learning_rates(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = run(tmp_path, "tb", 8, "train.log_every=1").run_dir
    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    assert [e.value for e in acc.Scalars("stage")] == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert [e.step for e in acc.Scalars("lr/base/model")] == [1, 2]
    assert [e.step for e in acc.Scalars("lr/refine/generator")] == [3, 4, 5, 6, 7, 8]
    assert {"loss/nll", "loss/critic", "loss/generator"} <= set(acc.Tags()["scalars"])


# -- configuration ----------------------------------------------------------------------------------------


def errors(*sets: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(None, list(sets), REGISTRY, plugin="toy-staged")
    return str(info.value)


def test_stage_tables_validate_with_their_recipes_config_and_name_the_key() -> None:
    assert "'recipe.refine.loss'" in errors('recipe.refine.loss="nope"')
    assert "'recipe.base.lr'" in errors("recipe.base.lr=-1")
    assert "unknown key 'recipe.base.lr_generator'" in errors("recipe.base.lr_generator=1")
    message = errors("recipe.nope=1")
    assert "unknown key 'recipe.nope'" in message and "base, fractions, refine" in message
    assert "unknown key 'recipe.fractions.other'" in errors("recipe.fractions.other=0.5")
    assert "'recipe.fractions'" in errors("recipe.fractions.base=0.5") and "sum to 1" in errors(
        "recipe.fractions.base=0.5")
    assert "'recipe.fractions.base'" in errors("recipe.fractions.base=-0.5", "recipe.fractions.refine=1.5")
    last = errors("recipe.fractions.base=1", "recipe.fractions.refine=0", 'train.init_weights="x"')
    assert "'recipe.fractions'" in last and "last stage ('refine')" in last
    skipped = errors("recipe.fractions.base=0", "recipe.fractions.refine=1")
    assert "skips stage 'base'" in skipped and "'train.init_weights'" in skipped


def test_plugin_defaults_per_stage_user_values_and_shared_keys() -> None:
    cfg = config(refine={"loss": "wgan-gp"}, fractions={"base": 0.4, "refine": 0.6})
    assert cfg.refine.loss == "wgan-gp" and cfg.refine.lr_generator == 0.01  # the stage's other defaults stay
    assert cfg.base.optimizer == "adam" and cfg.base.lr == 0.05
    assert cfg.fraction("base") == 0.4
    shared = config(warmup_steps=7, loss="vanilla", lr=0.2)
    assert shared.base.warmup_steps == shared.refine.warmup_steps == 7
    assert shared.refine.loss == "vanilla" and shared.base.lr == 0.2
    assert type(shared).stage_names() == ["base", "refine"]


def test_the_saved_config_resolves_to_the_same_settings(tmp_path: Path) -> None:
    run_dir = run(tmp_path, "saved", 2, "recipe.refine.critic_steps=4", "recipe.fractions.base=0.5",
                  "recipe.fractions.refine=0.5").run_dir
    text = (run_dir / "config.toml").read_text()
    assert "[recipe.refine]" in text and "[recipe.fractions]" in text
    again = resolve(read_toml(run_dir / "config.toml"), REGISTRY).recipe
    assert again.refine.critic_steps == 4 and again.fraction("base") == 0.5


def test_bad_stage_declarations_are_clear_errors() -> None:
    no_stages = ModelSpec(name="flat", config_class=ToyConfig, build=TOY_SPEC.build, recipe="staged")
    with pytest.raises(ConfigError, match="declares no stages"):
        staged_config_for(no_stages, REGISTRY)
    unknown = ModelSpec(name="odd", config_class=ToyConfig, build=TOY_SPEC.build, recipe="staged",
                        stages=(StageSpec("a", "likelihood", 0.5), StageSpec("b", "diffusion", 0.5)))
    with pytest.raises(PluginError, match="unknown training recipe 'diffusion'"):
        staged_config_for(unknown, REGISTRY)
    uneven = ModelSpec(name="uneven", config_class=ToyConfig, build=TOY_SPEC.build, recipe="staged",
                       stages=(StageSpec("a", "likelihood", 0.5), StageSpec("b", "adversarial", 0.7)))
    with pytest.raises(ConfigError, match="sum to 1"):
        staged_config_for(uneven, REGISTRY)


def test_the_recipe_needs_a_staged_model_and_a_built_config() -> None:
    with pytest.raises(TypeError, match="StagedModel"):
        StagedRecipe(AdversarialModel(Shift(Gaussian(3)), MeanCritic(3)), config())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="built for the model's stages"):
        StagedRecipe(ToyStaged(3), StagedConfig())
