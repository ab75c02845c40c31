"""The normalising flow over whole padded jets, built from nflows' spline coupling layers.

A jet ``(N, F)`` is flattened to ``D = N * F`` dimensions. The flow is a stack of
rational-quadratic-spline coupling layers (Durkan et al., arXiv:1906.04032): each keeps one half of
the dimensions and transforms the other half elementwise with splines whose parameters a
fully-connected residual network (nflows ``ResidualNet``) computes from the kept half (and the
multiplicity ``n / N`` when conditioned). The base distribution is a standard normal on ``R^D``.
The coupling layers are nflows' with the spline itself evaluated by :mod:`pcgen_tf_refiner.spline`
(the same maths, about twice as fast on the CPU).

Padding: the flow has a fixed dimension, so padded slots must hold something. During likelihood
training they hold Gaussian noise of std ``padding_noise_std`` (drawn from torch's global RNG);
with the multiplicity as condition the flow learns that those slots are noise. When sampling,
whatever the flow puts in padded slots is replaced by exact zeros, so it never reaches the
refiner, the critic or the user.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from nflows.nn.nets import ResidualNet
from nflows.transforms import CompositeTransform
from pcgen import LikelihoodModel
from torch import Tensor, nn

from pcgen_tf_refiner.config import TFRefinerConfig
from pcgen_tf_refiner.spline import SplineCoupling


def coupling_masks(features: int, layers: int, seed: int) -> list[Tensor]:
    """Binary masks (1 = transformed) for ``layers`` coupling layers over ``features`` dimensions.

    Pairs of layers use a random half of the dimensions (from a generator seeded with ``seed``) and
    then its complement, so every dimension is transformed and no two consecutive splits agree.
    """
    gen = torch.Generator().manual_seed(seed)
    masks: list[Tensor] = []
    while len(masks) < layers:
        mask = torch.zeros(features, dtype=torch.uint8)
        mask[torch.randperm(features, generator=gen)[: (features + 1) // 2]] = 1
        masks += [mask, 1 - mask]
    return masks[:layers]


class JetFlow(nn.Module):
    """A conditional spline coupling flow on ``R^D``; ``forward`` maps data to the latent space.

    ``forward(x (B, D), context (B, C) | None) -> (z, log|det dz/dx|)``; ``inverse(z, context)
    -> (x, log|det dx/dz|)``; ``log_prob(x, context) -> (B,)``.
    """

    def __init__(self, features: int, config: TFRefinerConfig, context_features: int | None) -> None:
        super().__init__()
        self.features, self.context_features = features, context_features

        def conditioner(in_features: int, out_features: int) -> nn.Module:
            return ResidualNet(
                in_features, out_features, hidden_features=config.flow_hidden, context_features=context_features,
                num_blocks=config.flow_blocks, activation=F.relu,
            )

        self.transform = CompositeTransform([
            SplineCoupling(
                mask, conditioner, num_bins=config.spline_bins, tails="linear", tail_bound=config.tail_bound,
            )
            for mask in coupling_masks(features, config.coupling_layers, config.mask_seed)
        ])

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.transform(x, context=context)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.transform.inverse(z, context=context)

    @staticmethod
    def base_log_prob(z: Tensor) -> Tensor:
        """Standard-normal log-density of each row of ``z``."""
        return -0.5 * (z.pow(2).sum(dim=1) + z.shape[1] * math.log(2 * math.pi))

    def log_prob(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        z, logabsdet = self(x, context)
        return self.base_log_prob(z) + logabsdet

    def sample(self, num: int, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``num`` samples ``(num, D)`` and their log-densities, from torch's global RNG."""
        ref = next(self.parameters())
        z = torch.randn(num, self.features, device=ref.device, dtype=ref.dtype)
        x, logabsdet = self.inverse(z, context)
        return x, self.base_log_prob(z) - logabsdet


class FlowModel(LikelihoodModel):
    """The flow as a point-cloud model: jets ``(B, N, F)`` with masks, trained by likelihood.

    This is the "vnf" sampler (the flow alone) and the part the likelihood stage trains.
    """

    def __init__(self, config: TFRefinerConfig, max_particles: int, num_features: int, cond_dim: int) -> None:
        super().__init__()
        self.config = config
        self.max_particles, self.num_features = max_particles, num_features
        self.conditioned = config.condition_on_multiplicity and cond_dim > 0
        self.flow = JetFlow(max_particles * num_features, config, cond_dim if self.conditioned else None)

    def _context(self, cond: Tensor) -> Tensor | None:
        return cond.to(next(self.parameters()).dtype) if self.conditioned else None

    def pad(self, x: Tensor, mask: Tensor) -> Tensor:
        """Flattened jets ``(B, N * F)`` with the padded slots filled by the padding noise."""
        noise = torch.randn_like(x) * self.config.padding_noise_std
        return torch.where(mask.bool().unsqueeze(-1), x, noise).flatten(1)

    def log_prob(self, x: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        """Log-density of the jets together with the noise drawn for their padded slots, ``(B,)``."""
        return self.flow.log_prob(self.pad(x, mask), self._context(cond))

    def log_prob_dims(self, mask: Tensor) -> Tensor:
        """The flow's density spans all ``N * F`` dimensions of every jet (the reference's NLL / 90)."""
        return torch.full((mask.shape[0],), float(self.flow.features), device=mask.device)

    def _sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        """Jets ``(B, N, F)`` from the flow (:meth:`sample` zeroes the padded slots)."""
        x, _ = self.flow.sample(mask.shape[0], self._context(cond))
        return x.reshape(-1, self.max_particles, self.num_features)
