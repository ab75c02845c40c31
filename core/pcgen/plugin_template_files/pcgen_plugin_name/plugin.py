"""Entry-point module of the $name plugin (group ``pcgen.plugins``, name ``$name``)."""

from __future__ import annotations

from pcgen import DataInfo, ModelSpec, hookimpl

from pcgen_plugin_name.config import PluginNameConfig
from pcgen_plugin_name.networks import PluginNameModel

PCGEN_CONTRACT = "$contract"


def build(config: PluginNameConfig, info: DataInfo) -> PluginNameModel:
    """The model for clouds of ``info.num_features`` features (pcgen passes the validated config)."""
    return PluginNameModel(config, info.num_features, info.cond_dim)


SPEC = ModelSpec(
    name="$name",
    config_class=PluginNameConfig,
    build=build,
    recipe="objective",
    recipe_defaults={"optimizer": "adamw", "lr": 1e-3, "warmup_steps": 50},
    train_defaults={"batch_size": 128},
    quick_config={"hidden": 32, "layers": 2, "sampling_steps": 16},
    quick_recipe={"lr": 3e-3, "warmup_steps": 20},
    # Standardised features, with pt_rel (and hit energies E) as logarithms: generated ones stay positive.
    preprocessing="standard",
    log_features=("pt_rel", "E"),
    paper="Y. Lipman et al., Flow Matching for Generative Modeling, arXiv:2210.02747",
    description="Conditional flow matching with a DeepSets velocity field (written by pcgen new-plugin).",
)


@hookimpl
def pcgen_register_models() -> list[ModelSpec]:
    """Register the ``$name`` model."""
    return [SPEC]
