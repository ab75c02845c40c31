"""The tokenizer: a VQ-VAE that turns each particle (or hit) into one of ``codebook_size`` tokens.

Encoder and decoder are per-particle MLPs, so a particle's token depends on that particle alone:
padded slots are never encoded, and permuting particles permutes their tokens. Quantisation picks
the nearest code vector (L2); gradients pass the quantiser by the straight-through estimator.
Loss (OmniJet-alpha): ``MSE(x, x') + alpha * (beta |sg[z_e] - z_q|^2 + (1 - beta) |z_e - sg[z_q]|^2)``.
The codebook starts on encodings of the first training batch, and every ``replace_every`` steps the
code vectors no particle chose since the last replacement are moved onto encodings of the current
batch (plus a little noise), which keeps the codebook in use.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pcgen import Batch, ObjectiveModel
from torch import Tensor, nn

from pcgen_omnijet.config import OmniJetConfig

NEAREST_CHUNK = {"cpu": 32}
"""Particles per block when searching the nearest code, by device type (default 4096): it bounds memory
at chunk x codebook floats, and on the CPU a block of distances that stays in the cache is 3-5x faster."""


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with GELU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class Tokenizer(ObjectiveModel):
    """VQ-VAE over single particles; trained by the core's objective recipe (stage ``tokenizer``)."""

    def __init__(self, config: OmniJetConfig, num_features: int, feature_names: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.config = config
        self.feature_names = feature_names or tuple(f"f{i}" for i in range(num_features))
        hidden = [config.tokenizer_hidden] * (config.tokenizer_layers - 1)
        self.encoder = mlp([num_features, *hidden, config.latent_dim])
        self.decoder = mlp([config.latent_dim, *hidden, num_features])
        self.codebook = nn.Parameter(torch.randn(config.codebook_size, config.latent_dim))
        self.register_buffer("window_counts", torch.zeros(config.codebook_size))
        """How often each code was chosen since the last replacement."""
        self.register_buffer("total_counts", torch.zeros(config.codebook_size))
        """How often each code was chosen over all of training (the unigram sampling distribution)."""
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))
        """Whether the codebook was set from the first training batch's encodings."""
        self._last: dict[str, Tensor] = {}

    # -- encoding and decoding -------------------------------------------------------------------

    @property
    def codebook_size(self) -> int:
        return int(self.codebook.shape[0])

    def nearest(self, z: Tensor) -> Tensor:
        """Index of the nearest code vector of each row of ``z`` ``(M, latent)``, ``(M,)`` long."""
        codes = self.codebook.detach()
        norms = (codes * codes).sum(-1)
        chunk = NEAREST_CHUNK.get(z.device.type, 4096)
        # ||c||^2 - 2 z.c in one fused pass (||z||^2 is the same for every code), in fp32 even under autocast
        with torch.autocast(z.device.type, enabled=False):
            z = z.detach().to(codes.dtype)
            out = [torch.addmm(norms, block, codes.T, alpha=-2).argmin(-1) for block in z.split(chunk)]
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=z.device)

    @torch.no_grad()
    def tokenize(self, x: Tensor, mask: Tensor) -> Tensor:
        """Token of every particle, ``(B, N)`` long; -1 where padded."""
        tokens = torch.full(mask.shape, -1, dtype=torch.long, device=x.device)
        tokens[mask] = self.nearest(self.encoder(x[mask]))
        return tokens

    def decode(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Particles ``(B, N, F)`` of tokens ``(B, N)``; zero where padded."""
        out = torch.zeros(*mask.shape, self.decoder[-1].out_features, device=tokens.device)
        out[mask] = self.decoder(self.codebook[tokens[mask]]).to(out.dtype)
        return out

    def reconstruct(self, x: Tensor, mask: Tensor) -> Tensor:
        """Decode the tokens of ``x``: what the tokenizer keeps of the particles."""
        return self.decode(self.tokenize(x, mask), mask)

    # -- training (objective recipe) -------------------------------------------------------------

    def training_losses(self, batch: Batch, step: int) -> dict[str, Tensor]:
        x = batch.x[batch.mask]
        z_e = self.encoder(x)
        if self.training and not self.initialised:
            self._move_codes(torch.arange(self.codebook_size, device=z_e.device), z_e.detach())
            self.initialised.fill_(True)
        index = self.nearest(z_e)
        z_q = self.codebook[index]
        beta = self.config.beta
        commitment = beta * F.mse_loss(z_q, z_e.detach()) + (1 - beta) * F.mse_loss(z_e, z_q.detach())
        recon = self.decoder(z_e + (z_q - z_e).detach())  # straight-through estimator
        counts = torch.bincount(index, minlength=self.codebook_size).to(self.window_counts)
        if self.training:  # held-out batches (eval mode) leave the code statistics alone
            self.window_counts += counts
            self.total_counts += counts
            with torch.no_grad():
                per_feature = ((recon - x) ** 2).mean(0)
            self._last = {f"tokenizer/recon_mse_{n}": v for n, v in zip(self.feature_names, per_feature, strict=True)}
            self._last["codebook/batch_usage"] = (counts > 0).float().mean()
        return {"reconstruction": F.mse_loss(recon, x), "commitment": self.config.alpha * commitment}

    @torch.no_grad()
    def after_step(self, batch: Batch, step: int) -> dict[str, Tensor | float]:
        """Log reconstruction and codebook use; every ``replace_every`` steps replace unused codes."""
        logs = dict(self._last)
        if (step + 1) % self.config.replace_every:
            return logs
        used = self.window_counts > 0
        share = self.window_counts / self.window_counts.sum().clamp_min(1)
        entropy = -(share[used] * share[used].log()).sum().item()
        logs["codebook/usage"] = used.float().mean().item()
        logs["codebook/perplexity"] = math.exp(entropy)
        dead = (~used).nonzero().squeeze(-1)
        if len(dead):
            self._move_codes(dead, self.encoder(batch.x[batch.mask]))
        logs["codebook/replaced"] = float(len(dead))
        self.window_counts.zero_()
        return logs

    @torch.no_grad()
    def _move_codes(self, codes: Tensor, encodings: Tensor) -> None:
        """Put the code vectors ``codes`` on randomly chosen ``encodings`` (plus noise of 1 % of their spread)."""
        pick = torch.randint(len(encodings), (len(codes),), device=encodings.device)
        spread = encodings.std(0, keepdim=True).nan_to_num(1.0) if len(encodings) > 1 else 1.0
        moved = encodings[pick] + 0.01 * spread * torch.randn_like(encodings[pick])
        self.codebook[codes] = moved.to(self.codebook.dtype)  # encodings may be bf16 under autocast

    # -- generating (a baseline: tokens drawn independently) --------------------------------------

    @torch.no_grad()
    def _sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        """Particles decoded from tokens drawn independently with their training frequencies (a
        "bag of tokens" baseline; uniform before any training)."""
        weights = self.total_counts + 1e-6
        tokens = torch.multinomial(weights, mask.numel(), replacement=True).view(mask.shape).to(mask.device)
        return self.decode(tokens, mask)
