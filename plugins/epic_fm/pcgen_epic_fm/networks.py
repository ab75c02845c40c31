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
    """``v(x_t, t | mask, cond)``: an EPiC network that sees the time and the condition in every layer
    (``time_input='every_layer'``) or once, beside each particle's features at the input."""

    def __init__(self, config: EPiCFMConfig, num_features: int, cond_dim: int) -> None:
        super().__init__()
        self.frequencies, self.cond_dim, self.time_input = config.frequencies, cond_dim, config.time_input
        context_dim = (1 if config.time_input == "input" else 2 * config.frequencies) + cond_dim
        in_dim, layer_context = (num_features, context_dim) if config.time_input == "every_layer" \
            else (num_features + context_dim, 0)
        self.net = EPiCNetwork(
            in_dim, num_features, hidden=config.hidden, global_dim=config.global_dim, layers=config.layers,
            context_dim=layer_context, sum_scale=config.sum_scale, negative_slope=config.negative_slope,
            weight_norm=config.weight_norm, dropout=config.dropout,
        )

    def forward(self, x: Tensor, t: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        """Velocity ``(B, N, F)`` at times ``t`` ``(B,)``; padded rows are zero."""
        cond = check_condition(cond, self.cond_dim)
        t = t.to(x.dtype)
        time = t.reshape(-1, 1) if self.time_input == "input" else sinusoidal_time_embedding(t, self.frequencies)
        context = torch.cat([time, cond.to(x.dtype)], dim=-1)
        if self.time_input == "every_layer":
            return self.net(x, mask, context)[0]
        beside = context.unsqueeze(1).expand(-1, x.shape[1], -1)
        return self.net(torch.cat([x, beside], dim=-1), mask)[0]


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
        # A student distilled onto its own sampler (reflow_loss='solver') is no velocity field any more:
        # only that sampler is offered.
        others = () if config.reflow_pairs and config.reflow_loss == "solver" else SOLVERS
        self.variants = (config.default_solver, *(s for s in others if s != config.default_solver))
        if config.reflow_pairs:
            self.teacher = copy.deepcopy(self.velocity).requires_grad_(False)
            self.register_buffer("teacher_loaded", torch.zeros((), dtype=torch.bool))
            self._register_load_state_dict_pre_hook(_teacher_from_loaded_weights)
            self.pairs = ReflowPairs(config.reflow_pairs)

    # -- training --------------------------------------------------------------------------------

    def training_losses(self, batch: Batch, step: int) -> dict[str, Tensor]:
        if self.config.reflow_pairs:
            return {"reflow": self._reflow_loss(batch)}
        x1, mask = batch.x, batch.mask
        x0 = apply_mask(torch.randn_like(x1), mask)
        return {"flow_matching": self._path_loss(x0, x1, mask, batch.cond, self.config.sigma_min)}

    def _path_loss(self, x0: Tensor, x1: Tensor, mask: Tensor, cond: Tensor, sigma_min: float) -> Tensor:
        """Mean squared error of the velocity against the straight path from ``x0`` to ``x1`` (real particles)."""
        t = torch.rand(x1.shape[0], device=x1.device, dtype=x1.dtype)
        tt = t.view(-1, 1, 1)
        xt = tt * x1 + (1 - (1 - sigma_min) * tt) * x0
        target = x1 - (1 - sigma_min) * x0
        return _particle_mse(self.velocity(xt, t, mask, cond), target, mask)

    def _reflow_loss(self, batch: Batch) -> Tensor:
        """Straight paths between the teacher's noise and its clouds (the pool grows from the first batches)."""
        if not bool(self.teacher_loaded):
            raise RuntimeError("reflow (model.reflow_pairs > 0) needs a trained teacher: start the run from trained "
                               "epic-fm weights with train.init_weights=pretrained:NAME or a run folder")
        if not self.pairs.full:
            with torch.no_grad():
                x0 = apply_mask(torch.randn_like(batch.x), batch.mask)
                times = torch.linspace(0.0, 1.0, self.config.reflow_teacher_steps + 1, device=x0.device, dtype=x0.dtype)
                x1 = self._integrate(self.teacher, x0, batch.mask, batch.cond, "midpoint", times)
            self.pairs.add(x0, apply_mask(x1, batch.mask), batch.mask, batch.cond)
        x0, x1, mask, cond = self.pairs.draw(batch.x.shape[0])
        if self.config.reflow_loss == "path":
            return self._path_loss(x0, x1, mask, cond, 0.0)
        return self._solver_loss(x0, x1, mask, cond)

    def _solver_loss(self, x0: Tensor, x1: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        """Mean squared error between the teacher's clouds and the student's few-step solves from the same noise."""
        times = self.time_grid(x0.device, x0.dtype)
        return _particle_mse(self._integrate(self.velocity, x0, mask, cond, self.config.default_solver, times), x1, mask)

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
        if self.variant == "dopri5":
            times = torch.tensor([0.0, 1.0], device=weight.device, dtype=weight.dtype)
        else:
            times = self.time_grid(weight.device, weight.dtype)
        return self._integrate(network, x0, mask, cond, self.variant, times)  # sample() zeroes the padding

    def _integrate(self, network: nn.Module, x0: Tensor, mask: Tensor, cond: Tensor, solver: str,
                   times: Tensor) -> Tensor:
        """``x(1)`` of ``dx/dt = network(x, t)`` from ``x0`` at ``times[0]`` by ``solver``."""

        def field(t: Tensor, x: Tensor) -> Tensor:
            return network(x, t.expand(x.shape[0]), mask, cond)

        tol = self.config.adaptive_tolerance
        options = {"rtol": tol, "atol": tol} if solver == "dopri5" else {}
        return odeint(field, x0, times, method=solver, **options)[-1]


def _particle_mse(prediction: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over the features of real particles only (padding never enters)."""
    error = apply_mask(prediction - target, mask).square().sum()
    return error / (mask.sum().clamp_min(1) * target.shape[-1])


class ReflowPairs:
    """A pool of (noise, cloud, mask, condition) couplings made by the reflow teacher.

    Not saved with the model: a resumed run makes it again (the teacher is saved, so the pairs are
    of the same kind)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.pool: tuple[Tensor, ...] | None = None

    @property
    def size(self) -> int:
        """Couplings held so far."""
        return 0 if self.pool is None else self.pool[0].shape[0]

    @property
    def full(self) -> bool:
        """Whether the pool holds ``capacity`` pairs (no more teacher solves needed)."""
        return self.size >= self.capacity

    def add(self, x0: Tensor, x1: Tensor, mask: Tensor, cond: Tensor) -> None:
        """Append a batch of couplings (the last batch is cut at the capacity)."""
        keep = self.capacity - self.size
        batch = (x0[:keep], x1[:keep], mask[:keep], cond[:keep])
        self.pool = batch if self.pool is None else tuple(torch.cat(pair) for pair in zip(self.pool, batch, strict=True))

    def draw(self, count: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``count`` couplings drawn uniformly (with replacement) from the pool so far."""
        assert self.pool is not None, "draw() before add()"
        index = torch.randint(self.size, (count,), device=self.pool[0].device)
        x0, x1, mask, cond = (column[index] for column in self.pool)
        return x0, x1, mask, cond


def _teacher_from_loaded_weights(state: dict[str, Tensor], prefix: str, *_: object) -> None:
    """Loading plain epic-fm weights into a reflow model: the teacher and the student both start as the
    loaded EMA network (the weights that were sampled from); weights with a teacher load as they are."""
    if f"{prefix}teacher_loaded" in state:
        return
    ema = {key[len(prefix) + 4:]: value for key, value in state.items() if key.startswith(f"{prefix}ema.")}
    for inner, value in ema.items():
        state[f"{prefix}teacher.{inner}"] = value.clone()
        state[f"{prefix}velocity.{inner}"] = value.clone()
    state[f"{prefix}teacher_loaded"] = torch.tensor(bool(ema))
