"""iGAPT's generator and discriminator, built from pcgen's masked IPAB blocks.

Shapes: ``mask`` ``(B, N)`` bool (True = real particle), ``cond`` ``(B, C)`` (jets: n / N),
particles ``(B, N, F)`` in the preprocessed space (about [-1, 1]).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pcgen.nn import (
    FeedForward,
    InducedParticleAttentionBlock,
    PoolingByMultiheadAttention,
    apply_mask,
    check_condition,
    masked_mean,
    masked_sum,
    particle_and_global_noise,
)
from torch import Tensor, nn

from pcgen_igapt.config import IGAPTConfig


def _ipab_stack(config: IGAPTConfig, num_blocks: int, layer_norm: bool, dropout: float) -> nn.ModuleList:
    return nn.ModuleList(
        InducedParticleAttentionBlock(
            config.embed_dim,
            config.num_heads,
            global_dim=config.z_dim,
            ff_hidden=config.ff_hidden,
            layer_norm=layer_norm,
            dropout=dropout,
            negative_slope=config.negative_slope,
        )
        for _ in range(num_blocks)
    )


def _run_blocks(blocks: nn.ModuleList, x: Tensor, z: Tensor, mask: Tensor, residual: bool) -> tuple[Tensor, Tensor]:
    for block in blocks:
        x_new, z = block(x, z, mask)
        x = x + x_new if residual else x_new
    return x, z


class IGAPTGenerator(nn.Module):
    """Noise -> particles: embed particle noise and (jet noise + embedded condition) into (x, z),
    transform them with IPAB blocks, then ``tanh(Linear(x))``.

    ``forward(mask, cond) -> (B, N, F)`` draws its noise with ``torch.randn``;
    ``forward_from_noise`` takes the noise explicitly. Padded outputs are zero.
    """

    def __init__(self, config: IGAPTConfig, num_features: int, cond_dim: int = 1) -> None:
        super().__init__()
        self.config, self.num_features, self.cond_dim = config, num_features, cond_dim
        slope = config.negative_slope
        self.particle_embed = FeedForward(config.particle_noise_dim, config.embed_dim, negative_slope=slope)
        self.jet_embed = FeedForward(config.jet_noise_dim, config.z_dim, negative_slope=slope)
        self.cond_embed: FeedForward | None = None
        if config.condition_on_multiplicity and cond_dim > 0:
            self.cond_embed = FeedForward(cond_dim, config.z_dim, negative_slope=slope)
        self.blocks = _ipab_stack(
            config, config.generator_blocks, config.generator_layer_norm, config.generator_dropout
        )
        self.output = nn.Linear(config.embed_dim, num_features)

    def sample_noise(self, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Standard-normal noise for clouds shaped like ``mask`` ``(B, N)``, from torch's RNG.

        Returns ``(particle_noise (B, N, P), jet_noise (B, J))``, on the generator's device.
        """
        return particle_and_global_noise(mask, self.config.particle_noise_dim, self.config.jet_noise_dim, self.output.weight)

    def forward(self, mask: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.forward_from_noise(self.sample_noise(mask), mask, cond)

    def forward_from_noise(self, noise: Sequence[Tensor], mask: Tensor, cond: Tensor | None = None) -> Tensor:
        """Generate from standard-normal noise (scaled here by the configured stds).

        ``noise`` = ``(particle_noise (B, N, P), jet_noise (B, J))`` as from :meth:`sample_noise`,
        ``mask`` ``(B, N)``, ``cond`` ``(B, C)`` -> ``(B, N, F)`` in [-1, 1], zero where padded.
        """
        particle_noise, jet_noise = noise
        mask = mask.bool()
        scaled = apply_mask(particle_noise, mask) * self.config.particle_noise_std
        x = apply_mask(self.particle_embed(scaled), mask)
        z = self.jet_embed(jet_noise * self.config.jet_noise_std)
        if self.cond_embed is not None:
            z = z + self.cond_embed(check_condition(cond, self.cond_dim).to(z.dtype))
        x, _ = _run_blocks(self.blocks, x, z, mask, self.config.block_residual)
        return apply_mask(torch.tanh(self.output(x)), mask)


class IGAPTDiscriminator(nn.Module):
    """Particles -> one raw score per cloud (no sigmoid: the core's loss applies it).

    Embed the real particles; z = Linear(cat(masked mean, masked sum / N_max, cond)); IPAB blocks
    with layer norm and dropout; masked PMA pooling; a final linear layer. ``forward(x, mask,
    cond) -> (B,)``.
    """

    def __init__(self, config: IGAPTConfig, num_features: int, max_particles: int, cond_dim: int = 1) -> None:
        super().__init__()
        self.config, self.num_features, self.cond_dim = config, num_features, cond_dim
        self.max_particles = max_particles
        self.use_cond = config.condition_on_multiplicity and cond_dim > 0
        slope = config.negative_slope
        self.particle_embed = FeedForward(num_features, config.embed_dim, negative_slope=slope)
        z_in = 2 * config.embed_dim + (cond_dim if self.use_cond else 0)
        self.global_embed = FeedForward(z_in, config.z_dim, negative_slope=slope)
        layer_norm, dropout = config.discriminator_layer_norm, config.discriminator_dropout
        self.blocks = _ipab_stack(config, config.discriminator_blocks, layer_norm, dropout)
        self.pool = PoolingByMultiheadAttention(
            config.embed_dim,
            config.num_heads,
            config.pooling_seeds,
            ff_hidden=config.ff_hidden,
            layer_norm=layer_norm,
            dropout=dropout,
            negative_slope=slope,
        )
        self.output = nn.Linear(config.pooling_seeds * config.embed_dim, 1)

    def forward(self, x: Tensor, mask: Tensor, cond: Tensor | None = None) -> Tensor:
        mask = mask.bool()
        h = apply_mask(self.particle_embed(apply_mask(x, mask)), mask)
        pooled = [masked_mean(h, mask), masked_sum(h, mask) / self.max_particles]
        if self.use_cond:
            pooled.append(check_condition(cond, self.cond_dim).to(h.dtype))
        z = self.global_embed(torch.cat(pooled, dim=-1))
        h, _ = _run_blocks(self.blocks, h, z, mask, self.config.block_residual)
        return self.output(self.pool(h, mask).flatten(1)).squeeze(-1)
