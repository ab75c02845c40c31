"""Entry-point module (group ``pcgen.plugins``, name ``particle-mixture``)."""

from __future__ import annotations

from pcgen import DataInfo, ModelSpec, hookimpl

from pcgen_particle_mixture.model import MixtureConfig, ParticleMixture

PCGEN_CONTRACT = "2.3"


def build(config: MixtureConfig, info: DataInfo) -> ParticleMixture:
    """One mixture over the ``info.num_features`` particle features."""
    return ParticleMixture(config, info.num_features)


SPEC = ModelSpec(
    name="particle-mixture",
    config_class=MixtureConfig,
    build=build,
    recipe="likelihood",
    recipe_defaults={"optimizer": "adam", "lr": 1e-2, "warmup_steps": 20},
    quick_config={"components": 8},
    preprocessing="standard",
    log_features=("pt_rel", "E"),
    paper="Example plugin (no paper): an independent-particle Gaussian mixture baseline",
    description="Every particle drawn independently from one learned Gaussian mixture (example third-party plugin).",
)


@hookimpl
def pcgen_register_models() -> list[ModelSpec]:
    """Register the ``particle-mixture`` model."""
    return [SPEC]
