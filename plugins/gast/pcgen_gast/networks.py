"""GAST's generator and discriminator, built from pcgen's masked ISAB and PMA blocks.

Shapes: ``mask`` ``(B, N)`` bool (True = real particle), ``cond`` ``(B, C)`` (jets: n / N),
particles ``(B, N, F)`` in the preprocessed space (about [-1, 1]).

Both networks are stacks of :class:`GASTBlock`: a global set feature ``g`` ``(B, D)`` is
concatenated to every particle and projected back to the width ``D``, then an induced set
attention block (ISAB, ``M`` learned inducing points) transforms the set. The global feature is

- generator, first block: ``z`` = embedded latent noise + embedded condition;
- generator, later blocks: the masked mean of the current set;
- discriminator, every block: the masked mean of the current set + the embedded condition.

The masked mean was chosen over a PMA for the pooled feature: it has no parameters, costs O(N),
ignores padding exactly and is zero (not NaN) for an empty cloud; the ISAB itself already does
attention-based pooling through its inducing points.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pcgen.nn import (
    FeedForward,
    InducedSetAttentionBlock,
    PoolingByMultiheadAttention,
    apply_mask,
    check_condition,
    masked_mean,
    particle_and_global_noise,
)
from torch import Tensor, nn

from pcgen_gast.config import GASTConfig


class GlobalConcat(nn.Module):
    """``LeakyReLU(Linear(cat(x_i, g)))`` for every particle: ``(B, N, D), (B, G) -> (B, N, D)``.

    Computed as ``W_x x_i + W_g g + b``, the same map without building the ``(B, N, D + G)``
    concatenation. Padded rows of the input are ignored and those of the output are zero.
    """

    def __init__(self, dim: int, global_dim: int, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.particle = nn.Linear(dim, dim)
        self.glob = nn.Linear(global_dim, dim, bias=False)
        self.act = nn.LeakyReLU(negative_slope)

    def forward(self, x: Tensor, g: Tensor, mask: Tensor) -> Tensor:
        h = self.particle(apply_mask(x, mask)) + self.glob(g).unsqueeze(1)
        return apply_mask(self.act(h), mask)


class GASTBlock(nn.Module):
    """Concatenate the global feature to each particle, project, then one masked ISAB.

    ``forward(x (B, N, D), g (B, D), mask (B, N)) -> (B, N, D)``, zero where padded; O(N M).
    """

    def __init__(self, config: GASTConfig, layer_norm: bool, dropout: float) -> None:
        super().__init__()
        self.concat = GlobalConcat(config.embed_dim, config.embed_dim, config.negative_slope)
        self.isab = InducedSetAttentionBlock(
            config.embed_dim,
            config.num_heads,
            config.num_inducing,
            ff_hidden=config.ff_hidden,
            layer_norm=layer_norm,
            dropout=dropout,
            negative_slope=config.negative_slope,
        )

    def forward(self, x: Tensor, g: Tensor, mask: Tensor) -> Tensor:
        return self.isab(self.concat(x, g, mask), mask)


class GASTGenerator(nn.Module):
    """Noise -> particles: embedded particle noise, transformed by GAST blocks whose global
    feature is ``z`` (latent noise + condition) first and the masked set mean after; then
    ``tanh(Linear(x))``.

    ``forward(mask, cond) -> (B, N, F)`` draws its noise with ``torch.randn``;
    ``forward_from_noise`` takes the noise explicitly. Padded outputs are zero.
    """

    def __init__(self, config: GASTConfig, num_features: int, cond_dim: int = 1) -> None:
        super().__init__()
        self.config, self.num_features, self.cond_dim = config, num_features, cond_dim
        slope = config.negative_slope
        self.particle_embed = FeedForward(config.particle_noise_dim, config.embed_dim, negative_slope=slope)
        self.latent_embed = FeedForward(config.latent_dim, config.embed_dim, negative_slope=slope)
        self.cond_embed: FeedForward | None = None
        if config.condition_on_multiplicity and cond_dim > 0:
            self.cond_embed = FeedForward(cond_dim, config.embed_dim, negative_slope=slope)
        self.blocks = nn.ModuleList(
            GASTBlock(config, config.generator_layer_norm, config.generator_dropout)
            for _ in range(config.generator_blocks)
        )
        self.output = nn.Linear(config.embed_dim, num_features)

    def sample_noise(self, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Standard-normal noise for clouds shaped like ``mask`` ``(B, N)``, from torch's RNG.

        Returns ``(particle_noise (B, N, P), latent_noise (B, L))``, on the generator's device.
        """
        return particle_and_global_noise(mask, self.config.particle_noise_dim, self.config.latent_dim, self.output.weight)

    def forward(self, mask: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.forward_from_noise(self.sample_noise(mask), mask, cond)

    def latent(self, latent_noise: Tensor, cond: Tensor | None = None) -> Tensor:
        """The global feature of the first block: ``z`` ``(B, D)`` from latent noise and condition."""
        z = self.latent_embed(latent_noise * self.config.latent_noise_std)
        if self.cond_embed is not None:
            z = z + self.cond_embed(check_condition(cond, self.cond_dim).to(z.dtype))
        return z

    def forward_from_noise(self, noise: Sequence[Tensor], mask: Tensor, cond: Tensor | None = None) -> Tensor:
        """Generate from standard-normal noise (scaled here by the configured stds).

        ``noise`` = ``(particle_noise (B, N, P), latent_noise (B, L))`` as from :meth:`sample_noise`,
        ``mask`` ``(B, N)``, ``cond`` ``(B, C)`` -> ``(B, N, F)`` in [-1, 1], zero where padded.
        """
        particle_noise, latent_noise = noise
        mask = mask.bool()
        scaled = apply_mask(particle_noise, mask) * self.config.particle_noise_std
        x = apply_mask(self.particle_embed(scaled), mask)
        g = self.latent(latent_noise, cond)
        for i, block in enumerate(self.blocks):
            if i > 0:
                g = masked_mean(x, mask)
            x = block(x, g, mask)
        return apply_mask(torch.tanh(self.output(x)), mask)


class GASTDiscriminator(nn.Module):
    """Particles -> one raw score per cloud (no sigmoid: the core's loss applies it).

    Embed the real particles; GAST blocks whose global feature is the masked set mean plus the
    embedded condition; masked PMA pooling; a final linear layer. ``forward(x, mask, cond) -> (B,)``.
    """

    def __init__(self, config: GASTConfig, num_features: int, cond_dim: int = 1) -> None:
        super().__init__()
        self.config, self.num_features, self.cond_dim = config, num_features, cond_dim
        slope = config.negative_slope
        self.particle_embed = FeedForward(num_features, config.embed_dim, negative_slope=slope)
        self.cond_embed: FeedForward | None = None
        if config.condition_on_multiplicity and cond_dim > 0:
            self.cond_embed = FeedForward(cond_dim, config.embed_dim, negative_slope=slope)
        layer_norm, dropout = config.discriminator_layer_norm, config.discriminator_dropout
        self.blocks = nn.ModuleList(GASTBlock(config, layer_norm, dropout) for _ in range(config.discriminator_blocks))
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
        c = None if self.cond_embed is None else self.cond_embed(check_condition(cond, self.cond_dim).to(h.dtype))
        for block in self.blocks:
            g = masked_mean(h, mask)
            h = block(h, g if c is None else g + c, mask)
        return self.output(self.pool(h, mask).flatten(1)).squeeze(-1)
