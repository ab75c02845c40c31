"""The TF refiner's architecture settings.

Where the defaults come from:

- **paper** (Käch, Krücker, Melzer-Pellmann, arXiv:2211.13623): a rational-quadratic-spline
  coupling flow with 15 coupling layers and a different split after each layer, its parameter
  networks fully connected with skip connections; a refiner of 4 post-norm transformer encoder
  blocks adding a correction to the flow's output; a critic of 4 encoder blocks with a BERT-style
  class token whose output, with the jet's invariant mass, goes through a fully connected head.
- **reference code** (``kaechb/LitJetNet@neurips:LitNF/hparams.yaml``, ``lit_nf.py``): 5 spline
  bins, tail bound 6 with linear tails, conditioner ``ResidualNet`` of 2 blocks of width 256
  (ReLU); transformer width 100, 4 heads, feed-forward and head width 500, dropout 0.2; refiner
  head of two LeakyReLU/Dropout(p/2) layers; critic head ``Linear(d+1, 2h) -> Linear(2h, h) ->
  Linear(h, 1)``; LeakyReLU 0.2 in the critic's encoder, ReLU in the refiner's; Xavier-normal
  weights.
- **pcgen's own choices** (differences from the reference, each a setting):

  - padded particles: the flow models all ``N x 3`` dimensions, as the reference does, but the
    padded slots hold standard-normal noise (``padding_noise_std = 1``; the reference uses
    ``|N(0,1)| * 1e-7``) and the flow is conditioned on the multiplicity ``n / N``
    (``condition_on_multiplicity``; the reference is unconditional). Conditioned, the flow knows
    which slots are padding and only has to pass their noise through; at sampling the padded
    outputs are set to zero before anything else sees them.
  - the coupling masks are drawn from a fixed seed (``mask_seed``), so the architecture depends on
    the config alone; layers alternate a random half and its complement, so every dimension is
    transformed and the split changes after every layer.
  - the class token is a learned vector (initialised to ones; the reference uses fixed ones).
  - the jet mass fed to the critic's head is computed in an approximately physical space: each
    model-space feature goes through a learned affine map initialised at ``physical_scale`` /
    ``physical_shift`` (typical JetNet spreads and means of eta_rel, phi_rel, pt_rel), pt is
    clipped at 0, and the mass over the jet pT follows from the massless four-momenta. The
    reference computes it from the standardised features directly.
  - the refiner's last layer starts at zero (``refiner_zero_init``), so the refined jets equal the
    flow's when adversarial training begins.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from pcgen import ModelConfig


class TFRefinerConfig(ModelConfig):
    """Settings of the flow, the refiner and the critic (see the module docstring for sources)."""

    # -- the normalising flow --------------------------------------------------------------------
    coupling_layers: int = Field(15, ge=1, description="Rational-quadratic-spline coupling layers (paper: 15).")
    spline_bins: int = Field(5, ge=2, description="Bins of each spline (reference: 5).")
    tail_bound: float = Field(6.0, gt=0, description="Splines act on [-B, B], linear tails outside (reference: 6).")
    flow_hidden: int = Field(256, ge=1, description="Width of the conditioner ResidualNets (reference: 256).")
    flow_blocks: int = Field(2, ge=1, description="Residual blocks per conditioner (reference: 2).")
    condition_on_multiplicity: bool = Field(True, description="Condition the flow on n / N (pcgen; reference: no).")
    padding_noise_std: float = Field(
        1.0, gt=0, description="Std of the noise in padded slots during likelihood training (reference: 1e-7)."
    )
    mask_seed: int = Field(0, ge=0, description="Seed of the coupling layers' random splits.")

    # -- the transformers --------------------------------------------------------------------------
    embed_dim: int = Field(100, ge=1, description="Transformer width d_model (reference: 100).")
    num_heads: int = Field(4, ge=1, description="Attention heads; must divide embed_dim (reference: 4).")
    hidden: int = Field(500, ge=1, description="Feed-forward and head width (reference: 500).")
    refiner_blocks: int = Field(4, ge=1, description="Encoder blocks of the refiner (paper: 4).")
    critic_blocks: int = Field(4, ge=1, description="Encoder blocks of the critic (paper: 4).")
    dropout: float = Field(0.2, ge=0, lt=1, description="Dropout in the encoders; p/2 in the refiner's head.")
    negative_slope: float = Field(0.2, ge=0, description="LeakyReLU slope (critic encoder, heads).")
    refiner_zero_init: bool = Field(True, description="Start the refiner's correction at zero (pcgen).")
    critic_mass: bool = Field(True, description="Feed the jet mass to the critic's head (paper).")
    physical_scale: tuple[float, float, float] = Field(
        (0.12, 0.12, 0.05), description="Initial scale of the critic's map to physical-ish (eta, phi, pt)."
    )
    physical_shift: tuple[float, float, float] = Field(
        (0.0, 0.0, 0.033), description="Initial shift of the critic's map to physical-ish (eta, phi, pt)."
    )

    @model_validator(mode="after")
    def _heads_divide_width(self) -> Self:
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}")
        return self
