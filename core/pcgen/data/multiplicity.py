"""Particle multiplicity: the condition models see, and sampling it from the training distribution."""

from __future__ import annotations

import torch
from torch import Tensor


def jet_condition(mask: Tensor) -> Tensor:
    """The per-cloud condition of pcgen's jet models: multiplicity / N, shape ``(B, 1)``."""
    return mask.sum(dim=1, keepdim=True).to(torch.get_default_dtype()) / mask.shape[1]


def mask_for(multiplicity: Tensor, max_particles: int) -> Tensor:
    """Boolean masks whose first ``n`` entries are True (pcgen's clouds are sorted by pT)."""
    return torch.arange(max_particles, device=multiplicity.device).unsqueeze(0) < multiplicity.unsqueeze(1)


class MultiplicitySampler:
    """Samples multiplicities from the empirical distribution of the training set."""

    def __init__(self, counts: Tensor) -> None:
        counts = torch.as_tensor(counts, dtype=torch.float64)
        if counts.ndim != 1 or counts.sum() <= 0:
            raise ValueError("multiplicity counts must be a non-empty histogram")
        self.counts = counts

    @classmethod
    def from_mask(cls, mask: Tensor) -> MultiplicitySampler:
        n = mask.sum(dim=1).long()
        return cls(torch.bincount(n, minlength=mask.shape[1] + 1).double())

    @property
    def max_particles(self) -> int:
        return len(self.counts) - 1

    def sample(self, size: int, generator: torch.Generator | None = None) -> Tensor:
        """``size`` multiplicities, drawn with replacement from the training histogram."""
        return torch.multinomial(self.counts, size, replacement=True, generator=generator)

    def state_dict(self) -> dict[str, Tensor]:
        return {"counts": self.counts}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> MultiplicitySampler:
        return cls(state["counts"])
