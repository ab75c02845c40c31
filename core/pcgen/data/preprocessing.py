"""Feature scaling of particles, fitted on real (unmasked) particles only."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

ScalerKind = Literal["minmax", "standard"]


class FeatureScaler:
    """Per-feature affine map between physical units and the space a model works in.

    ``minmax`` maps each feature's training range onto [-1, 1] (for generators ending in tanh);
    ``standard`` subtracts the mean and divides by the standard deviation. Both are fitted on real
    particles only; padded entries stay exactly zero in both directions. ``inverse`` clamps to the
    training range, so generated values (e.g. pt_rel) stay physical. Features listed in
    ``log_features`` (indices) are replaced by their logarithm before scaling (for positive features
    spanning decades: pt_rel, hit energies); values below ``LOG_FLOOR`` are raised to it first.
    ``spread`` stretches the scaled features: standard scaling gives them that standard deviation,
    minmax the range [-spread, spread] (the EPiC-FM reference trains on features of standard deviation
    5 against unit Gaussian noise).
    """

    LOG_FLOOR = 1e-12

    def __init__(self, kind: ScalerKind = "minmax", log_features: tuple[int, ...] = (), spread: float = 1.0) -> None:
        if kind not in ("minmax", "standard"):
            raise ValueError(f"unknown scaler kind {kind!r}; use 'minmax' or 'standard'")
        if not spread > 0:
            raise ValueError(f"the spread of scaled features must be positive, got {spread}")
        self.kind: ScalerKind = kind
        self.spread = float(spread)
        self.log_features = tuple(int(i) for i in log_features)
        self.shift = torch.zeros(0)
        self.scale = torch.ones(0)
        self.low = torch.zeros(0)
        self.high = torch.zeros(0)

    def _to_log(self, points: Tensor) -> Tensor:
        if not self.log_features:
            return points
        points = points.clone()
        index = list(self.log_features)
        points[..., index] = points[..., index].clamp_min(self.LOG_FLOOR).log()
        return points

    def fit(self, points: Tensor, mask: Tensor) -> FeatureScaler:
        real = self._to_log(points)[mask.bool()]
        if real.numel() == 0:
            raise ValueError("cannot fit a feature scaler on data without any real particle")
        self.low, self.high = real.min(dim=0).values, real.max(dim=0).values
        if self.kind == "minmax":
            self.shift = (self.high + self.low) / 2
            self.scale = ((self.high - self.low) / 2).clamp_min(1e-8)
        else:
            self.shift = real.mean(dim=0)
            self.scale = real.std(dim=0).clamp_min(1e-8)
        self.scale = self.scale / self.spread
        return self

    def transform(self, points: Tensor, mask: Tensor) -> Tensor:
        """Physical -> model space; padded entries zero."""
        out = (self._to_log(points) - self.shift.to(points)) / self.scale.to(points)
        return out * mask.unsqueeze(-1).to(out.dtype)

    def inverse(self, points: Tensor, mask: Tensor) -> Tensor:
        """Model space -> physical, clamped to the training range; padded entries zero."""
        out = points * self.scale.to(points) + self.shift.to(points)
        out = torch.maximum(torch.minimum(out, self.high.to(out)), self.low.to(out))
        return self._from_log(out) * mask.unsqueeze(-1).to(out.dtype)

    def to_physical(self, points: Tensor) -> Tensor:
        """Model space -> physical without clamping to the training range, so that gradients pass (for
        losses on physical observables); logarithms are capped at the training maximum before ``exp``.
        Padded entries are not zeroed: the caller masks."""
        out = points * self.scale.to(points) + self.shift.to(points)
        if self.log_features:
            cap = torch.full_like(self.high, torch.inf)
            cap[list(self.log_features)] = self.high[list(self.log_features)]
            out = torch.minimum(out, cap.to(out))
        return self._from_log(out)

    def _from_log(self, points: Tensor) -> Tensor:
        if not self.log_features:
            return points
        index = list(self.log_features)
        points = points.clone()
        points[..., index] = points[..., index].exp()
        return points

    def state_dict(self) -> dict[str, Tensor | str]:
        """Tensors and strings only, so that checkpoints load with ``weights_only=True``."""
        return {"kind": self.kind, "shift": self.shift, "scale": self.scale, "low": self.low, "high": self.high,
                "log_features": torch.tensor(self.log_features, dtype=torch.long)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor | str]) -> FeatureScaler:
        logs = state.get("log_features", torch.zeros(0, dtype=torch.long))
        scaler = cls(str(state["kind"]), tuple(int(i) for i in torch.as_tensor(logs).tolist()))  # type: ignore[arg-type]
        for key in ("shift", "scale", "low", "high"):
            setattr(scaler, key, torch.as_tensor(state[key]))
        return scaler
