"""EPiC-GAN's generator and critic, both made of the core's EPiC layers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pcgen import AdversarialModel
from pcgen.nn import EPiCNetwork, EPiCPooling, apply_mask, check_condition, particle_and_global_noise

from pcgen_epic_gan.config import EPiCGANConfig


class EPiCGenerator(nn.Module):
    """Per-particle and global Gaussian noise -> particles ``(B, N, F)`` through EPiC layers."""

    def __init__(self, config: EPiCGANConfig, num_features: int, cond_dim: int) -> None:
        super().__init__()
        self.config, self.cond_dim = config, cond_dim
        self.net = EPiCNetwork(
            config.particle_noise_dim, num_features, hidden=config.hidden, global_dim=config.global_dim,
            layers=config.generator_layers, context_dim=cond_dim, global_input_dim=config.global_dim,
            sum_scale=config.sum_scale, negative_slope=config.negative_slope, weight_norm=config.weight_norm,
            input_skip=True,
        )

    def sample_noise(self, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``(particle_noise (B, N, P), global_noise (B, global_dim))``, standard normal, from torch's RNG."""
        like = next(self.parameters())
        return particle_and_global_noise(mask, self.config.particle_noise_dim, self.config.global_dim, like)

    def forward(self, mask: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.forward_from_noise(self.sample_noise(mask), mask, cond)

    def forward_from_noise(self, noise: Sequence[Tensor], mask: Tensor, cond: Tensor | None = None) -> Tensor:
        """Particles from given noise (as :meth:`sample_noise` returns), zero where padded."""
        particle_noise, global_noise = noise
        mask = mask.bool()
        cond = check_condition(cond, self.cond_dim).to(particle_noise.dtype)
        return self.net(apply_mask(particle_noise, mask), mask, cond, global_noise)[0]


class EPiCCritic(nn.Module):
    """Particles -> one unbounded score per cloud: EPiC layers, then ``cat(mean, sum, global)`` -> MLP."""

    def __init__(self, config: EPiCGANConfig, num_features: int, cond_dim: int) -> None:
        super().__init__()
        self.cond_dim, self.negative_slope = cond_dim, config.negative_slope
        self.net = EPiCNetwork(
            num_features, None, hidden=config.hidden, global_dim=config.global_dim, layers=config.critic_layers,
            context_dim=cond_dim, sum_scale=config.sum_scale, negative_slope=config.negative_slope,
            weight_norm=config.weight_norm,
        )
        self.pool = EPiCPooling(config.sum_scale)
        wrap = nn.utils.parametrizations.weight_norm if config.weight_norm else (lambda layer: layer)
        self.head1 = wrap(nn.Linear(2 * config.hidden + config.global_dim, config.hidden))
        self.head2 = wrap(nn.Linear(config.hidden, config.hidden))
        self.score = wrap(nn.Linear(config.hidden, 1))

    def forward(self, x: Tensor, mask: Tensor, cond: Tensor | None = None) -> Tensor:
        mask = mask.bool()
        cond = check_condition(cond, self.cond_dim).to(x.dtype)
        h, g = self.net(x, mask, cond)
        summary = F.leaky_relu(self.head1(torch.cat([self.pool(h, mask), g], dim=-1)), self.negative_slope)
        summary = F.leaky_relu(self.head2(summary) + summary, self.negative_slope)
        return self.score(summary).squeeze(-1)


class EPiCGAN(AdversarialModel):
    """The EPiC generator/critic pair, trained by the core's adversarial recipe."""
