"""Entry-point module of the TF refiner plugin (group ``pcgen.plugins``, name ``tf-refiner``)."""

from __future__ import annotations

from pcgen import PretrainedWeights, AdversarialModel, DataInfo, GenerativeModel, ModelSpec, StagedModel, StageSpec, hookimpl
from torch import Tensor

from pcgen_tf_refiner.config import TFRefinerConfig
from pcgen_tf_refiner.flow import FlowModel
from pcgen_tf_refiner.networks import Critic, RefinedFlow, Refiner

PCGEN_CONTRACT = "2.4"

PAPER = (
    "B. Käch, D. Krücker, I. Melzer-Pellmann, Point Cloud Generation using Transformer Encoders and "
    "Normalising Flows, arXiv:2211.13623"
)

JET_FEATURES = ("eta_rel", "phi_rel", "pt_rel")


class TFRefinerModel(StagedModel):
    """Flow + refiner + critic, trained in two stages; samples as "tf" (refined) or "vnf" (flow alone).

    Parts: ``part("flow")`` is the :class:`FlowModel` (likelihood stage); ``part("refiner")`` is an
    :class:`~pcgen.AdversarialModel` whose generator is the frozen flow followed by the refiner and
    whose critic is the transformer critic (adversarial stage).
    """

    variants = ("tf", "vnf")

    def __init__(self, config: TFRefinerConfig, info: DataInfo) -> None:
        super().__init__()
        self.config = config
        self.flow = FlowModel(config, info.max_particles, info.num_features, info.cond_dim)
        refiner = Refiner(config, info.num_features)
        self.adversarial = AdversarialModel(RefinedFlow(self.flow, refiner), Critic(config, info.num_features))

    @property
    def refiner(self) -> Refiner:
        return self.adversarial.generator.refiner  # type: ignore[return-value]

    @property
    def critic(self) -> Critic:
        return self.adversarial.critic  # type: ignore[return-value]

    def part(self, stage: str) -> GenerativeModel:
        parts: dict[str, GenerativeModel] = {"flow": self.flow, "refiner": self.adversarial}
        if stage not in parts:
            raise KeyError(f"tf-refiner has no stage {stage!r}; its stages are {', '.join(parts)}")
        return parts[stage]

    def _sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        if self.variant == "vnf":
            return self.flow.sample(mask, cond)
        return self.adversarial.sample(mask, cond)


def build(config: TFRefinerConfig, info: DataInfo) -> TFRefinerModel:
    """The flow, refiner and critic for data of shape ``info`` (jets: eta_rel, phi_rel, pt_rel)."""
    if config.critic_mass and tuple(info.feature_names) != JET_FEATURES:
        raise ValueError(
            f"the critic's jet mass needs features {JET_FEATURES}, got {tuple(info.feature_names)}; "
            "set model.critic_mass=false for other data"
        )
    return TFRefinerModel(config, info)


SPEC = ModelSpec(
    name="tf-refiner",
    config_class=TFRefinerConfig,
    build=build,
    recipe="staged",
    stages=(
        StageSpec("flow", "likelihood", 0.25, "maximum likelihood of the normalising flow"),
        StageSpec("refiner", "adversarial", 0.75, "the refiner against the critic, the flow frozen"),
    ),
    recipe_defaults={
        # Reference: AdamW for the flow, lr_nf 7.22e-4.
        "flow": {"optimizer": "adamw", "lr": 7.22e-4},
        # Paper: LSGAN, RMSprop, linear warm-up then a two-cycle cosine. Reference: lr_g = lr_d = 4.327e-4;
        # the generator updates in 2 of every 6 steps (freq 6), about one in 3.
        "refiner": {
            "loss": "ls", "optimizer": "rmsprop", "lr_generator": 4.327e-4, "lr_critic": 4.327e-4,
            "cosine_cycles": 2, "critic_steps": 3,
        },
    },
    # The reference trains with batches of 1024 jets on a GPU; 256 keeps CPU steps short.
    train_defaults={"batch_size": 256},
    # Narrower and shallower; no dropout, whose random masks cost more than the small layers on a CPU.
    quick_config={
        "coupling_layers": 6, "flow_hidden": 128, "flow_blocks": 1, "embed_dim": 16, "num_heads": 2, "hidden": 32,
        "refiner_blocks": 2, "critic_blocks": 2, "dropout": 0.0,
    },
    preprocessing="standard",
    multiplicity="empirical",
    permutation_equivariant=False,  # the flow models fixed particle slots
    critic_permutation_invariant=True,
    paper=PAPER,
    description=(
        "TF refiner: a spline coupling normalising flow over the whole jet, trained by maximum likelihood, "
        "whose output a transformer encoder corrects, trained adversarially against a transformer critic "
        "with a class token and the jet mass; samples as 'tf' (flow + refiner) or 'vnf' (flow alone)."
    ),
    # Trained here (see the card beside the weights: data, command, hardware, metrics with the truth row).
    pretrained=(
        PretrainedWeights(
            name="tf-refiner-top30",
            location="package:pcgen_tf_refiner/weights/tf-refiner-top30.safetensors",
            sha256="cbd3a82667c165e318b352baaef352e142d955555692fc58e6ae73c52abf6a60",
            description="Pythia 8 top jets, 30 particles, log pT_rel; 55 CPU minutes, then the refiner 500 steps with "
                        "observable matching (jet mass, pT_rel); float16 weights; best checkpoint by W1M x W1P",
        ),
    ),
)


@hookimpl
def pcgen_register_models() -> list[ModelSpec]:
    """Register the ``tf-refiner`` model."""
    return [SPEC]
