"""Multiplicity sampling from the training distribution (empirical and KDE)."""

from __future__ import annotations

import pytest
import torch

from pcgen.data.multiplicity import MultiplicitySampler, jet_condition, mask_for


def training_masks() -> torch.Tensor:
    n = torch.cat([torch.full((300,), 10), torch.full((700,), 20)])
    return mask_for(n, 30)


def test_empirical_sampler_reproduces_the_training_histogram() -> None:
    sampler = MultiplicitySampler.from_mask(training_masks())
    n = sampler.sample(20_000, torch.Generator().manual_seed(0))
    assert set(n.unique().tolist()) == {10, 20}
    assert (n == 20).double().mean() == pytest.approx(0.7, abs=0.02)


def test_kde_sampler_smooths_but_keeps_the_shape_and_range() -> None:
    sampler = MultiplicitySampler.from_mask(training_masks(), "kde")
    n = sampler.sample(20_000, torch.Generator().manual_seed(0))
    assert n.min() >= 1 and n.max() <= 30
    assert len(n.unique()) > 2  # smoothed
    assert n.double().mean() == pytest.approx(17.0, abs=0.3)
    restored = MultiplicitySampler.from_state_dict(sampler.state_dict())
    assert restored.kind == "kde"
    assert torch.equal(restored.sample(50, torch.Generator().manual_seed(1)),
                       sampler.sample(50, torch.Generator().manual_seed(1)))


def test_masks_and_condition() -> None:
    mask = mask_for(torch.tensor([0, 3, 5]), 5)
    assert mask.sum(1).tolist() == [0, 3, 5] and mask[1].tolist() == [True, True, True, False, False]
    assert jet_condition(mask).squeeze(1).tolist() == pytest.approx([0.0, 0.6, 1.0])
    with pytest.raises(ValueError, match="kde"):
        MultiplicitySampler(torch.ones(3), "poisson")  # type: ignore[arg-type]
