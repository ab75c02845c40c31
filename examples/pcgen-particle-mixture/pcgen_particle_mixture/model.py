"""Particles drawn independently from one learned diagonal Gaussian mixture (a likelihood model)."""

from __future__ import annotations

import math

import torch
from pcgen import LikelihoodModel, ModelConfig
from pcgen.nn import masked_sum
from pydantic import Field
from torch import Tensor, nn


class MixtureConfig(ModelConfig):
    """Settings of the mixture (unknown keys are errors: :class:`pcgen.ModelConfig`)."""

    components: int = Field(16, ge=1, description="Gaussian components of the particle density.")
    min_std: float = Field(1e-3, gt=0, description="Floor of each component's standard deviation.")


class ParticleMixture(LikelihoodModel):
    """log p(cloud) = sum over its real particles of log sum_k w_k N(x | mu_k, sigma_k)."""

    def __init__(self, config: MixtureConfig, features: int) -> None:
        super().__init__()
        self.min_std = config.min_std
        self.logits = nn.Parameter(torch.zeros(config.components))
        self.means = nn.Parameter(torch.randn(config.components, features) * 0.5)
        self.log_stds = nn.Parameter(torch.zeros(config.components, features))

    def _stds(self) -> Tensor:
        return self.log_stds.exp() + self.min_std

    def log_prob(self, x: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        """Log-likelihood of each cloud ``(B,)``; padded particles contribute nothing."""
        z = (x.unsqueeze(-2) - self.means) / self._stds()  # (B, N, K, F)
        per_component = -0.5 * (z**2 + math.log(2 * math.pi)).sum(-1) - self._stds().log().sum(-1)
        per_particle = torch.logsumexp(per_component + self.logits.log_softmax(0), dim=-1)  # (B, N)
        return masked_sum(per_particle.unsqueeze(-1), mask).squeeze(-1)

    def log_prob_dims(self, mask: Tensor) -> Tensor:
        """The density spans features x real particles of each cloud."""
        return mask.sum(1).clamp_min(1).to(self.means.dtype) * self.means.shape[1]

    def _sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        component = torch.multinomial(self.logits.softmax(0), mask.numel(), replacement=True).view(mask.shape)
        return self.means[component] + self._stds()[component] * torch.randn(
            *mask.shape, self.means.shape[1], device=self.means.device, dtype=self.means.dtype)
