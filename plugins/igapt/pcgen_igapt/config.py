"""iGAPT's architecture settings.

Where the defaults come from:

- **paper** (Li, Krishnamohan, Kansal et al., arXiv:2312.04757, sec. 3): 4 generator and 8
  discriminator IPAB blocks; 16 initial particle (noise) features and 128 initial jet (noise)
  features; discriminator dropout 0.5 and layer normalisation; LeakyReLU after every linear
  layer except the outputs; conditioning on the multiplicity N in both networks; one PMA seed.
- **reference code** (``rkansal47/MPGAN``, branch ``igapt``, ``setup_training.py``): embedding
  width 64, 4 attention heads, particle noise std 0.2, jet noise std 1, LeakyReLU slope 0.2,
  feed-forward nets of one linear layer (no hidden layers), no block residual, no generator
  layer norm or dropout.
- **pcgen's own choice**: the width of the global vector z (equal to the embedding width, which
  the reference requires implicitly).

The optimisation settings (RMSprop, lr 0.5e-4 / 1.5e-4, LS loss) are the recipe's, see
``plugin.py``.

Deliberate differences from the reference code: the discriminator pools only real particles
(the reference averages over padding too) and divides the sum by N_max to keep its scale near 1;
dropout acts on each attention / feed-forward output before the residual sum (the reference
drops the whole residual stream); the critic returns a raw score (the core applies the sigmoid);
the generator takes its mask from the data (the reference derives it from the noise's ranks).
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from pcgen import ModelConfig


class IGAPTConfig(ModelConfig):
    """Settings of the iGAPT generator and discriminator (see the module docstring for sources)."""

    embed_dim: int = Field(64, ge=1, description="Particle embedding width (reference: 64).")
    global_dim: int | None = Field(
        None, ge=1, description="Width of the global vector z; None = embed_dim (pcgen's choice)."
    )
    num_heads: int = Field(4, ge=1, description="Attention heads; must divide the widths (reference: 4).")
    generator_blocks: int = Field(4, ge=1, description="IPAB blocks in the generator (paper: 4).")
    discriminator_blocks: int = Field(8, ge=1, description="IPAB blocks in the discriminator (paper: 8).")
    particle_noise_dim: int = Field(16, ge=1, description="Initial particle features, per particle (paper: 16).")
    jet_noise_dim: int = Field(128, ge=1, description="Initial jet features (paper: 128).")
    particle_noise_std: float = Field(0.2, gt=0, description="Std of the particle noise (reference: 0.2).")
    jet_noise_std: float = Field(1.0, gt=0, description="Std of the jet noise (reference: 1).")
    ff_hidden: list[int] = Field(
        default_factory=list,
        description="Hidden widths of each block's feed-forward net; [] = one linear layer (reference).",
    )
    negative_slope: float = Field(0.2, ge=0, description="LeakyReLU negative slope (reference: 0.2).")
    condition_on_multiplicity: bool = Field(
        True, description="Embed the condition (n / N) into z in both networks (paper)."
    )
    block_residual: bool = Field(False, description="Add each block's input particles to its output (reference: off).")
    generator_layer_norm: bool = Field(False, description="LayerNorm in generator blocks (reference: off).")
    generator_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout in generator blocks (reference: 0).")
    discriminator_layer_norm: bool = Field(True, description="LayerNorm in discriminator blocks (paper).")
    discriminator_dropout: float = Field(0.5, ge=0, lt=1, description="Dropout in discriminator blocks (paper: 0.5).")
    pooling_seeds: int = Field(1, ge=1, description="PMA seed vectors of the discriminator (paper: 1).")

    @model_validator(mode="after")
    def _heads_divide_widths(self) -> Self:
        for name, width in (("embed_dim", self.embed_dim), ("global_dim", self.z_dim)):
            if width % self.num_heads:
                raise ValueError(f"{name}={width} is not divisible by num_heads={self.num_heads}")
        if any(h < 1 for h in self.ff_hidden):
            raise ValueError(f"ff_hidden widths must be >= 1, got {self.ff_hidden}")
        return self

    @property
    def z_dim(self) -> int:
        """Width of the global vector z."""
        return self.embed_dim if self.global_dim is None else self.global_dim
