"""Entry-point module of the OmniJet plugin (group ``pcgen.plugins``, name ``omnijet``)."""

from __future__ import annotations

from pcgen import PretrainedWeights, DataInfo, GenerativeModel, ModelSpec, StagedModel, StageSpec, hookimpl
from torch import Tensor

from pcgen_omnijet.config import OmniJetConfig
from pcgen_omnijet.gpt import GPT
from pcgen_omnijet.tokenizer import Tokenizer

PCGEN_CONTRACT = "2.3"

PAPER = (
    "J. Birk, A. Hallin, G. Kasieczka, OmniJet-alpha: the first cross-task foundation model for particle "
    "physics, arXiv:2403.05618; J. Birk et al., OmniJet-alpha_C (calorimeter showers), 2024"
)


class OmniJetModel(StagedModel):
    """Tokenizer + GPT, trained in two stages: ``part("tokenizer")`` (objective recipe), then
    ``part("gpt")`` (autoregressive recipe) on the frozen tokenizer's codes.

    Generation draws the multiplicity itself (where the GPT draws the stop token); :meth:`sample`
    with a given mask places the stop token at each cloud's multiplicity instead.
    """

    draws_multiplicity = True

    def __init__(self, config: OmniJetConfig, info: DataInfo) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = Tokenizer(config, info.num_features, tuple(info.feature_names))
        self.gpt = GPT(config, self.tokenizer, info.max_particles, tuple(info.feature_names))

    def part(self, stage: str) -> GenerativeModel:
        parts: dict[str, GenerativeModel] = {"tokenizer": self.tokenizer, "gpt": self.gpt}
        if stage not in parts:
            raise KeyError(f"omnijet has no stage {stage!r}; its stages are {', '.join(parts)}")
        return parts[stage]

    def _sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        return self.gpt.sample(mask, cond)

    def _sample_with_multiplicity(self, num: int, max_particles: int) -> tuple[Tensor, Tensor]:
        return self.gpt.sample_with_multiplicity(num, max_particles)


def build(config: OmniJetConfig, info: DataInfo) -> OmniJetModel:
    """Tokenizer and GPT for clouds of shape ``info`` (jets or showers; any features)."""
    return OmniJetModel(config, info)


SPEC = ModelSpec(
    name="omnijet",
    config_class=OmniJetConfig,
    build=build,
    recipe="staged",
    stages=(
        StageSpec("tokenizer", "objective", 0.3, "the VQ-VAE: reconstruction + commitment, unused codes replaced"),
        StageSpec("gpt", "autoregressive", 0.7, "the GPT's next-token prediction on the frozen tokenizer's codes"),
    ),
    # Papers: Ranger (RAdam + Lookahead), lr 1e-3 for both; torch has no Ranger, AdamW stands in.
    recipe_defaults={
        "tokenizer": {"optimizer": "adamw", "lr": 1e-3, "warmup_steps": 50},
        "gpt": {"optimizer": "adamw", "lr": 1e-3, "warmup_steps": 100, "weight_decay": 0.01, "grad_clip": 1.0},
    },
    # Papers: 152 clouds per tokenizer batch, 72 per GPT batch (one size serves both stages here).
    train_defaults={"batch_size": 128},
    quick_config={
        "codebook_size": 256, "tokenizer_hidden": 64, "embed_dim": 64, "num_heads": 4, "num_blocks": 2,
    },
    preprocessing="standard",
    log_features=("pt_rel", "E"),
    multiplicity="empirical",
    permutation_equivariant=False,  # an autoregressive model over ordered sequences
    critic_permutation_invariant=True,
    paper=PAPER,
    description=(
        "OmniJet-alpha: a VQ-VAE turns each particle or calorimeter hit into one of 8,192 tokens; a GPT "
        "generates token sequences ordered by pT or energy until it draws the stop token (KV-cached)."
    ),
    # Trained here (see the card beside the weights: data, command, hardware, metrics with the truth row).
    pretrained=(
        PretrainedWeights(
            name="omnijet-top30",
            location="package:pcgen_omnijet/weights/omnijet-top30.safetensors",
            sha256="1a13e72515c80139a10ba3572bfe33790ebde628ef88d8d34b19d09c51e1b40d",
            description="Pythia 8 top jets, 30 particles; 7 minutes on one H200 GPU (5,600 GPT steps), then the GPT 48 CPU minutes more (4,500 steps) on jets reflected in eta and phi; float16 weights; best checkpoint",
        ),
    ),
)


@hookimpl
def pcgen_register_models() -> list[ModelSpec]:
    """Register the ``omnijet`` model."""
    return [SPEC]
