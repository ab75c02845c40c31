"""The EPiC velocity network and the flow-matching model around it."""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn
from torchdiffeq import odeint

from pcgen import Batch, DataInfo, ObjectiveModel
from pcgen.nn import EPiCNetwork, apply_mask, check_condition, lerp_towards, sinusoidal_time_embedding, warmed_up_decay

from pcgen_epic_fm.config import EPiCFMConfig

SOLVERS = ("midpoint", "euler", "dopri5")
"""Sampling variants: fixed-step midpoint (default) and Euler, and the adaptive Dormand-Prince solver."""


class EPiCVelocity(nn.Module):
    """``v(x_t, t | mask, cond)``: an EPiC network whose every layer sees the time embedding and the condition."""

    def __init__(self, config: EPiCFMConfig, num_features: int, cond_dim: int) -> None:
        super().__init__()
        self.frequencies, self.cond_dim = config.frequencies, cond_dim
        self.net = EPiCNetwork(
            num_features, num_features, hidden=config.hidden, global_dim=config.global_dim, layers=config.layers,
            context_dim=2 * config.frequencies + cond_dim, sum_scale=config.sum_scale,
            negative_slope=config.negative_slope, weight_norm=config.weight_norm, dropout=config.dropout,
        )

    def forward(self, x: Tensor, t: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        """Velocity ``(B, N, F)`` at times ``t`` ``(B,)``; padded rows are zero."""
        cond = check_condition(cond, self.cond_dim)
        context = torch.cat([sinusoidal_time_embedding(t.to(x.dtype), self.frequencies), cond.to(x.dtype)], dim=-1)
        return self.net(x, mask, context)[0]


class EPiCFlowMatching(ObjectiveModel):
    """Conditional flow matching on straight paths (Lipman et al., arXiv:2210.02747) with an EPiC velocity.

    Training: ``x_t = t x_1 + (1 - (1 - sigma_min) t) x_0`` between noise ``x_0`` and a data cloud
    ``x_1``; the network regresses ``x_1 - (1 - sigma_min) x_0`` (mean squared error over real
    particles only). Sampling integrates ``dx/dt = v(x, t)`` from noise at t=0 to t=1 with the
    EMA weights, by the selected solver variant.
    """

    variants = SOLVERS

    def __init__(self, config: EPiCFMConfig, info: DataInfo) -> None:
        super().__init__()
        self.config = config
        self.num_features = info.num_features
        self.velocity = EPiCVelocity(config, info.num_features, info.cond_dim)
        self.ema = copy.deepcopy(self.velocity).requires_grad_(False)
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))

    # -- training --------------------------------------------------------------------------------

    def training_losses(self, batch: Batch, step: int) -> dict[str, Tensor]:
        x1, mask = batch.x, batch.mask
        x0 = apply_mask(torch.randn_like(x1), mask)
        t = torch.rand(x1.shape[0], device=x1.device, dtype=x1.dtype)
        tt = t.view(-1, 1, 1)
        s = self.config.sigma_min
        xt = tt * x1 + (1 - (1 - s) * tt) * x0
        target = x1 - (1 - s) * x0
        error = apply_mask(self.velocity(xt, t, mask, batch.cond) - target, mask).square().sum()
        count = mask.sum().clamp_min(1) * x1.shape[-1]
        return {"flow_matching": error / count}

    @torch.no_grad()
    def after_step(self, batch: Batch, step: int) -> dict[str, float]:
        """Move the EMA weights towards the trained ones (decay warmed up over the first updates)."""
        decay = self.ema_decay()
        lerp_towards(self.ema.parameters(), self.velocity.parameters(), decay)
        self.ema_updates += 1
        return {"ema/decay": decay}

    def ema_decay(self) -> float:
        """The decay of the next EMA update: ``min(decay, (1 + k) / (10 + k))`` after ``k`` updates."""
        return warmed_up_decay(self.config.ema_decay, int(self.ema_updates))

    # -- sampling ---------------------------------------------------------------------------------

    def time_grid(self, device: torch.device, dtype: torch.dtype) -> Tensor:
        """The fixed-step solvers' times from 0 to 1 (``solver_steps + 1`` points)."""
        u = torch.linspace(0.0, 1.0, self.config.solver_steps + 1, device=device, dtype=dtype)
        return u if self.config.time_grid == "uniform" else 0.5 * (1 - torch.cos(math.pi * u))

    def _sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        weight = next(self.ema.parameters())
        mask = mask.to(weight.device)
        cond = check_condition(cond, self.velocity.cond_dim).to(weight.device, weight.dtype)
        x0 = apply_mask(torch.randn(*mask.shape, self.num_features, device=weight.device, dtype=weight.dtype), mask)
        network = self.ema if self.config.ema_decay > 0 else self.velocity

        def field(t: Tensor, x: Tensor) -> Tensor:
            return network(x, t.expand(x.shape[0]), mask, cond)

        solver = self.variant
        if solver == "dopri5":
            tol = self.config.adaptive_tolerance
            times = torch.tensor([0.0, 1.0], device=weight.device, dtype=weight.dtype)
            path = odeint(field, x0, times, method="dopri5", rtol=tol, atol=tol)
        else:
            times = self.time_grid(weight.device, weight.dtype)
            path = odeint(field, x0, times, method=solver)
        return path[-1]  # sample() zeroes the padding
