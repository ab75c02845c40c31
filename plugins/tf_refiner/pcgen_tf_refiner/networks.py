"""The refiner and the critic: transformer encoders over padded jets, and the refined generator.

Shapes: jets ``x`` ``(B, N, F)`` in model space (standardised features), ``mask`` ``(B, N)`` bool
(True = real particle). Attention ignores padded keys (pcgen's masked attention), every block
zeroes padded rows, and inputs are masked first, so whatever padded entries hold never reaches a
real particle's output or a score.
"""

from __future__ import annotations


import torch
from pcgen.nn import Dropout, MaskedMultiheadAttention, apply_mask, jet_mass_over_pt
from torch import Tensor, nn

from pcgen_tf_refiner.config import TFRefinerConfig
from pcgen_tf_refiner.flow import FlowModel


def xavier_init(module: nn.Module) -> None:
    """Xavier-normal weights and zero biases for every linear layer in ``module`` (as the reference)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_normal_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


class EncoderBlock(nn.Module):
    """Post-norm transformer encoder block (Add & Norm after attention and after the feed-forward net).

    ``h = LN(x + Drop(Attn(x, x, mask)))``, ``out = LN(h + Drop(W2 Drop(act(W1 h))))``, zero where
    padded; ``forward(x (B, N, dim), mask (B, N)) -> (B, N, dim)``.
    """

    def __init__(self, dim: int, num_heads: int, hidden: int, dropout: float, activation: nn.Module) -> None:
        super().__init__()
        self.attention = MaskedMultiheadAttention(dim, num_heads)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, hidden), activation, Dropout(dropout), nn.Linear(hidden, dim))
        self.drop1, self.drop2 = Dropout(dropout), Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor, first: int | None = None) -> Tensor:
        """``first=k`` computes the output of the first ``k`` tokens only ``(B, k, dim)`` (they still
        attend to every token): for a last block of which only a class token is read."""
        x = apply_mask(x, mask)
        query, query_mask = (x, mask) if first is None else (x[:, :first], mask[:, :first])
        h = self.norm1(query + self.drop1(self.attention(query, x, mask)))
        return apply_mask(self.norm2(h + self.drop2(self.ff(h))), query_mask)


def encoder(config: TFRefinerConfig, blocks: int, activation: type[nn.Module], **kwargs: float) -> nn.ModuleList:
    return nn.ModuleList(
        EncoderBlock(config.embed_dim, config.num_heads, config.hidden, config.dropout, activation(**kwargs))
        for _ in range(blocks)
    )


class Refiner(nn.Module):
    """Transformer encoder computing an additive correction to the flow's jets.

    ``Linear(F, d)`` -> encoder blocks (ReLU) -> ``Linear(d, h)``, two LeakyReLU / Dropout(p/2)
    layers -> ``Linear(h, F)``. :meth:`forward` returns the correction ``(B, N, F)`` (zero where
    padded); :meth:`refine` returns ``x + correction``.
    """

    def __init__(self, config: TFRefinerConfig, num_features: int) -> None:
        super().__init__()
        d, h, slope, p = config.embed_dim, config.hidden, config.negative_slope, config.dropout / 2
        self.embed = nn.Linear(num_features, d)
        self.blocks = encoder(config, config.refiner_blocks, nn.ReLU)
        self.head = nn.Sequential(
            nn.Linear(d, h), nn.LeakyReLU(slope), Dropout(p),
            nn.Linear(h, h), nn.LeakyReLU(slope), Dropout(p),
            nn.Linear(h, num_features),
        )
        xavier_init(self)
        if config.refiner_zero_init:
            last = self.head[-1]
            assert isinstance(last, nn.Linear)
            nn.init.zeros_(last.weight)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        mask = mask.bool()
        h = self.embed(apply_mask(x, mask))
        for block in self.blocks:
            h = block(h, mask)
        return apply_mask(self.head(h), mask)

    def refine(self, x: Tensor, mask: Tensor) -> Tensor:
        """The refined jets ``x + correction``, zero where padded."""
        mask = mask.bool()
        return apply_mask(x, mask) + self(x, mask)


class JetMass(nn.Module):
    """Jet mass over jet pT of massless particles, from model-space ``(eta_rel, phi_rel, pt_rel)``.

    A learned per-feature affine map (initialised at typical JetNet spreads and means) brings the
    standardised features back to an approximately physical space; pt is clipped at zero. Then
    ``E = pt cosh(eta)``, ``p = (pt cos(phi), pt sin(phi), pt sinh(eta))`` summed over real
    particles give ``m = sqrt(E^2 - |p|^2)`` (floored at 1e-4). ``forward(x, mask) -> (B,)``.
    """

    def __init__(self, scale: tuple[float, float, float], shift: tuple[float, float, float]) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale))
        self.shift = nn.Parameter(torch.tensor(shift))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        mask = mask.bool()
        return jet_mass_over_pt(apply_mask(x, mask) * self.scale + self.shift, mask, floor=1e-8)


class Critic(nn.Module):
    """Transformer encoder with a BERT-style class token; the token's output and the jet mass go
    through a fully connected head to one raw score per jet.

    ``Linear(F, d)``; a learned class token is prepended (always unmasked); encoder blocks
    (LeakyReLU); the class token's output, concatenated with :class:`JetMass`, goes through
    ``Linear(d + 1, 2h) -> Linear(2h, h) -> Linear(h, 1)`` with LeakyReLU between.
    ``forward(x, mask, cond=None) -> (B,)``; permutation invariant, blind to padded entries.
    """

    def __init__(self, config: TFRefinerConfig, num_features: int) -> None:
        super().__init__()
        d, h, slope = config.embed_dim, config.hidden, config.negative_slope
        self.embed = nn.Linear(num_features, d)
        self.blocks = encoder(config, config.critic_blocks, nn.LeakyReLU, negative_slope=slope)
        self.mass = JetMass(config.physical_scale, config.physical_shift) if config.critic_mass else None
        self.head = nn.Sequential(
            nn.Linear(d + (1 if self.mass is not None else 0), 2 * h), nn.LeakyReLU(slope),
            nn.Linear(2 * h, h), nn.LeakyReLU(slope),
            nn.Linear(h, 1),
        )
        xavier_init(self)
        self.class_token = nn.Parameter(torch.ones(1, 1, d))

    def forward(self, x: Tensor, mask: Tensor, cond: Tensor | None = None) -> Tensor:
        mask = mask.bool()
        x = apply_mask(x, mask)
        tokens = torch.cat([self.class_token.expand(x.shape[0], -1, -1), self.embed(x)], dim=1)
        token_mask = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        for i, block in enumerate(self.blocks):  # the last block only computes the class token, all that is read
            tokens = block(tokens, token_mask, first=1 if i == len(self.blocks) - 1 else None)
        features = tokens[:, 0]
        if self.mass is not None:
            features = torch.cat([features, self.mass(x, mask).unsqueeze(-1).to(features)], dim=-1)
        return self.head(features).squeeze(-1)


class RefinedFlow(nn.Module):
    """The adversarial stage's generator: jets from the (frozen) flow plus the refiner's correction.

    The flow is referenced, not registered as a sub-module: this module's parameters are the
    refiner's only (so the adversarial recipe trains nothing else), and the flow is sampled without
    gradients. ``forward(mask, cond) -> (B, N, F)``, zero where padded.
    """

    def __init__(self, flow: FlowModel, refiner: Refiner) -> None:
        super().__init__()
        self.refiner = refiner
        object.__setattr__(self, "flow", flow)

    flow: FlowModel

    def forward(self, mask: Tensor, cond: Tensor) -> Tensor:
        with torch.no_grad():
            x = self.flow.sample(mask, cond)
        return self.refiner.refine(x, mask)
