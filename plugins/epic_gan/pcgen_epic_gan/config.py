"""EPiC-GAN's architecture settings.

Where the defaults come from:

- **paper** (Buhmann, Kasieczka, Thaler, "EPiC-GAN: Equivariant Point Cloud Generation for Particle
  Jets", arXiv:2301.08128): generator and critic are stacks of EPiC layers (a global vector updated
  from the mean and sum of the points, every point updated from itself and the global vector,
  residual connections, weight normalisation); per-point and global Gaussian noise; least-squares
  GAN loss.
- **reference code** (``uhh-pd-ml/EPiC-GAN``, ``start_training.py``, ``models.py``): 6 generator
  and 3 critic EPiC layers, hidden width 128, global (latent) width 10, 3 noise features per point,
  LeakyReLU (PyTorch's slope 0.01); the generator adds its embedded noise and starting global
  vector to the output of every layer; the critic scores ``cat(mean, sum, global)`` of its last
  layer by a residual two-layer MLP; Adam lr 1e-4 for both networks, betas (0.9, 0.999),
  batch 128, standardised particle features.
- **pcgen's choices** (the plugin README lists them): pooling is masked (padded points never
  enter a mean or a sum) and the sum is scaled by 1e-2 as in EPiC-FM; both networks see the
  condition n / N at every layer; the generator's point embedding has the same two-layer residual
  form as the critic's (the core's :class:`pcgen.nn.EPiCNetwork`).
"""

from __future__ import annotations

from pydantic import Field

from pcgen import ModelConfig


class EPiCGANConfig(ModelConfig):
    """Settings of the EPiC generator and critic."""

    hidden: int = Field(128, ge=1, description="Per-particle width of both networks (reference: 128).")
    global_dim: int = Field(10, ge=1, description="Width of the global vector and of the global noise (reference: 10).")
    particle_noise_dim: int = Field(3, ge=1, description="Noise features per particle (reference: 3).")
    generator_layers: int = Field(6, ge=1, description="EPiC layers of the generator (reference: 6).")
    critic_layers: int = Field(3, ge=1, description="EPiC layers of the critic (reference: 3).")
    sum_scale: float = Field(1e-2, gt=0, description="Factor on the sum pooling (pcgen, as EPiC-FM; reference: 1).")
    negative_slope: float = Field(0.01, ge=0, description="LeakyReLU negative slope (reference: 0.01).")
    weight_norm: bool = Field(True, description="Weight normalisation on every linear layer (reference: true).")
