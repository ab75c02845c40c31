"""MDMA's architecture and mean-field matching settings.

Where the defaults come from:

- **paper** (Käch & Melzer-Pellmann, arXiv:2305.15254, sec. 3): generator and critic are stacks
  of mean-field blocks after a point-wise linear embedding; the mean-field starts as the mean of
  the points; the critic scores the final mean-field (with the condition) by a network with one
  hidden layer, the generator maps the points to the features with one point-wise layer; the jet
  critic uses weight normalisation (the shower critic spectral normalisation and L2 attention);
  the deep mean-field matching loss is applied for the first 50,000 generator steps.
- **reference code** (``kaechb/MDMA``, branch ``NeurIPS``, ``default_jet.yaml``): generator 7
  blocks, latent width 16, hidden width 48, 16 heads; critic 2 blocks, latent 16, hidden 64,
  16 heads; LeakyReLU with PyTorch's default slope 0.01; per-particle noise with as many
  features as the data (the paper: "input noise n x f"); matching weight 1.
- **pcgen's own choices**: the width of the critic head's hidden layer (= the critic's hidden
  width); the mean-field starts as the masked mean (reference: sum / mean multiplicity); the
  generator's output layer acts on layer-normed points and is He-initialised, so samples start
  at the standardised data's unit scale; see ``pcgen.nn.mean_field`` for the block (residual
  mean-field, LeakyReLU between the point-wise layers, GLU conditioning in every block of both
  networks) and the plugin's README for every difference from the reference.

The optimisation settings (LSGAN, Adam with betas (0, 0.999), lr 1e-4, 2,000 warm-up steps,
cosine) are the recipe's, see ``plugin.py``.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from pcgen import ModelConfig


class MDMAConfig(ModelConfig):
    """Settings of the MDMA generator, critic and mean-field matching loss (sources: module docstring)."""

    generator_blocks: int = Field(7, ge=1, description="Mean-field blocks in the generator (reference: 7).")
    generator_latent_dim: int = Field(16, ge=1, description="Generator point / mean-field width (reference: 16).")
    generator_hidden: int = Field(48, ge=1, description="Generator hidden (attention) width (reference: 48).")
    generator_heads: int = Field(16, ge=1, description="Generator attention heads (reference: 16).")
    noise_dim: int | None = Field(
        None, ge=1, description="Noise features per particle; None = the data's features (paper: n x f noise)."
    )
    critic_blocks: int = Field(2, ge=1, description="Mean-field blocks in the critic (reference: 2).")
    critic_latent_dim: int = Field(16, ge=1, description="Critic point / mean-field width (reference: 16).")
    critic_hidden: int = Field(64, ge=1, description="Critic hidden (attention) width (reference: 64).")
    critic_heads: int = Field(16, ge=1, description="Critic attention heads (reference: 16).")
    critic_head_hidden: int | None = Field(
        None, ge=1, description="Hidden width of the critic's score network; None = critic_hidden (pcgen)."
    )
    critic_normalization: Literal["weight", "spectral", "none"] = Field(
        "weight", description="On every critic linear layer: 'weight' (jets, paper), 'spectral' (showers, paper)."
    )
    critic_attention: Literal["dot", "l2"] = Field(
        "dot", description="Critic attention: dot product (jets) or Lipschitz L2-distance (showers, paper)."
    )
    negative_slope: float = Field(0.01, ge=0, description="LeakyReLU negative slope (reference: 0.01).")
    mean_field_loss_steps: int = Field(
        50_000, ge=0, description="Apply the mean-field matching loss while step < this (paper: 50,000)."
    )
    mean_field_loss_weight: float = Field(1.0, ge=0, description="Weight of the mean-field matching loss (reference: 1).")
    mean_field_matching: Literal["paired", "mean"] = Field(
        "paired",
        description=(
            "'paired': MSE between the mean-fields of each generated cloud and the real cloud whose mask it "
            "shares (paper, reference); 'mean': MSE between the batch means (Salimans et al. feature matching)."
        ),
    )

    @model_validator(mode="after")
    def _heads_divide_widths(self) -> Self:
        for name, width, heads in (
            ("generator_hidden", self.generator_hidden, self.generator_heads),
            ("critic_hidden", self.critic_hidden, self.critic_heads),
        ):
            if width % heads:
                raise ValueError(f"{name}={width} is not divisible by its {heads} heads")
        return self

    @property
    def head_hidden(self) -> int:
        """Hidden width of the critic's score network."""
        return self.critic_hidden if self.critic_head_hidden is None else self.critic_head_hidden
