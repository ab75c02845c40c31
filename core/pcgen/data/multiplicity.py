"""Particle multiplicity: the condition models see, and sampling it from the training distribution."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

MultiplicityKind = Literal["empirical", "kde"]


def jet_condition(mask: Tensor) -> Tensor:
    """The per-cloud condition of pcgen's jet models: multiplicity / N, shape ``(B, 1)``."""
    return mask.sum(dim=1, keepdim=True).to(torch.get_default_dtype()) / mask.shape[1]


def mask_for(multiplicity: Tensor, max_particles: int) -> Tensor:
    """Boolean masks whose first ``n`` entries are True (pcgen's clouds are sorted by pT)."""
    return torch.arange(max_particles, device=multiplicity.device).unsqueeze(0) < multiplicity.unsqueeze(1)


class MultiplicitySampler:
    """Samples multiplicities from the training set's distribution.

    ``empirical`` draws from the histogram of training multiplicities (iGAPT, TF refiner);
    ``kde`` draws from a Gaussian kernel density estimate of it (Scott's bandwidth), rounded and
    clipped to [1, N] (MDMA). Both are rebuilt exactly from the histogram, which is all a
    checkpoint stores.
    """

    def __init__(self, counts: Tensor, kind: MultiplicityKind = "empirical") -> None:
        counts = torch.as_tensor(counts, dtype=torch.float64)
        if counts.ndim != 1 or counts.sum() <= 0:
            raise ValueError("multiplicity counts must be a non-empty histogram")
        if kind not in ("empirical", "kde"):
            raise ValueError(f"unknown multiplicity sampler {kind!r}; use 'empirical' or 'kde'")
        self.counts, self.kind = counts, kind

    @classmethod
    def from_mask(cls, mask: Tensor, kind: MultiplicityKind = "empirical") -> MultiplicitySampler:
        n = mask.sum(dim=1).long()
        return cls(torch.bincount(n, minlength=mask.shape[1] + 1).double(), kind)

    @property
    def max_particles(self) -> int:
        return len(self.counts) - 1

    def bandwidth(self) -> float:
        """Scott's rule, ``std * n^(-1/5)``, of the training multiplicities (at least 0.5)."""
        values = torch.arange(len(self.counts), dtype=torch.float64)
        total = self.counts.sum()
        mean = (values * self.counts).sum() / total
        std = (((values - mean) ** 2 * self.counts).sum() / total).sqrt()
        return max(float(std * total ** (-0.2)), 0.5)

    def sample(self, size: int, generator: torch.Generator | None = None) -> Tensor:
        """``size`` multiplicities (int64)."""
        n = torch.multinomial(self.counts, size, replacement=True, generator=generator)
        if self.kind == "kde":
            noise = torch.randn(size, generator=generator, dtype=torch.float64) * self.bandwidth()
            n = (n + noise).round().clamp(1, self.max_particles).long()
        return n

    def state_dict(self) -> dict[str, Tensor | str]:
        return {"counts": self.counts, "kind": self.kind}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor | str]) -> MultiplicitySampler:
        return cls(state["counts"], str(state.get("kind", "empirical")))  # type: ignore[arg-type]
