"""Entry-point module of the GAST plugin (group ``pcgen.plugins``, name ``gast``)."""

from __future__ import annotations

from pcgen import PretrainedWeights, AdversarialModel, DataInfo, ModelSpec, hookimpl

from pcgen_gast.config import GASTConfig
from pcgen_gast.networks import GASTDiscriminator, GASTGenerator

PCGEN_CONTRACT = "2.3"

PAPER = (
    "K. Stelzner, K. Kersting, A. R. Kosiorek, Generative Adversarial Set Transformers, "
    "ICML 2020 Workshop on Object-Oriented Learning"
)


def build(config: GASTConfig, info: DataInfo) -> AdversarialModel:
    """The GAST generator/discriminator pair for data of shape ``info``."""
    generator = GASTGenerator(config, info.num_features, info.cond_dim)
    critic = GASTDiscriminator(config, info.num_features, info.cond_dim)
    return AdversarialModel(generator, critic)


SPEC = ModelSpec(
    name="gast",
    config_class=GASTConfig,
    build=build,
    recipe="adversarial",
    # The iGAPT paper (arXiv:2312.04757) trains its GAST baseline like iGAPT: RMSprop with a
    # two-time-scale rule (0.5e-4 G, 1.5e-4 D); its group's reference code uses the LS loss.
    recipe_defaults={"loss": "ls", "optimizer": "rmsprop", "lr_generator": 0.5e-4, "lr_critic": 1.5e-4},
    # The iGAPT paper uses large GPU batches; 128 keeps CPU steps short.
    train_defaults={"batch_size": 128},
    quick_config={
        "embed_dim": 32,
        "generator_blocks": 2,
        "discriminator_blocks": 2,
        "num_inducing": 8,
        "latent_dim": 32,
    },
    preprocessing="minmax",
    paper=PAPER,
    description=(
        "GAST: GAN whose generator and discriminator are stacks of induced set attention blocks "
        "(20 learned inducing points), with a global set feature concatenated to every particle "
        "before each block; linear in N, conditioned on the multiplicity."
    ),
    permutation_equivariant=True,
    critic_permutation_invariant=True,
    # Trained here (see the card beside the weights: data, command, hardware, metrics with the truth row).
    pretrained=(
        PretrainedWeights(
            name="gast-top30",
            location="package:pcgen_gast/weights/gast-top30.safetensors",
            sha256="ada46df8daf7efbbd46977130a49c59ded3c37a77c1a5f773335ee1fca7e9f46",
            description="Pythia 8 top jets, 30 particles; 70 + 60 CPU minutes, then 58 with observable matching (jet mass, "
                        "pT_rel); best checkpoint by W1M x W1P on validation jets",
        ),
    ),
)


@hookimpl
def pcgen_register_models() -> list[ModelSpec]:
    """Register the ``gast`` model."""
    return [SPEC]
