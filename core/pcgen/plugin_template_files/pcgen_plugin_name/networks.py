"""Conditional flow matching on point clouds: a permutation-equivariant velocity field.

Training: for data x1, noise x0 and a time t per cloud, the velocity field v(x_t, t) at
x_t = (1 - t) x0 + t x1 is regressed onto x1 - x0 (masked mean squared error over real particles).
Sampling: Euler steps of dx/dt = v(x, t) from Gaussian noise at t = 0 to t = 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from pcgen import Batch, ObjectiveModel
from pcgen.nn import apply_mask, masked_mean
from torch import Tensor, nn

from pcgen_plugin_name.config import PluginNameConfig


def mlp(width_in: int, hidden: int, width_out: int, layers: int) -> nn.Sequential:
    """``layers`` hidden layers of SiLU units."""
    sizes = [width_in] + [hidden] * layers
    blocks: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        blocks += [nn.Linear(a, b), nn.SiLU()]
    return nn.Sequential(*blocks, nn.Linear(sizes[-1], width_out))


class VelocityField(nn.Module):
    """v(x_t, t, cond): each particle sees itself, t, the condition and the masked mean of all real particles."""

    def __init__(self, config: PluginNameConfig, features: int, cond_dim: int) -> None:
        super().__init__()
        self.time_features = config.time_features
        inputs = features + config.time_features + cond_dim
        self.embed = mlp(inputs, config.hidden, config.hidden, 1)
        self.out = mlp(inputs + 2 * config.hidden, config.hidden, features, config.layers)

    def forward(self, x: Tensor, t: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        freqs = torch.arange(1, self.time_features // 2 + 1, device=x.device, dtype=x.dtype) * math.pi
        angles = t[:, None] * freqs[None]
        per_cloud = torch.cat([angles.sin(), angles.cos(), cond.to(x.dtype)], dim=-1)
        inputs = torch.cat([x, per_cloud[:, None].expand(-1, x.shape[1], -1)], dim=-1)
        h = self.embed(inputs)
        context = masked_mean(h, mask)[:, None].expand_as(h)
        return apply_mask(self.out(torch.cat([inputs, h, context], dim=-1)), mask)


class PluginNameModel(ObjectiveModel):
    """Flow matching model; a pcgen.NoiseDrivenGenerator (sample_noise, forward_from_noise), so the contract
    checks its masking and permutation equivariance exactly."""

    def __init__(self, config: PluginNameConfig, features: int, cond_dim: int) -> None:
        super().__init__()
        self.config = config
        self.features = features
        self.velocity = VelocityField(config, features, cond_dim)

    def training_losses(self, batch: Batch, step: int) -> dict[str, Tensor]:
        mask = batch.mask
        x1 = batch.x
        x0 = torch.randn_like(x1)
        t = torch.rand(len(x1), device=x1.device, dtype=x1.dtype)
        xt = (1 - t)[:, None, None] * x0 + t[:, None, None] * x1
        error = (self.velocity(xt, t, mask, batch.cond) - (x1 - x0)) ** 2
        weights = mask.unsqueeze(-1).to(error.dtype)
        return {"flow_matching": (error * weights).sum() / (weights.sum() * self.features).clamp_min(1)}

    def sample_noise(self, mask: Tensor) -> tuple[Tensor]:
        """Per-particle Gaussian noise ``(B, N, F)``, the starting point of sampling."""
        return (torch.randn(*mask.shape, self.features, device=mask.device),)

    def forward_from_noise(self, noise: Sequence[Tensor], mask: Tensor, cond: Tensor) -> Tensor:
        """Integrate the velocity field from ``noise`` at t = 0 to t = 1 with Euler steps."""
        x, steps = noise[0], self.config.sampling_steps
        for i in range(steps):
            t = torch.full((len(x),), i / steps, device=x.device, dtype=x.dtype)
            x = x + self.velocity(x, t, mask, cond) / steps
        return x

    @torch.no_grad()
    def _sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        return self.forward_from_noise(self.sample_noise(mask), mask, cond)
