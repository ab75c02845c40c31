"""Entry-point module of the EPiC-FM plugin (group ``pcgen.plugins``, name ``epic-fm``)."""

from __future__ import annotations

from pcgen import DataInfo, ModelSpec, PretrainedWeights, hookimpl

from pcgen_epic_fm.config import EPiCFMConfig
from pcgen_epic_fm.networks import EPiCFlowMatching

PCGEN_CONTRACT = "2.3"

PAPER = (
    "E. Buhmann, C. Ewen, D. A. Faroughy, T. Golling, G. Kasieczka, M. Leigh, G. Quétant, J. A. Raine, "
    "D. Sengupta, D. Shih, EPiC-ly Fast Particle Cloud Generation with Flow-Matching and Diffusion, arXiv:2310.00049"
)


def build(config: EPiCFMConfig, info: DataInfo) -> EPiCFlowMatching:
    """The EPiC flow-matching model for data of shape ``info``."""
    return EPiCFlowMatching(config, info)


SPEC = ModelSpec(
    name="epic-fm",
    config_class=EPiCFMConfig,
    build=build,
    conditions=("*",),  # any conditions: the networks take cond of width DataInfo.cond_dim
    recipe="objective",
    # Reference (flow_matching.yaml, fm_tops30_cond.yaml): AdamW lr 1e-3, weight decay 5e-5,
    # cosine schedule with 1,000 warm-up steps, gradient clipping at 0.5.
    recipe_defaults={
        "optimizer": "adamw",
        "lr": 1e-3,
        "weight_decay": 5e-5,
        "warmup_steps": 1000,
        "schedule": "cosine",
        "grad_clip": 0.5,
    },
    # Reference: batch size 1024.
    train_defaults={"batch_size": 1024},
    quick_config={"hidden": 32, "global_dim": 8, "layers": 2, "frequencies": 4, "solver_steps": 20},
    multiplicity="empirical",
    # Gaussian noise at t=0 matches standardised particle features.
    preprocessing="standard",
    paper=PAPER,
    description=(
        "EPiC-FM: continuous normalising flow trained by conditional flow matching on straight paths, "
        "with an EPiC (equivariant point cloud) velocity network; EMA weights; Euler, midpoint or "
        "adaptive ODE sampling."
    ),
    permutation_equivariant=True,
    critic_permutation_invariant=True,
    # Trained here: 60 CPU minutes on 50,000 Pythia top jets (N=30); the card beside the weights
    # holds the config, data recipe and fingerprint, hardware and metrics with the truth row.
    pretrained=(
        PretrainedWeights(
            name="epic-fm-top30",
            location="package:pcgen_epic_fm/weights/epic-fm-top30.safetensors",
            sha256="c05bdccf10e301d3e1d27326267952861e2d806485e7c2651692e44ba382dd75",
            description="Pythia 8 top jets, 30 particles; 7 minutes on one H200 GPU, then 400 CPU minutes; float16 weights; 50 midpoint steps",
        ),
        PretrainedWeights(
            name="epic-fm-reflow-top30",
            location="package:pcgen_epic_fm/weights/epic-fm-reflow-top30.safetensors",
            sha256="694468056489bf7b1d71a8fd4f7cf9a84653bd4053d0a457bb7816c672a16b92",
            description="the epic-fm-top30 teacher of 2026-12-05 distilled straight onto a 2-step Euler sampler (40 CPU minutes); Euler, 2 steps only",
        ),
    ),
)


@hookimpl
def pcgen_register_models() -> list[ModelSpec]:
    """Register the ``epic-fm`` model."""
    return [SPEC]
