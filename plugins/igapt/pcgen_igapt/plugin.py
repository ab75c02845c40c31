"""Entry-point module of the iGAPT plugin (group ``pcgen.plugins``, name ``igapt``)."""

from __future__ import annotations

from pcgen import PretrainedWeights, AdversarialModel, DataInfo, ModelSpec, hookimpl

from pcgen_igapt.config import IGAPTConfig
from pcgen_igapt.networks import IGAPTDiscriminator, IGAPTGenerator

PCGEN_CONTRACT = "2.3"

PAPER = (
    "A. Li, V. Krishnamohan, R. Kansal et al., Induced Generative Adversarial Particle Transformers, arXiv:2312.04757"
)


def build(config: IGAPTConfig, info: DataInfo) -> AdversarialModel:
    """The iGAPT generator/discriminator pair for data of shape ``info``."""
    generator = IGAPTGenerator(config, info.num_features, info.cond_dim)
    critic = IGAPTDiscriminator(config, info.num_features, info.max_particles, info.cond_dim)
    return AdversarialModel(generator, critic)


SPEC = ModelSpec(
    name="igapt",
    config_class=IGAPTConfig,
    build=build,
    recipe="adversarial",
    # Paper: RMSprop with a two-time-scale rule (0.5e-4 G, 1.5e-4 D); reference code: LS loss.
    recipe_defaults={"loss": "ls", "optimizer": "rmsprop", "lr_generator": 0.5e-4, "lr_critic": 1.5e-4},
    # The paper trains with batches of 4096 (30 particles) on a GPU; 128 keeps CPU steps short.
    train_defaults={"batch_size": 128},
    quick_config={"embed_dim": 32, "generator_blocks": 2, "discriminator_blocks": 2, "jet_noise_dim": 32},
    preprocessing="minmax",
    paper=PAPER,
    description=(
        "iGAPT: GAN whose generator and discriminator are stacks of induced particle attention "
        "blocks (IPAB), where a global jet vector z is the single inducing point; linear in N, "
        "conditioned on the multiplicity."
    ),
    # Trained here (see the card beside the weights: data, command, hardware, metrics with the truth row).
    pretrained=(
        PretrainedWeights(
            name="igapt-top30",
            location="package:pcgen_igapt/weights/igapt-top30.safetensors",
            sha256="b6f1013c9268178a6f6eda379787766a8fe3d4357308ed24ee2a9263cfed901e",
            description="Pythia 8 top jets, 30 particles; 60 CPU minutes with observable matching (jet mass, pT_rel); "
                        "best checkpoint by W1M x W1P on validation jets",
        ),
    ),
)


@hookimpl
def pcgen_register_models() -> list[ModelSpec]:
    """Register the ``igapt`` model."""
    return [SPEC]
