"""GAST's architecture settings.

Where the defaults come from:

- **iGAPT paper** (Li, Krishnamohan, Kansal et al., arXiv:2312.04757, sec. 2-3), which trains GAST
  as its baseline: 3 generator and 6 discriminator ISAB blocks; 20 inducing points per ISAB; the
  global set feature concatenated to every particle before every ISAB; discriminator dropout 0.5
  and layer normalisation; LeakyReLU after every linear layer except the outputs; one PMA seed.
- **GAST paper** (Stelzner, Kersting, Kosiorek, ICML 2020 OOL workshop): a set generator from
  i.i.d. per-element noise plus a global latent, and a permutation-invariant set discriminator.
- **reference code of the iGAPT group** (``rkansal47/MPGAN``, ``setup_training.py``): embedding
  width 64, 4 attention heads, particle noise std 0.2, LeakyReLU slope 0.2, feed-forward nets of
  one linear layer, no generator layer norm or dropout.
- **unofficial TF port** (``DLii-Research/tf-gast``): a global latent of width 64.
- **pcgen's own choices**: 16 noise features per particle (iGAPT's value for its own model);
  the multiplicity condition embedded and added to the generator's latent and to every global
  feature of the discriminator; the global feature of every later block is the masked mean of
  the current set (see :mod:`pcgen_gast.networks`).

The optimisation settings (RMSprop, lr 0.5e-4 / 1.5e-4, LS loss) are the recipe's, see
``plugin.py``.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from pcgen import ModelConfig


class GASTConfig(ModelConfig):
    """Settings of the GAST generator and discriminator (see the module docstring for sources)."""

    embed_dim: int = Field(64, ge=1, description="Particle embedding width, also of the global feature (64).")
    num_heads: int = Field(4, ge=1, description="Attention heads; must divide embed_dim (reference: 4).")
    num_inducing: int = Field(20, ge=1, description="Learned inducing points per ISAB (paper: 20).")
    generator_blocks: int = Field(3, ge=1, description="ISAB blocks in the generator (paper: 3).")
    discriminator_blocks: int = Field(6, ge=1, description="ISAB blocks in the discriminator (paper: 6).")
    particle_noise_dim: int = Field(16, ge=1, description="Noise features per particle (pcgen: 16).")
    latent_dim: int = Field(64, ge=1, description="Width of the global latent noise z (TF port: 64).")
    particle_noise_std: float = Field(0.2, gt=0, description="Std of the particle noise (reference: 0.2).")
    latent_noise_std: float = Field(1.0, gt=0, description="Std of the global latent noise (1).")
    ff_hidden: list[int] = Field(
        default_factory=list,
        description="Hidden widths of each attention block's feed-forward net; [] = one linear layer (reference).",
    )
    negative_slope: float = Field(0.2, ge=0, description="LeakyReLU negative slope (reference: 0.2).")
    condition_on_multiplicity: bool = Field(
        True, description="Embed the condition (n / N) into the global features of both networks."
    )
    generator_layer_norm: bool = Field(False, description="LayerNorm in generator blocks (reference: off).")
    generator_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout in generator blocks (reference: 0).")
    discriminator_layer_norm: bool = Field(True, description="LayerNorm in discriminator blocks (paper).")
    discriminator_dropout: float = Field(0.5, ge=0, lt=1, description="Dropout in discriminator blocks (paper: 0.5).")
    pooling_seeds: int = Field(1, ge=1, description="PMA seed vectors of the discriminator (paper: 1).")

    @model_validator(mode="after")
    def _check_widths(self) -> Self:
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}")
        if any(h < 1 for h in self.ff_hidden):
            raise ValueError(f"ff_hidden widths must be >= 1, got {self.ff_hidden}")
        return self
