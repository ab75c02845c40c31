"""EPiC-FM's architecture, flow-matching and sampling settings.

Where the defaults come from:

- **paper** (Buhmann, Ewen, Kasieczka et al., "EPiC-ly Fast Particle Cloud Generation with
  Flow-Matching and Diffusion", arXiv:2310.00049): an EPiC network (Buhmann, Kasieczka, Thaler,
  arXiv:2301.08128) as the velocity field of a continuous normalising flow trained by conditional
  flow matching on straight (optimal-transport) paths with a minimal width ``sigma_min``; an
  exponential moving average (EMA) of the weights for sampling; sampling by an ODE solver.
- **reference code** (``uhh-pd-ml/EPiC-FM``, ``configs/model/flow_matching.yaml`` and
  ``configs/experiment/fm_tops30_cond.yaml``): 6 EPiC layers, hidden width 128, global (latent)
  width 10, LeakyReLU, weight normalisation on every linear layer, sum pooling scaled by 1e-2,
  no dropout; time encoded by 16 frequencies (32 features) concatenated to every global and local
  layer; ``sigma = 1e-4``; EMA decay 0.999 from step 0; midpoint solver for evaluation.
- **pcgen's choices** (departures, each in the plugin README): time runs from noise (t=0) to data
  (t=1) (the reference integrates from 1 to 0; the same ODE); the output layer is linear (the
  reference puts a LeakyReLU on the velocity); the EMA decay warms up as ``min(decay, (1 + k) /
  (10 + k))`` after ``k`` updates so that short runs sample from trained weights; the condition is
  the multiplicity n / N (the reference's conditioned model takes jet pT and mass); 10 midpoint
  solver steps by default (the fewest within the errors of 100, measured).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pcgen import ModelConfig


class EPiCFMConfig(ModelConfig):
    """Settings of the EPiC velocity network, the flow-matching loss and the ODE sampler."""

    hidden: int = Field(128, ge=1, description="Per-particle width of the EPiC layers (reference: 128).")
    global_dim: int = Field(10, ge=1, description="Width of the global vector (reference 'latent': 10).")
    layers: int = Field(6, ge=1, description="EPiC layers (reference: 6).")
    frequencies: int = Field(
        16, ge=1, description="Time-embedding frequencies, cos and sin of each, geometric from 1 to 100 (the "
        "reference: 32 cosines at frequencies exp(k)).",
    )
    time_input: Literal["every_layer", "input", "input_embedding"] = Field(
        "every_layer", description="Where time and the condition enter the network: 'every_layer' (the time "
        "embedding and the condition concatenated to the input of every linear layer, as in the reference), "
        "'input' (scalar t and the condition once, beside each particle's features: a ~470k-parameter network, "
        "as the calibration of issue 18 counts) or 'input_embedding' (the time embedding once, at the input).",
    )
    sum_scale: float = Field(1e-2, gt=0, description="Factor on the sum pooling (reference: 1e-2).")
    negative_slope: float = Field(0.01, ge=0, description="LeakyReLU negative slope (reference: PyTorch's 0.01).")
    weight_norm: bool = Field(True, description="Weight normalisation on every linear layer (reference: true).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout in the EPiC layers (reference: 0).")
    sigma_min: float = Field(1e-4, ge=0, lt=1, description="Width of the conditional paths at the data end (reference: 1e-4).")
    ema_decay: float = Field(0.999, ge=0, lt=1, description="EMA decay of the sampling weights (reference: 0.999); 0 = no EMA.")
    solver_steps: int = Field(
        10, ge=1, description="Steps of the fixed-step solvers (euler, midpoint). 10 midpoint steps are the fewest "
        "whose W1M, W1P and FPD stay within 2 sigma of 100 steps (benchmarks/few_step_sampling.py; reference: 100).",
    )
    time_grid: str = Field(
        "uniform", pattern="^(uniform|cosine)$",
        description="Where the fixed-step solvers place their steps: 'uniform', or 'cosine' (denser near both ends).",
    )
    default_solver: str = Field(
        "midpoint", pattern="^(midpoint|euler|dopri5)$",
        description="The sampling variant used when none is named: 'midpoint', 'euler' or 'dopri5'.",
    )
    reflow_pairs: int = Field(
        0, ge=0, description="0: flow matching on the data. More: reflow (rectified flow, Liu, Gong & Liu, "
        "arXiv:2209.03003): the weights the run starts from (train.init_weights) become a frozen teacher that "
        "maps noise to this many clouds, made with the masks and conditions of the first training batches; the "
        "network then learns the straight path from each noise to its cloud, so that 1-4 Euler steps sample well.",
    )
    reflow_teacher_steps: int = Field(20, ge=1, description="Midpoint steps of the reflow teacher's solver.")
    reflow_loss: Literal["path", "solver"] = Field(
        "path", description="What the reflow student learns from each coupling: 'path' (the velocity of the straight "
        "path from the noise to the teacher's cloud, at a random time: reflow proper) or 'solver' (the cloud itself, "
        "reached from the noise by the student's own sampler, default_solver with solver_steps: the distillation step "
        "that follows reflow in Liu, Gong & Liu, section 2.3; start it from reflow weights).",
    )
    adaptive_tolerance: float = Field(1e-4, gt=0, description="rtol = atol of the adaptive dopri5 solver.")
