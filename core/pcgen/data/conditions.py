"""Conditions of a conditional model: their values from real clouds, their preprocessing, the
multiplicity that goes with them, and values given on the command line (``incident_energy=50GeV``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from pcgen.data.multiplicity import jet_condition
from pcgen.data.pointclouds import PointClouds
from pcgen.specs import ConditionSpec, KindSpec

ENERGY_UNITS = {"eV": 1e-9, "keV": 1e-6, "MeV": 1e-3, "GeV": 1.0, "TeV": 1e3}
"""Energy units the command line understands, in GeV."""
MAX_PAIRS = 4096
"""(condition, multiplicity) pairs of the training set kept to draw multiplicities that suit a condition."""
NEIGHBOURS = 32
"""A multiplicity for given conditions is drawn from the training clouds with the nearest conditions."""


class ConditionError(ValueError):
    """Conditions that are missing, unknown or malformed; the message says what to give instead."""


def condition_values(clouds: PointClouds, kind: KindSpec, names: Sequence[str], source: str = "the clouds") -> np.ndarray:
    """``(clouds, len(names))`` float64: each named condition of every cloud, in its unit."""
    columns = []
    for name in names:
        spec = kind.condition(name)
        values = np.asarray(spec.values(clouds), np.float64).reshape(len(clouds))
        if not np.isfinite(values).all():
            raise ConditionError(
                f"{source} do not know the {spec.description or name} ('{name}') of {int((~np.isfinite(values)).sum())} "
                f"of {len(clouds)} {kind.noun} (their cloud-level columns: {', '.join(clouds.global_names) or 'none'}); "
                f"give {kind.noun} that record it"
            )
        if spec.log and (values <= 0).any():
            raise ConditionError(f"{source}: the {name} must be positive (it is preprocessed as a logarithm); "
                                 f"the smallest is {values.min():.6g}")
        columns.append(values)
    return np.stack(columns, axis=1) if columns else np.zeros((len(clouds), 0))


def _logged(values: Tensor, log: Tensor) -> Tensor:
    """``values`` with the columns flagged in ``log`` replaced by their logarithm."""
    return torch.where(log, values.clamp_min(1e-30).log(), values)


class ConditionModel:
    """The preprocessing of a model's conditions (log where the kind says so, then standardised on the
    training set) and the training set's (condition, multiplicity) pairs.

    The pairs let generation draw a multiplicity that suits given conditions (one of the nearest
    training clouds', as a shower of 20 GeV has fewer hits than one of 90 GeV), or draw conditions
    and multiplicities together when none are given.
    """

    def __init__(self, names: Sequence[str], log: Tensor, shift: Tensor, scale: Tensor, pairs: Tensor,
                 counts: Tensor) -> None:
        self.names = tuple(names)
        self.log, self.shift, self.scale = log.bool(), shift.double(), scale.double()
        self.pairs, self.counts = pairs.double(), counts.long()

    @classmethod
    def fit(cls, clouds: PointClouds, kind: KindSpec, names: Sequence[str], seed: int = 0) -> ConditionModel:
        """Fit on the training clouds."""
        values = torch.from_numpy(condition_values(clouds, kind, names, "the training clouds"))
        log = torch.tensor([kind.condition(n).log for n in names], dtype=torch.bool)
        transformed = _logged(values, log)
        shift, scale = transformed.mean(0), transformed.std(0).clamp_min(1e-12)
        keep = np.random.default_rng(seed).permutation(len(clouds))[:MAX_PAIRS]
        return cls(names, log, shift, scale, values[keep], torch.from_numpy(clouds.multiplicity[keep]))

    def transform(self, values: np.ndarray | Tensor) -> Tensor:
        """Physical ``(B, C)`` values -> the model's standardised ones (float32)."""
        v = torch.as_tensor(values, dtype=torch.float64).reshape(-1, len(self.names))
        return ((_logged(v, self.log) - self.shift) / self.scale).float()

    def model_condition(self, mask: Tensor, values: np.ndarray | Tensor) -> Tensor:
        """The model's ``cond``: multiplicity / N, then the preprocessed conditions."""
        base = jet_condition(mask)
        return torch.cat([base, self.transform(values).to(base.device, base.dtype)], dim=1)

    def draw(self, num: int, generator: torch.Generator | None = None) -> tuple[np.ndarray, Tensor]:
        """``num`` (conditions, multiplicity) pairs of the training set, drawn with replacement."""
        index = torch.randint(len(self.counts), (num,), generator=generator)
        return self.pairs[index].numpy(), self.counts[index]

    def multiplicities_for(self, values: np.ndarray, generator: torch.Generator | None = None) -> Tensor:
        """One multiplicity per row of ``values``: that of a random one of the :data:`NEIGHBOURS` training
        clouds nearest in preprocessed condition space."""
        distance = torch.cdist(self.transform(values).double(), self.transform(self.pairs.numpy()).double())
        k = min(NEIGHBOURS, len(self.counts))
        nearest = distance.topk(k, dim=1, largest=False).indices
        pick = torch.randint(k, (len(values),), generator=generator)
        return self.counts[nearest[torch.arange(len(values)), pick]]

    def state_dict(self) -> dict[str, Tensor | str]:
        return {"names": ",".join(self.names), "log": self.log, "shift": self.shift, "scale": self.scale,
                "pairs": self.pairs, "counts": self.counts}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor | str]) -> ConditionModel:
        names = [n for n in str(state["names"]).split(",") if n]
        return cls(names, *(torch.as_tensor(state[k]) for k in ("log", "shift", "scale", "pairs", "counts")))


_VALUE = re.compile(r"^\s*([-+0-9.eE]+)\s*([A-Za-z]*)\s*$")


def parse_condition(text: str, kind: KindSpec) -> tuple[ConditionSpec, float]:
    """``"incident_energy=50GeV"`` -> (the condition, 50,000.0 in its unit MeV). Energies take eV to TeV;
    a bare number is in the condition's own unit."""
    if "=" not in text:
        raise ConditionError(f"--condition expects NAME=VALUE (e.g. {_example(kind)}), got {text!r}")
    name, raw = (part.strip() for part in text.split("=", 1))
    try:
        spec = kind.condition(name)
    except ValueError as err:
        raise ConditionError(f"--condition {text!r}: {err}") from None
    match = _VALUE.match(raw)
    if match is None:
        raise ConditionError(f"--condition {text!r}: {raw!r} is not a number with an optional unit, e.g. {_example(kind)}")
    try:
        number = float(match.group(1))
    except ValueError:
        raise ConditionError(f"--condition {text!r}: {match.group(1)!r} is not a number") from None
    unit = match.group(2)
    if unit and unit != spec.unit:
        if unit not in ENERGY_UNITS or spec.unit not in ENERGY_UNITS:
            allowed = ", ".join(ENERGY_UNITS) if spec.unit in ENERGY_UNITS else (spec.unit or "no unit")
            raise ConditionError(f"--condition {text!r}: unit {unit!r} does not fit the {name} (in {spec.unit or 'no unit'}); "
                                 f"use {allowed}")
        number *= ENERGY_UNITS[unit] / ENERGY_UNITS[spec.unit]
    if not np.isfinite(number) or (spec.log and number <= 0) or (spec.multiplicity and number < 1):
        raise ConditionError(f"--condition {text!r}: the {name} must be {'at least 1' if spec.multiplicity else 'positive'}")
    return spec, number


def _example(kind: KindSpec) -> str:
    first = next((c for c in kind.conditions if not c.multiplicity), None)
    return f"{first.name}=50{first.unit}" if first is not None else "NAME=VALUE"
