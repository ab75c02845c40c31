"""The staged recipe: registered recipes run one after another, each over a share of the run.

A model trained in stages (e.g. a normalising flow by maximum likelihood, then a refiner against a
critic) declares its stages in :attr:`pcgen.specs.ModelSpec.stages` (name, recipe, default share)
and hands out the part each stage trains through :meth:`StagedModel.part`. The run's ``[recipe]``
table then holds one sub-table per stage, validated by that stage's recipe config class, plus the
shares::

    [recipe.fractions]          # shares of the run's steps, in stage order; they sum to 1
    flow = 0.25
    refiner = 0.75

    [recipe.flow]               # a LikelihoodConfig
    lr = 7e-4

    [recipe.refiner]            # an AdversarialConfig
    loss = "ls"

A key written directly under ``[recipe]`` (e.g. ``warmup_steps = 5``) is a shared setting: it is
set in every stage whose config has that key, overriding the stage tables (plugin defaults
included). Keys no stage knows are errors.

Stage ``k`` runs while the run's progress is in ``[f_0 + ... + f_{k-1}, f_0 + ... + f_k)``. A stage
with share 0 is skipped: that is how a run continues a trained model's later stage (the GPT of a
tokenizer + GPT, say) from ``train.init_weights`` with the earlier parts left exactly as they are; a
run that skips a stage must start from such weights, and the last stage (the one that samples)
always needs a share. Each
sub-recipe sees its own step counter (0 at the stage's first step, so warm-ups restart) and its
progress rescaled to [0, 1] over its stage; it keeps its own optimisers, all of which are in the
checkpoint, so a run resumes exactly in any stage. Stages never go back: extending a run (a longer
horizon) never returns to an earlier stage. Every step logs ``stage`` (the stage's index);
:meth:`StagedRecipe.learning_rates` reports the current stage's rates as ``<stage>/<optimiser>``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from pcgen.config import ConfigError
from pcgen.data.preprocessing import FeatureScaler
from pcgen.models import StagedModel
from pcgen.specs import ModelSpec, RecipeSpec
from pcgen.train.recipe import Batch, Logs, Recipe

FRACTION_TOLERANCE = 1e-6
"""How far from 1 the stage shares may sum (TOML decimals are not exact in binary)."""


@dataclass(frozen=True)
class StagePlan:
    """One stage as the staged config class knows it: name, default share, recipe, config class."""

    name: str
    fraction: float
    recipe: RecipeSpec
    config_class: type[BaseModel]


class StagedConfig(BaseModel):
    """Base of the per-model config classes :func:`staged_config_for` builds (one field per stage)."""

    model_config = ConfigDict(extra="forbid")

    stage_plan: ClassVar[tuple[StagePlan, ...]] = ()
    """The stages, in training order (set on each built class)."""

    @model_validator(mode="before")
    @classmethod
    def _apply_shared_keys(cls, data: Any) -> Any:
        """Copy each shared key (one written under ``[recipe]`` that a stage's config has) into those stages."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in [k for k in data if k not in cls.model_fields]:
            targets = [s.name for s in cls.stage_plan if key in s.config_class.model_fields]
            if not targets:
                continue  # left in place: extra="forbid" reports it as an unknown key
            value = data.pop(key)
            for name in targets:
                table = data.get(name, {})
                if isinstance(table, BaseModel):
                    table = table.model_dump()
                if isinstance(table, dict):
                    data[name] = {**table, key: value}
        return data

    @classmethod
    def stage_names(cls) -> list[str]:
        return [s.name for s in cls.stage_plan]

    def fraction(self, stage: str) -> float:
        """Share of the run's steps spent in ``stage``."""
        return float(getattr(self.fractions, stage))  # type: ignore[attr-defined]

    def skipped_stages(self) -> list[str]:
        """The stages with share 0, which this run does not train."""
        return [name for name in self.stage_names() if self.fraction(name) == 0]

    def check_initialisation(self, init_weights: str) -> None:
        """Refuse to skip a stage when the run starts from a random initialisation (its part would stay
        untrained); ``init_weights`` is the run's ``train.init_weights``."""
        skipped = self.skipped_stages()
        if skipped and not init_weights:
            names = ", ".join(f"'{name}'" for name in skipped)
            raise ConfigError(f"'recipe.fractions' skips stage {names} (share 0), but the run starts from random "
                              "weights, so that part would never be trained; set 'train.init_weights' (e.g. "
                              "pretrained:NAME or a run folder) to continue a trained model, or give the stage a share")

    def stage_config(self, stage: str) -> BaseModel:
        """The validated settings of one stage's recipe."""
        return getattr(self, stage)


class _Fractions(BaseModel):
    """Base of the built ``fractions`` tables: one share per stage (0 = skipped; the last one positive),
    summing to 1."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _sum_to_one(self) -> _Fractions:
        shares = self.model_dump()
        total = sum(shares.values())
        if abs(total - 1.0) > FRACTION_TOLERANCE:
            parts = " + ".join(f"{k} {v:g}" for k, v in shares.items())
            raise ValueError(f"the stage shares must sum to 1, got {parts} = {total:g}; set every stage's share")
        last = list(shares)[-1]
        if shares[last] <= 0:
            raise ValueError(f"the last stage ('{last}') makes the samples, so its share must be above 0; only "
                             "earlier stages can be skipped (share 0)")
        return self


def staged_config_for(model: ModelSpec, registry: Any) -> type[StagedConfig]:
    """The ``[recipe]`` config class of a model trained with the staged recipe (its ``RecipeSpec.configure``)."""
    if not model.stages:
        raise ConfigError(f"model '{model.name}' uses the 'staged' recipe but declares no stages (ModelSpec.stages)")
    plans = []
    for stage in model.stages:
        recipe = registry.recipe(stage.recipe)
        if issubclass(recipe.recipe_class, StagedRecipe):
            raise ConfigError(f"model '{model.name}': stage '{stage.name}' cannot itself be staged")
        plans.append(StagePlan(stage.name, stage.fraction, recipe, recipe.config_class_for(model, registry)))
    return _build_config_class(model.name, tuple(plans))


@functools.lru_cache(maxsize=64)
def _build_config_class(model_name: str, plans: tuple[StagePlan, ...]) -> type[StagedConfig]:
    names = [p.name for p in plans]
    for name in names:
        if not name.isidentifier() or name == "fractions" or names.count(name) > 1:
            raise ConfigError(
                f"model '{model_name}': stage name {name!r} must be a unique identifier other than 'fractions'"
            )
    total = sum(p.fraction for p in plans)
    if abs(total - 1.0) > FRACTION_TOLERANCE or any(p.fraction <= 0 for p in plans):
        raise ConfigError(f"model '{model_name}': the default stage fractions must be positive and sum to 1")
    prefix = "".join(part.capitalize() for part in model_name.replace("-", "_").split("_"))
    fractions = create_model(
        f"{prefix}StageFractions",
        __base__=_Fractions,
        **{p.name: (float, Field(p.fraction, ge=0, le=1, description=f"Share of the run in stage '{p.name}' "
                                   "(0: skipped, for a run continuing trained weights)."))
           for p in plans},
    )
    stage_fields: dict[str, Any] = {
        p.name: (p.config_class, Field(default_factory=p.config_class, description=f"Settings of stage '{p.name}' "
                                       f"({p.recipe.name} recipe)."))
        for p in plans
    }
    cls = create_model(
        f"{prefix}StagedConfig",
        __base__=StagedConfig,
        fractions=(fractions, Field(default_factory=fractions, description="Share of the run's steps per stage.")),
        **stage_fields,
    )
    cls.stage_plan = plans
    return cls


@dataclass
class _Stage:
    name: str
    recipe: Recipe
    start: float
    end: float


class StagedRecipe(Recipe):
    """Runs the stages' recipes one after another over their shares of the run (see the module docs)."""

    model: StagedModel
    config: StagedConfig

    def __init__(self, model: StagedModel, config: StagedConfig) -> None:
        if not isinstance(model, StagedModel):
            raise TypeError(f"the staged recipe needs a StagedModel (with part(stage)), got {type(model).__name__}")
        plans = type(config).stage_plan
        if not plans:
            raise TypeError("the staged recipe needs a config class built for the model's stages (staged_config_for)")
        super().__init__(model, config)
        self.stages: list[_Stage] = []
        start = 0.0
        for plan in plans:
            part = model.part(plan.name)
            recipe = plan.recipe.recipe_class(part, config.stage_config(plan.name))
            end = start + config.fraction(plan.name)
            self.stages.append(_Stage(plan.name, recipe, start, end))
            start = end
        self.stages[-1].end = 1.0
        self.optimizers = {f"{s.name}/{k}": opt for s in self.stages for k, opt in s.recipe.optimizers.items()}
        self.base_lrs = {f"{s.name}/{k}": lr for s in self.stages for k, lr in s.recipe.base_lrs.items()}
        self.index = self.stage_index(0.0)
        """Index of the current stage (the first one with a share)."""
        self.stage_start = 0
        """Global step at which the current stage began."""

    @property
    def stage(self) -> str:
        return self.stages[self.index].name

    @property
    def in_final_stage(self) -> bool:
        return self.index == len(self.stages) - 1

    @property
    def current(self) -> Recipe:
        """The recipe of the current stage."""
        return self.stages[self.index].recipe

    def stage_index(self, progress: float) -> int:
        """Index of the stage a run's progress (fraction of its steps done) falls in."""
        index = 0
        for i, stage in enumerate(self.stages[1:], start=1):
            if progress >= stage.start - 1e-9:
                index = i
        return index

    def training_step(self, batch: Batch, step: int, progress: float) -> Logs:
        index = self.stage_index(progress)
        if index > self.index:
            self.index, self.stage_start = index, step
        stage = self.stages[self.index]
        local = (progress - stage.start) / max(stage.end - stage.start, 1e-12)
        logs = stage.recipe.training_step(batch, step - self.stage_start, min(max(local, 0.0), 1.0))
        logs["stage"] = float(self.index)
        return logs

    def bind_data(self, feature_names: Sequence[str], scaler: FeatureScaler) -> None:
        for stage in self.stages:
            stage.recipe.bind_data(feature_names, scaler)

    def validation_losses(self, batch: Batch, step: int) -> dict[str, float]:
        return self.current.validation_losses(batch, step - self.stage_start)

    def set_learning_rates(self, factor: float) -> None:
        self.current.set_learning_rates(factor)

    def learning_rates(self) -> dict[str, float]:
        return {f"{self.stage}/{k}": v for k, v in self.current.learning_rates().items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "stage_index": self.index,
            "stage_start": self.stage_start,
            "stages": {s.name: s.recipe.state_dict() for s in self.stages},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.index, self.stage_start = int(state["stage_index"]), int(state["stage_start"])
        for s in self.stages:
            s.recipe.load_state_dict(state["stages"][s.name])


STAGED = RecipeSpec(
    name="staged",
    recipe_class=StagedRecipe,
    config_class=StagedConfig,
    description="Registered recipes one after another over shares of the run (e.g. likelihood, then adversarial); "
    "one config table per stage.",
    configure=staged_config_for,
)
