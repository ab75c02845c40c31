"""MDMA's generator, critic and the model that adds the deep mean-field matching loss.

Shapes: ``mask`` ``(B, N)`` bool (True = real particle), ``cond`` ``(B, C)`` (jets: n / N),
particles ``(B, N, F)`` in the preprocessed space (standardised features).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from pcgen import AdversarialModel, Batch
from pcgen.nn import MeanFieldEncoder, apply_mask, check_condition, normalize_linear_layers
from torch import Tensor, nn

from pcgen_mdma.config import MDMAConfig


class MDMAGenerator(nn.Module):
    """Noise -> particles: per-particle Gaussian noise through mean-field blocks, then a linear layer.

    ``forward(mask, cond) -> (B, N, F)`` draws its noise with ``torch.randn``;
    ``forward_from_noise`` takes it explicitly. Padded outputs are zero.

    The output layer is ``Linear(act(LayerNorm(x)))``, linear (no tanh) as the data are
    standardised, He-initialised with zero bias so that the first samples already have about unit
    variance, the data's scale. (With the paper's learning rate, 1e-4, a generator that starts at a
    quarter of the data's scale spends thousands of steps just growing its output.)
    """

    def __init__(self, config: MDMAConfig, num_features: int, cond_dim: int = 1) -> None:
        super().__init__()
        self.config, self.num_features, self.cond_dim = config, num_features, cond_dim
        self.noise_dim = num_features if config.noise_dim is None else config.noise_dim
        self.encoder = MeanFieldEncoder(
            self.noise_dim,
            config.generator_latent_dim,
            config.generator_hidden,
            config.generator_heads,
            config.generator_blocks,
            cond_dim,
            negative_slope=config.negative_slope,
            output="points",
        )
        self.act = nn.LeakyReLU(config.negative_slope)
        self.output_norm = nn.LayerNorm(config.generator_latent_dim)
        self.output = nn.Linear(config.generator_latent_dim, num_features)
        nn.init.kaiming_normal_(self.output.weight, a=config.negative_slope)
        nn.init.zeros_(self.output.bias)

    def sample_noise(self, mask: Tensor) -> tuple[Tensor]:
        """Standard-normal particle noise ``(B, N, noise_dim)`` for clouds shaped like ``mask``, as a 1-tuple."""
        ref = self.output.weight
        return (torch.randn(*mask.shape, self.noise_dim, device=ref.device, dtype=ref.dtype),)

    def forward(self, mask: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.forward_from_noise(self.sample_noise(mask), mask, cond)

    def forward_from_noise(self, noise: Sequence[Tensor], mask: Tensor, cond: Tensor | None = None) -> Tensor:
        """``noise`` = ``(particle_noise (B, N, P),)`` as from :meth:`sample_noise` -> ``(B, N, F)``."""
        (particle_noise,) = noise
        mask = mask.bool()
        if self.cond_dim > 0:
            cond = check_condition(cond, self.cond_dim).to(particle_noise.dtype)
        x, _ = self.encoder(particle_noise, mask, cond)
        return apply_mask(self.output(self.act(self.output_norm(x))), mask)


class RecentMeanFields:
    """The critic's last few ``(x, mask, cond, mean-field)`` in training mode, matched by identity.

    The adversarial recipe has already run the critic on the real batch (critic step) and on the
    generated batch (generator step) when it asks for the matching loss; looking those passes up
    saves two critic passes per step (about a third of a step's time). As in the reference code,
    the real mean-field is then the one from the critic step, before that step's update. The
    entries are never copied or pickled (a copy starts empty).
    """

    def __init__(self, size: int = 4) -> None:
        self.entries: deque[tuple[Tensor, Tensor, Tensor | None, Tensor]] = deque(maxlen=size)

    def add(self, x: Tensor, mask: Tensor, cond: Tensor | None, field: Tensor) -> None:
        self.entries.append((x, mask, cond, field))

    def find(self, x: Tensor, mask: Tensor, cond: Tensor | None) -> Tensor | None:
        """The mean-field of a recent pass on exactly these tensor objects, else None."""
        for x_, mask_, cond_, field in reversed(self.entries):
            if x_ is x and mask_ is mask and cond_ is cond:
                return field
        return None

    def clear(self) -> None:
        self.entries.clear()

    def __deepcopy__(self, memo: dict[int, Any]) -> RecentMeanFields:
        return RecentMeanFields(self.entries.maxlen or 4)

    def __getstate__(self) -> dict[str, int]:
        return {"size": self.entries.maxlen or 4}

    def __setstate__(self, state: dict[str, int]) -> None:
        self.__init__(state["size"])  # type: ignore[misc]


class MDMACritic(nn.Module):
    """Particles -> one raw score per cloud, from the final mean-field and the condition.

    Mean-field blocks (weight- or spectrally-normalised linear layers, dot or L2 attention), then
    ``Linear(act(Linear([field, cond])))``. :meth:`mean_field` returns the last block's mean-field,
    which the deep mean-field matching loss compares between real and generated clouds; in
    training mode each pass also records its mean-field in :attr:`recent` for that loss to reuse.
    """

    def __init__(self, config: MDMAConfig, num_features: int, cond_dim: int = 1) -> None:
        super().__init__()
        self.config, self.num_features, self.cond_dim = config, num_features, cond_dim
        self.encoder = MeanFieldEncoder(
            num_features,
            config.critic_latent_dim,
            config.critic_hidden,
            config.critic_heads,
            config.critic_blocks,
            cond_dim,
            attention=config.critic_attention,
            negative_slope=config.negative_slope,
            output="field",
        )
        self.head = nn.Sequential(
            nn.Linear(config.critic_latent_dim + cond_dim, config.head_hidden),
            nn.LeakyReLU(config.negative_slope),
            nn.Linear(config.head_hidden, 1),
        )
        normalize_linear_layers(self, config.critic_normalization)
        self.recent = RecentMeanFields()

    def _cond(self, cond: Tensor | None, like: Tensor) -> Tensor | None:
        return check_condition(cond, self.cond_dim).to(like.dtype) if self.cond_dim > 0 else None

    def mean_field(self, x: Tensor, mask: Tensor, cond: Tensor | None = None) -> Tensor:
        """The last block's mean-field ``(B, critic_latent_dim)``."""
        return self.encoder(x, mask, self._cond(cond, x))[1]

    def forward_with_mean_field(self, x: Tensor, mask: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(score (B,), mean-field (B, critic_latent_dim))`` from one pass."""
        cond_in = self._cond(cond, x)
        field = self.encoder(x, mask, cond_in)[1]
        if self.training:
            self.recent.add(x, mask, cond, field)
        head_in = field if cond_in is None else torch.cat([field, cond_in], dim=-1)
        return self.head(head_in).squeeze(-1), field

    def forward(self, x: Tensor, mask: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.forward_with_mean_field(x, mask, cond)[0]


class MDMAModel(AdversarialModel):
    """MDMA's generator/critic pair plus the deep mean-field matching loss for the generator.

    While ``step < config.mean_field_loss_steps`` the generator also minimises
    ``weight * MSE(critic.mean_field(fake), critic.mean_field(real))``, the real side detached
    (so it never trains the critic nor moves the target). Mean-fields of the critic passes the
    recipe has just made on these very tensors are reused (see :class:`RecentMeanFields`).
    """

    generator: MDMAGenerator
    critic: MDMACritic

    def __init__(self, generator: MDMAGenerator, critic: MDMACritic, config: MDMAConfig) -> None:
        super().__init__(generator, critic)
        self.config = config

    def mean_field_loss(self, real: Batch, fake: Tensor) -> Tensor:
        """Unweighted matching loss between the critic's final mean-fields of ``fake`` and ``real``."""
        recent = self.critic.recent
        target = recent.find(real.x, real.mask, real.cond)
        if target is None:
            with torch.no_grad():
                target = self.critic.mean_field(real.x, real.mask, real.cond)
        field = recent.find(fake, real.mask, real.cond)
        if field is None:
            field = self.critic.mean_field(fake, real.mask, real.cond)
        target = target.detach()
        if self.config.mean_field_matching == "mean":
            return F.mse_loss(field.mean(0), target.mean(0))
        return F.mse_loss(field, target)

    def generator_extra_losses(self, real: Batch, fake: Tensor, step: int) -> dict[str, Tensor]:
        c = self.config
        try:
            if step >= c.mean_field_loss_steps or c.mean_field_loss_weight == 0:
                return {}
            return {"mean_field": c.mean_field_loss_weight * self.mean_field_loss(real, fake)}
        finally:
            self.critic.recent.clear()  # nothing outlives the step
