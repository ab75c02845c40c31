"""OmniJet's architecture and sampling settings.

Where the defaults come from:

- **papers** (Birk, Hallin, Kasieczka, OmniJet-alpha, arXiv:2403.05618; its calorimeter version,
  Birk et al. 2024): a VQ-VAE tokenizer with latent dimension 8, hidden width 128, loss
  ``MSE + alpha * commitment`` with ``alpha = 10`` and the commitment split
  ``beta * |sg[z_e] - z_q|^2 + (1 - beta) * |z_e - sg[z_q]|^2``, ``beta = 0.8``, unused code vectors
  replaced every 100 steps; codebooks of 8,192 codes for jets and 65,536 for showers; a GPT-1-style
  decoder with embedding 256, 8 heads and 3 blocks over ``start, t_1 ... t_n, stop`` ordered by pT
  (jets) or energy (showers).
- **pcgen's own choices**, each a setting: the tokenizer's encoder and decoder are per-particle
  MLPs (a token depends on its particle alone, so the encoder is permutation-safe and ignores
  padding by construction); the default codebook is 8,192 codes for showers too, because the
  65,536-way output layer makes CPU runs impractically slow (``codebook_size = 65536`` restores
  the paper's value); unused codes are replaced every 10 steps, not 100: the papers' codebook
  (vqtorch, with an affine reparameterisation and synchronised updates) follows the encoder as it
  moves, a plain codebook does not, and most of it is stranded within the first tens of steps
  (measured on CPU, 150 tokenizer steps on ``calo-photons``: reconstruction MSE 0.019 with 10,
  0.19 with 100; 200 steps on top jets: 0.007 against 0.028); the GPT is pre-norm with learned
  position embeddings; sampling uses temperature 1 and no top-k cut unless set.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from pcgen import ModelConfig


class OmniJetConfig(ModelConfig):
    """Settings of the tokenizer, the GPT and sampling."""

    # -- tokenizer (VQ-VAE) ------------------------------------------------------------------------
    codebook_size: int = Field(8192, ge=2, le=65536, description="Code vectors (paper: 8,192 jets, 65,536 showers).")
    latent_dim: int = Field(8, ge=1, description="Dimension of the code vectors.")
    tokenizer_hidden: int = Field(128, ge=1, description="Width of the encoder and decoder MLPs.")
    tokenizer_layers: int = Field(3, ge=1, description="Linear layers of the encoder and of the decoder.")
    alpha: float = Field(10.0, ge=0, description="Weight of the commitment loss.")
    beta: float = Field(0.8, ge=0, le=1, description="Share of the commitment loss that moves the codebook.")
    replace_every: int = Field(10, ge=1, description="Steps between replacements of unused code vectors (paper: 100).")
    # -- GPT ----------------------------------------------------------------------------------------
    embed_dim: int = Field(256, ge=1, description="Token embedding width.")
    num_heads: int = Field(8, ge=1, description="Attention heads.")
    num_blocks: int = Field(3, ge=1, description="GPT blocks.")
    mlp_ratio: int = Field(4, ge=1, description="Feed-forward width as a multiple of embed_dim.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout in the GPT blocks.")
    # -- sampling -----------------------------------------------------------------------------------
    temperature: float = Field(1.0, gt=0, description="Softmax temperature of sampling.")
    top_k: int = Field(0, ge=0, description="Sample among the k most likely tokens (0: all).")
    kv_cache: bool = Field(True, description="Reuse the keys and values of the prefix while generating.")
    cache_memory_mb: int = Field(
        1024, ge=1, description="Memory the KV cache may take; larger batches are generated in chunks."
    )

    @model_validator(mode="after")
    def _heads_divide_width(self) -> OmniJetConfig:
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim={self.embed_dim} must be a multiple of num_heads={self.num_heads}")
        return self
