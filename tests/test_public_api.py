"""The public plugin API: what it holds (changing it means a new CONTRACT_VERSION), that the model
interfaces import nothing of pcgen.train, and the template sample() every model inherits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pcgen
import pcgen.nn
import pcgen.testing
import pytest
import torch
from pcgen import CONTRACT_VERSION, GenerativeModel
from pydantic import Field, ValidationError
from torch import Tensor

PUBLIC_API = {
    "pcgen": {
        "ANY_CONDITION", "AdversarialModel", "AutoregressiveModel", "Batch", "CONTRACT_VERSION", "ConditionSpec",
        "DataInfo", "DatasetSpec", "GenerativeModel", "IGNORE", "KindSpec", "LikelihoodModel", "MetricSpec", "ModelConfig", "ModelSpec",
        "NoiseDrivenGenerator", "ObjectiveModel", "PointClouds", "PretrainedWeights", "RecipeSpec", "StageSpec",
        "StagedModel", "__version__", "hookimpl",
    },
    "pcgen.nn": {
        "ConditionalGLU", "Dropout", "EPiCLayer", "EPiCNetwork", "EPiCPooling", "FeedForward",
        "InducedParticleAttentionBlock", "InducedSetAttentionBlock", "dropout",
        "MaskedMultiheadAttention", "MeanFieldAttention", "MeanFieldBlock", "MeanFieldEncoder",
        "MultiheadAttentionBlock", "ParameterAverage", "PoolingByMultiheadAttention", "SelfAttentionBlock", "apply_mask",
        "attention_key_padding", "check_condition", "has_particles", "keep_where", "mask_from_multiplicity", "masked_mean",
        "masked_sum", "multiplicity", "normalize_linear_layers", "particle_and_global_noise", "safe_key_padding",
        "sinusoidal_time_embedding", "warmed_up_decay", "lerp_towards", "jet_mass_over_pt",
    },
    "pcgen.testing": {"ToyDataPlugin", "quick_overrides", "toy_jets"},
}
"""The API of contract 2.4. Removing or changing a name needs a new major CONTRACT_VERSION; adding one
a new minor version (and this list updated)."""


@pytest.mark.parametrize("module", [pcgen, pcgen.nn, pcgen.testing], ids=lambda m: m.__name__)
def test_the_public_api_is_what_the_contract_version_covers(module) -> None:
    assert CONTRACT_VERSION.startswith("2.")
    assert set(module.__all__) == PUBLIC_API[module.__name__], "public API changed: update CONTRACT_VERSION and this list"
    for name in module.__all__:
        assert getattr(module, name) is not None and (name.startswith("_") or name.isupper() or getattr(
            module, name).__doc__), f"{module.__name__}.{name} has no docstring"


def test_the_model_interfaces_import_nothing_of_the_training_code() -> None:
    code = "import sys, pcgen.models; print(sorted(m for m in sys.modules if m.startswith('pcgen.train')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_old_import_paths_still_work() -> None:
    from pcgen.train.autoregressive import IGNORE, AutoregressiveModel
    from pcgen.train.likelihood import LikelihoodModel
    from pcgen.train.objective import ObjectiveModel
    from pcgen.train.recipe import Batch
    from pcgen.train.staged import StagedModel

    assert (IGNORE, AutoregressiveModel, LikelihoodModel, ObjectiveModel, Batch, StagedModel) == (
        pcgen.IGNORE, pcgen.AutoregressiveModel, pcgen.LikelihoodModel, pcgen.ObjectiveModel, pcgen.Batch,
        pcgen.StagedModel)


class Garbage(GenerativeModel):
    """Writes NaN into padded slots and records what _sample received."""

    def _sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        self.seen = mask
        x = torch.ones(*mask.shape, 2)
        x[~mask] = float("nan")
        return x


def test_sample_zeroes_padding_and_hands_the_model_a_bool_mask() -> None:
    model = Garbage()
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    x = model.sample(mask, torch.zeros(2, 1))
    assert model.seen.dtype == torch.bool
    assert torch.equal(x, torch.tensor([[[1.0, 1], [1, 1], [0, 0]], [[1, 1], [0, 0], [0, 0]]]))


@pytest.mark.parametrize(("mask", "cond", "message"), [
    (torch.ones(2, 3, 1, dtype=torch.bool), torch.zeros(2, 1), "mask must be"),
    (torch.ones(2, 3, dtype=torch.bool), torch.zeros(3, 1), "cond must be"),
])
def test_sample_refuses_bad_shapes(mask: Tensor, cond: Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Garbage().sample(mask, cond)


def test_sample_refuses_a_model_output_of_the_wrong_shape() -> None:
    class Flat(GenerativeModel):
        def _sample(self, mask: Tensor, cond: Tensor) -> Tensor:
            return torch.zeros(mask.shape[0], 5)

    with pytest.raises(ValueError, match=r"Flat._sample must return clouds"):
        Flat().sample(torch.ones(2, 3, dtype=torch.bool), torch.zeros(2, 1))


class WidthConfig(pcgen.ModelConfig):
    """A plugin config built on pcgen.ModelConfig."""

    hidden: int = Field(8, ge=1, description="A width.")


def test_a_plugin_config_on_model_config_rejects_an_unknown_key_and_names_it() -> None:
    assert WidthConfig(hidden=4).hidden == 4
    with pytest.raises(ValidationError, match=r"hiden\n.*Extra inputs are not permitted"):
        WidthConfig(hiden=4)
    config = WidthConfig()
    with pytest.raises(ValidationError, match="hidden"):
        config.hidden = 0  # values are checked on assignment too, as in the core's own config sections


ROOT = Path(__file__).resolve().parents[1]


def shipped_models(registry) -> list:
    """The specs of the model plugins in this repository's plugins/."""
    return [spec for spec in map(registry.model, registry.models)
            if (ROOT / "plugins") in Path(sys.modules[spec.config_class.__module__].__file__).resolve().parents]


def test_every_shipped_plugin_config_is_a_model_config_and_names_an_unknown_key(registry) -> None:
    from pcgen.config import ConfigError, load_config

    specs = shipped_models(registry)
    assert len(specs) >= 7
    for spec in specs:
        assert issubclass(spec.config_class, pcgen.ModelConfig), spec.name
        with pytest.raises(ConfigError, match=r"unknown key 'model\.not_a_setting'"):
            load_config(None, ["model.not_a_setting=1"], registry, plugin=spec.name)


class ParticleNoise:
    """A noise-driven generator that is no torch module: the protocol is structural."""

    def sample_noise(self, mask: Tensor) -> tuple[Tensor]:
        return (torch.randn(*mask.shape, 2),)

    def forward_from_noise(self, noise: tuple[Tensor, ...], mask: Tensor, cond: Tensor) -> Tensor:
        return noise[0] * mask.unsqueeze(-1)


def test_noise_driven_generator_is_a_runtime_checkable_protocol(registry) -> None:
    from pcgen.testing.contract import build, noise_interface

    assert isinstance(ParticleNoise(), pcgen.NoiseDrivenGenerator)
    assert not isinstance(Garbage(), pcgen.NoiseDrivenGenerator)
    for name, holder in (("epic-gan", "generator"), ("igapt", "generator"), ("mdma", "generator"),
                         ("gast", "generator"), ("epic-fm", None)):
        spec = registry.model(name)
        model = build(registry, spec)
        found = noise_interface(spec, model)
        assert found is (getattr(model, holder) if holder else None), name
