"""The torchmetrics base shared by the jet and the shower metrics: it accumulates real and
generated point clouds, batch by batch, and hands them over as float tensors on the CPU."""

from __future__ import annotations

from abc import ABC
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

STATES = ("real", "real_mask", "fake", "fake_mask")


class CloudPairMetric(Metric, ABC):
    """Accumulates ``(points, mask)`` of real and of generated clouds for a subclass's ``compute``.

    ``num_features`` leading per-particle features are kept; ``feature_hint`` names them in the
    error raised for a wrongly shaped batch.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    num_features: int = 3
    feature_hint: str = "(eta_rel, phi_rel, pt_rel)"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("compute_on_cpu", True)
        # pcgen computes a metric in one process on all clouds: never gather states from other ranks
        # (in a distributed run only rank 0 evaluates, so a gather would wait forever)
        kwargs.setdefault("sync_on_compute", False)
        super().__init__(**kwargs)
        for name in STATES:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, real: Tensor, real_mask: Tensor, fake: Tensor, fake_mask: Tensor) -> None:
        """Add a batch of real and of generated clouds (the two batches may differ in size)."""
        for name, points, mask in (("real", real, real_mask), ("fake", fake, fake_mask)):
            points, mask = torch.as_tensor(points).detach(), torch.as_tensor(mask).detach()
            if points.ndim != 3 or points.shape[-1] < self.num_features or mask.shape != points.shape[:2]:
                raise ValueError(
                    f"{name}: expected points (B, N, {self.num_features}) with features {self.feature_hint} "
                    f"and mask (B, N), got {tuple(points.shape)} and {tuple(mask.shape)}"
                )
            getattr(self, name).append(points[..., : self.num_features].float())
            getattr(self, f"{name}_mask").append(mask.bool())

    def gathered(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(real, real_mask, fake, fake_mask)``, every batch concatenated, on the CPU."""
        return tuple(self._gathered(name) for name in STATES)  # type: ignore[return-value]

    def _gathered(self, name: str) -> Tensor:
        state = getattr(self, name)
        if isinstance(state, list) and not state:
            raise RuntimeError(f"{type(self).__name__}.compute() called before any update()")
        return dim_zero_cat(state).cpu()
