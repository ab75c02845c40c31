"""Entry-point module of the MDMA plugin (group ``pcgen.plugins``, name ``mdma``)."""

from __future__ import annotations

from pcgen import PretrainedWeights, DataInfo, ModelSpec, hookimpl

from pcgen_mdma.config import MDMAConfig
from pcgen_mdma.networks import MDMACritic, MDMAGenerator, MDMAModel

PCGEN_CONTRACT = "2.3"

PAPER = "B. Käch, I. Melzer-Pellmann, Attention to Mean-Fields for Particle Cloud Generation, arXiv:2305.15254"


def build(config: MDMAConfig, info: DataInfo) -> MDMAModel:
    """The MDMA generator/critic pair (with mean-field matching) for data of shape ``info``."""
    generator = MDMAGenerator(config, info.num_features, info.cond_dim)
    critic = MDMACritic(config, info.num_features, info.cond_dim)
    return MDMAModel(generator, critic, config)


SPEC = ModelSpec(
    name="mdma",
    config_class=MDMAConfig,
    build=build,
    conditions=("*",),  # any conditions: the networks take cond of width DataInfo.cond_dim
    recipe="adversarial",
    # Paper (sec. 3.1, JetNet150): LSGAN; Adam with zero momentum; linear warm-up to 1e-4, then
    # cosine annealing. Reference (fit.py): betas (0, 0.999), lr 1e-4 for both, 2,000 warm-up steps.
    recipe_defaults={
        "loss": "ls",
        "optimizer": "adam",
        "betas": (0.0, 0.999),
        "lr_generator": 1e-4,
        "lr_critic": 1e-4,
        "warmup_steps": 2000,
        "schedule": "cosine",
    },
    # Reference default_jet.yaml: batch size 128.
    train_defaults={"batch_size": 128},
    quick_config={
        "generator_blocks": 3,
        "generator_hidden": 32,
        "generator_heads": 4,
        "critic_hidden": 32,
        "critic_heads": 4,
    },
    # Paper: N is drawn from a KDE of the training multiplicities at generation time.
    multiplicity="kde",
    # Reference: a StandardScaler fit on the real particles, hence the linear generator output.
    preprocessing="standard",
    paper=PAPER,
    description=(
        "MDMA: GAN whose generator and critic are stacks of mean-field attention blocks (a mean-field "
        "token gathers the points by cross-attention; linear in N), with a weight-normalised critic and "
        "deep mean-field matching for the first generator steps."
    ),
    permutation_equivariant=True,
    critic_permutation_invariant=True,
    # Trained here (see the card beside the weights: data, command, hardware, metrics with the truth row).
    pretrained=(
        PretrainedWeights(
            name="mdma-top30",
            location="package:pcgen_mdma/weights/mdma-top30.safetensors",
            sha256="0dd841d63afe3048b3bd0399f04f9feacbb03222e3b144f9c3374c5b78879675",
            description="Pythia 8 top jets, 30 particles; 60 CPU minutes with observable matching (jet mass, pT_rel); "
                        "best checkpoint by W1M x W1P on validation jets",
        ),
    ),
)


@hookimpl
def pcgen_register_models() -> list[ModelSpec]:
    """Register the ``mdma`` model."""
    return [SPEC]
