"""The plugin contract: the pluggy hooks a pcgen plugin may implement.

A plugin is a module, found through the ``pcgen.plugins`` entry-point group, that sets
``PCGEN_CONTRACT = "<major>.<minor>"`` and holds ``@pcgen.hookimpl`` functions named after the
specs below. Hooks are always called with keyword arguments; an implementation may accept
fewer arguments than its spec (pluggy's opt-in arguments), never more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pcgen.specs import DatasetSpec, KindSpec, MetricSpec, ModelSpec, RecipeSpec

PROJECT = "pcgen"
CONTRACT_VERSION = "2.4"
"""Version of this contract. A plugin whose ``PCGEN_CONTRACT`` has another major number is refused.

2.0: models implement ``_sample`` (``sample`` is the core's checking template method), ``build``
receives the validated config, the model interfaces live in :mod:`pcgen.models`; a 1.x plugin that
overrode ``sample`` renames it ``_sample`` and declares ``"2.0"``.

2.1 (adds, so 2.0 plugins work unchanged): ``pcgen.nn.keep_where``; ``AutoregressiveModel.
next_token_logits_at`` (the logits where a target is; its default selects from ``next_token_logits``).

2.2 (adds): ``pcgen.nn.ParameterAverage``, ``pcgen.nn.warmed_up_decay`` and ``pcgen.nn.lerp_towards``
(weight averages, as the adversarial recipe keeps of every generator); ``ModelSpec.feature_spread``.

2.3 (adds): kinds of point cloud as registered specs (``KindSpec``, ``ConditionSpec``, the hook
``pcgen_register_kinds``); conditions (``ModelSpec.conditions``, ``ANY_CONDITION``,
``DataInfo.condition_names``: a conditional model receives ``cond = [n / N, preprocessed conditions...]``);
``MetricSpec.options`` / ``uses_efps`` / ``needs_normalisation`` / ``jetnet_scale``; ``ModelConfig``
(the base of plugin configs: unknown keys are errors) and the ``NoiseDrivenGenerator`` protocol (the
contract's noise checks; without it, a statistical slot test checks equivariance).

2.4 (adds): ``pcgen.nn.jet_mass_over_pt`` (the differentiable jet mass of relative coordinates)."""

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------------------------------------
# Registration hooks: each returns a list of specs; the host collects the lists of all plugins.
# ---------------------------------------------------------------------------------------------


@hookspec
def pcgen_register_models() -> list[ModelSpec]:
    """Return the generative models this plugin provides.

    :return: specs naming each model, its pydantic config class (paper defaults), the recipe that
        trains it, and a factory building it from a config and the data's shape.
    """


@hookspec
def pcgen_register_datasets() -> list[DatasetSpec]:
    """Return the data sets this plugin provides (the core registers its own the same way)."""


@hookspec
def pcgen_register_metrics() -> list[MetricSpec]:
    """Return evaluation metrics this plugin provides (the core registers its own the same way)."""


@hookspec
def pcgen_register_kinds() -> list[KindSpec]:
    """Return kinds of point cloud this plugin provides (the core registers "jets" and "showers" the same way):
    their features, conditions, observables, figure and data settings."""


@hookspec
def pcgen_register_recipes() -> list[RecipeSpec]:
    """Return training recipes this plugin provides (adversarial, likelihood, ... live in the core)."""


# ---------------------------------------------------------------------------------------------
# Lifecycle hooks, for monitoring extensions. Their return values are ignored.
# ---------------------------------------------------------------------------------------------


@hookspec
def pcgen_on_train_start(run_dir: str, config: dict[str, Any]) -> None:
    """Called once before the first training step of a run (also when it resumes)."""


@hookspec
def pcgen_on_evaluation(run_dir: str, step: int, metrics: dict[str, float]) -> None:
    """Called after each evaluation during training with the metric values computed."""


@hookspec
def pcgen_on_train_end(run_dir: str, step: int, interrupted: bool) -> None:
    """Called once when a run stops, normally or because it was interrupted."""
