"""The generator: a GPT-style decoder over token sequences ``start, t_1 ... t_n, stop``.

Tokens come from the frozen :class:`~pcgen_omnijet.tokenizer.Tokenizer`, ordered by the ordering
feature (pT for jets, energy for showers), highest first. Input vocabulary: the codes and the start
token; output vocabulary: the codes and the stop token. Generation samples one token at a time
(temperature, optional top-k); a cloud ends where the stop token is drawn (or at N particles).
With the key-value cache each new token attends to the stored keys and values of its prefix
instead of recomputing the whole sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pcgen import IGNORE, AutoregressiveModel
from pcgen.nn import Dropout
from torch import Tensor, nn

from pcgen_omnijet.config import OmniJetConfig
from pcgen_omnijet.tokenizer import Tokenizer

COMPACT_BELOW = 0.75
"""Generation drops finished sequences from the batch once fewer than this share of its rows are live."""
ORDERING_FEATURES = ("pt_rel", "E", "pt")
"""Features that order the particles of a sequence (the first the data has), highest first."""


class KVCache:
    """Keys and values of every block for a batch of sequences being generated, preallocated."""

    def __init__(self, blocks: int, batch: int, heads: int, length: int, head_dim: int, like: Tensor) -> None:
        shape = (blocks, batch, heads, length, head_dim)
        self.keys = torch.zeros(shape, dtype=like.dtype, device=like.device)
        self.values = torch.zeros(shape, dtype=like.dtype, device=like.device)
        self.length = 0

    def keep_rows(self, keep: Tensor) -> None:
        """Keep only the sequences where ``keep`` ``(B,)`` is True (finished ones are dropped)."""
        self.keys, self.values = self.keys[:, keep], self.values[:, keep]

    def append(self, block: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store one block's new keys/values ``(B, H, T, d)`` after the prefix; return the whole prefix's."""
        end = self.length + k.shape[2]
        self.keys[block, :, :, self.length : end] = k
        self.values[block, :, :, self.length : end] = v
        return self.keys[block, :, :, :end], self.values[block, :, :, :end]


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, h: Tensor, cache: KVCache | None = None, block: int = 0, packing: Packing | None = None) -> Tensor:
        qkv = self.qkv(h) if packing is None else packing.unpack(self.qkv(h))
        b, t, d = qkv.shape[0], qkv.shape[1], qkv.shape[2] // 3
        q, k, v = qkv.view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        else:
            k, v = cache.append(block, k, v)
            # the new queries sit at the end of the prefix: query i may see keys up to prefix + i
            causal = t > 1
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=_tail_mask(t, k.shape[2], h.device) if causal else None)
        y = y.transpose(1, 2).reshape(b, t, d)
        return self.out(y if packing is None else packing.pack(y))


@dataclass
class Packing:
    """The positions of a padded ``(B, L)`` batch that matter, as rows ``(K, ...)``.

    Causal attention lets a position see only earlier ones, so when the positions kept are a prefix
    of every sequence (those with a target), the others can be left out of every per-token layer;
    only attention works on the padded layout, where the left-out positions hold zeros after all
    kept ones and are never seen.
    """

    index: Tensor
    batch: int
    length: int

    @classmethod
    def of(cls, positions: Tensor) -> Packing:
        return cls(positions.flatten().nonzero().squeeze(1), positions.shape[0], positions.shape[1])

    def pack(self, x: Tensor) -> Tensor:
        """``(B, L, ...) -> (K, ...)``."""
        return x.flatten(0, 1).index_select(0, self.index)

    def unpack(self, rows: Tensor) -> Tensor:
        """``(K, ...) -> (B, L, ...)``, zeros at the positions left out."""
        padded = rows.new_zeros(self.batch * self.length, *rows.shape[1:]).index_copy(0, self.index, rows)
        return padded.view(self.batch, self.length, *rows.shape[1:])


def _tail_mask(queries: int, keys: int, device: torch.device) -> Tensor:
    """Causal mask of the last ``queries`` positions of a sequence of ``keys`` positions."""
    return torch.ones(queries, keys, dtype=torch.bool, device=device).tril(keys - queries)


class Block(nn.Module):
    """Pre-norm transformer decoder block."""

    def __init__(self, config: OmniJetConfig) -> None:
        super().__init__()
        d = config.embed_dim
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attention = CausalSelfAttention(d, config.num_heads, config.dropout)
        self.mlp = nn.Sequential(nn.Linear(d, config.mlp_ratio * d), nn.GELU(), nn.Linear(config.mlp_ratio * d, d),
                                 Dropout(config.dropout))

    def forward(self, h: Tensor, cache: KVCache | None = None, block: int = 0, packing: Packing | None = None) -> Tensor:
        h = h + self.attention(self.norm1(h), cache, block, packing)
        return h + self.mlp(self.norm2(h))


class GPT(AutoregressiveModel):
    """Autoregressive model of token sequences; trained by the core's autoregressive recipe (stage ``gpt``).

    The tokenizer is referenced, not registered: this module's parameters are the GPT's only, and
    tokens are computed without gradients.
    """

    tokenizer: Tokenizer

    def __init__(self, config: OmniJetConfig, tokenizer: Tokenizer, max_particles: int,
                 feature_names: tuple[str, ...]) -> None:
        super().__init__()
        self.config, self.max_particles = config, max_particles
        object.__setattr__(self, "tokenizer", tokenizer)
        codes = tokenizer.codebook_size
        self.start_token = self.stop_token = codes  # the extra index of the input and output vocabularies
        self.ordering = next((feature_names.index(f) for f in ORDERING_FEATURES if f in feature_names), None)
        d = config.embed_dim
        self.token_embedding = nn.Embedding(codes + 1, d)
        self.position_embedding = nn.Embedding(max_particles + 1, d)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_blocks))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, codes + 1)
        self.apply(_init_weights)

    # -- sequences ---------------------------------------------------------------------------------

    def ordered_tokens(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Tokens ``(B, N)`` sorted by the ordering feature (highest first, padding last) and the sorted mask."""
        tokens = self.tokenizer.tokenize(x, mask)
        if self.ordering is None:
            key = mask.float()
        else:
            key = torch.where(mask, x[..., self.ordering], torch.full_like(x[..., 0], -torch.inf))
        order = key.argsort(dim=1, descending=True, stable=True)
        return tokens.gather(1, order), mask.gather(1, order)

    def token_sequences(self, x: Tensor, mask: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        """``start, t_1 ... t_n`` and targets ``t_1 ... t_n, stop, IGNORE...``, cut to the batch's longest cloud."""
        tokens, mask = self.ordered_tokens(x, mask)
        counts = mask.sum(1)
        length = int(counts.max()) + 1 if len(counts) else 1
        b = len(tokens)
        inputs = torch.full((b, length), self.start_token, dtype=torch.long, device=x.device)
        inputs[:, 1:] = tokens[:, : length - 1].clamp_min(0)
        targets = torch.full((b, length), IGNORE, dtype=torch.long, device=x.device)
        targets[:, : length - 1] = torch.where(mask[:, : length - 1], tokens[:, : length - 1], IGNORE)
        targets.scatter_(1, counts.view(-1, 1), self.stop_token)
        return inputs, targets

    def next_token_logits(self, tokens: Tensor, cond: Tensor | None = None, cache: KVCache | None = None) -> Tensor:
        return self.head(self.norm(self._hidden(tokens, cache)))

    def next_token_logits_at(self, tokens: Tensor, cond: Tensor | None, positions: Tensor) -> Tensor:
        """Every per-token layer, the output layer (``embed_dim x`` vocabulary) above all, only where a
        target is (a prefix of each sequence: :class:`Packing`)."""
        return self.head(self.norm(self._hidden(tokens, packing=Packing.of(positions))))

    def _hidden(self, tokens: Tensor, cache: KVCache | None = None, packing: Packing | None = None) -> Tensor:
        """The last block's output ``(B, L, embed_dim)``, or ``(K, embed_dim)`` at the packed positions."""
        start = cache.length if cache is not None else 0
        positions = torch.arange(start, start + tokens.shape[1], device=tokens.device)
        h = self.token_embedding(tokens) + self.position_embedding(positions)
        if packing is not None:
            h = packing.pack(h)
        for i, block in enumerate(self.blocks):
            h = block(h, cache, i, packing)
        if cache is not None:
            cache.length += tokens.shape[1]
        return h

    # -- generation --------------------------------------------------------------------------------

    @torch.no_grad()
    def generate_tokens(self, num: int, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Token sequences ``(num, N)`` and their masks. With ``lengths`` ``(num,)`` each sequence has
        exactly that many tokens (the stop token is forbidden before and forced there); without,
        a sequence ends where the stop token is drawn."""
        chunk = self.cache_chunk()
        if num > chunk:
            parts = [self.generate_tokens(min(chunk, num - start), None if lengths is None else
                                          lengths[start : start + chunk]) for start in range(0, num, chunk)]
            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        device = self.head.weight.device
        n_max = self.max_particles
        tokens = torch.zeros(num, n_max, dtype=torch.long, device=device)
        counts = torch.zeros(num, dtype=torch.long, device=device)
        rows = torch.arange(num, device=device)  # the batch rows still being generated
        done = torch.zeros(num, dtype=torch.bool, device=device)  # per row of ``rows``
        sequence = torch.full((num, 1), self.start_token, dtype=torch.long, device=device)
        cache = self._new_cache(num) if self.config.kv_cache else None
        for position in range(n_max):
            step_input = sequence[:, -1:] if cache is not None else sequence
            logits = self.next_token_logits(step_input, cache=cache)[:, -1].float()
            if lengths is not None:
                logits[:, self.stop_token] = -torch.inf  # forbidden before the length, forced there (below)
            token = self._draw(logits)
            if lengths is not None:
                token = torch.where(position >= lengths[rows], self.stop_token, token)
            done |= token == self.stop_token
            tokens[rows[~done], position] = token[~done]
            counts[rows[~done]] += 1
            if bool(done.all()):
                break
            sequence = torch.cat([sequence, token.clamp_max(self.stop_token - 1).unsqueeze(1)], dim=1)
            if (~done).sum() <= COMPACT_BELOW * len(rows):  # drop finished rows (rarely: each drop copies the cache)
                keep = ~done
                rows, sequence, done = rows[keep], sequence[keep], done[keep]
                if cache is not None:
                    cache.keep_rows(keep)
        mask = torch.arange(n_max, device=device) < counts.unsqueeze(1)
        return tokens * mask, mask

    def cache_chunk(self) -> int:
        """Most sequences generated at once so that the KV cache stays within ``cache_memory_mb``."""
        c = self.config
        per_sequence = 2 * c.num_blocks * (self.max_particles + 1) * c.embed_dim * self.head.weight.element_size()
        return max(1, c.cache_memory_mb * 2**20 // per_sequence)

    def _new_cache(self, batch: int) -> KVCache:
        c = self.config
        return KVCache(c.num_blocks, batch, c.num_heads, self.max_particles + 1, c.embed_dim // c.num_heads,
                       self.head.weight)

    def _draw(self, logits: Tensor) -> Tensor:
        """One token per row: softmax with the temperature, among the top k if set."""
        if self.config.temperature != 1.0:
            logits = logits / self.config.temperature
        if self.config.top_k and self.config.top_k < logits.shape[-1]:
            kth = logits.topk(self.config.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, -torch.inf)
        return sample_categorical(torch.softmax(logits, dim=-1))

    def _sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        """Particles of sequences with exactly the multiplicities of ``mask`` (stop token placed there)."""
        tokens, generated = self.generate_tokens(len(mask), mask.sum(1))
        return self.tokenizer.decode(tokens, generated)

    def _sample_with_multiplicity(self, num: int, max_particles: int) -> tuple[Tensor, Tensor]:
        if max_particles != self.max_particles:
            raise ValueError(f"this GPT generates up to {self.max_particles} particles, not {max_particles}")
        tokens, mask = self.generate_tokens(num)
        return self.tokenizer.decode(tokens, mask), mask


def sample_categorical(probs: Tensor) -> Tensor:
    """One index per row of ``probs`` ``(B, V)`` (rows summing to one), drawn by inverting the cumulative
    distribution with one uniform number per row.

    The same distribution as ``torch.multinomial(probs, 1)``, which on the CPU draws an exponential
    number for every category (8,193 per token here): generation spent half its time there. With ``u``
    in ``(0, total]`` and the first index whose cumulative sum reaches ``u``, a category of probability
    zero is never drawn (its step is empty), also at the ends.
    """
    cdf = probs.cumsum(dim=-1)
    u = (1.0 - torch.rand(len(probs), 1, dtype=cdf.dtype, device=cdf.device)) * cdf[:, -1:]
    return torch.searchsorted(cdf, u).squeeze(-1)


def _init_weights(module: nn.Module) -> None:
    """GPT-style initialisation: normal(0, 0.02) weights, zero biases."""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
