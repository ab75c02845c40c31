"""Matching physical observables of generated and real clouds: a loss term for generators.

A generator trained only against a critic learns the jet mass and the particle spectrum slowly on a
small budget (the critic has to discover them first). This module adds, per named observable, the
exact one-dimensional Wasserstein distance between its values on a batch of generated clouds and on
the real batch they were drawn for, in physical units, divided by the real values' standard
deviation (so weights mean the same for every observable), times a weight. The adversarial recipe
adds it to the generator's loss (``recipe.match``). This is the idea of the mass-constrained flows of
Käch et al. (JetFlow, arXiv:2211.13630), who add a constraint on the jet mass to their flow's loss; a
sorted one-dimensional W1 needs no kernel or binning, and is the distance W1M measures.

Observables: ``mass`` (the jet mass over the jet pT of massless particles in (eta_rel, phi_rel,
pt_rel): the quantity jetnet's W1M compares) and any particle feature of the data by name (e.g.
``pt_rel``: the distribution of all real particles' values, what W1P compares). Generated clouds
reuse the real batch's masks, so both sides hold as many jets and particles and W1 is the mean
absolute difference of the sorted values. Padded particles never enter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from pcgen.config import ConfigError
from pcgen.data.pointclouds import JET_FEATURES
from pcgen.data.preprocessing import FeatureScaler
from pcgen.nn.jets import jet_mass_over_pt

MASS = "mass"


def wasserstein_1d(a: Tensor, b: Tensor) -> Tensor:
    """Exact W1 between two equally sized 1-d samples: the mean absolute difference of their sorted values."""
    return (torch.sort(a).values - torch.sort(b).values).abs().mean()


class ObservableMatching:
    """The weighted, normalised W1 terms of ``weights`` (observable -> weight) for one data set."""

    def __init__(self, weights: Mapping[str, float], feature_names: Sequence[str], scaler: FeatureScaler) -> None:
        names = tuple(feature_names)
        unknown = [k for k in weights if k != MASS and k not in names]
        if unknown:
            raise ConfigError(f"'recipe.match' names {', '.join(map(repr, unknown))}: neither 'mass' nor a feature of "
                              f"this data ({', '.join(names)}); e.g. --set 'recipe.match={{mass = 1.0, pt_rel = 1.0}}'")
        if MASS in weights and not set(JET_FEATURES) <= set(names):
            raise ConfigError(f"'recipe.match' asks for the jet mass, which needs the features {', '.join(JET_FEATURES)}"
                              f"; this data has {', '.join(names)}")
        negative = {k: w for k, w in weights.items() if w < 0}
        if negative:
            raise ConfigError(f"'recipe.match' weights must be >= 0, got {negative}")
        self.weights = {k: float(w) for k, w in weights.items() if w > 0}
        self.feature_index = {name: i for i, name in enumerate(names)}
        self.jet_index = [self.feature_index[f] for f in JET_FEATURES] if MASS in self.weights else []
        self.scaler = scaler

    def _values(self, name: str, physical: Tensor, mask: Tensor) -> Tensor:
        if name == MASS:
            return jet_mass_over_pt(physical[..., self.jet_index], mask)
        return physical[..., self.feature_index[name]][mask]

    def losses(self, real: Tensor, fake: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """``match/<observable>``: weight x W1(fake, real) / std(real) for each observable; ``real`` and
        ``fake`` ``(B, N, F)`` in the model's space with the same ``mask``; gradients reach ``fake`` only."""
        mask = mask.bool()
        with torch.no_grad():
            real_physical = self.scaler.to_physical(real)
        fake_physical = self.scaler.to_physical(fake)
        terms: dict[str, Tensor] = {}
        for name, weight in self.weights.items():
            target = self._values(name, real_physical, mask)
            if target.numel() < 2:
                continue
            spread = target.std().clamp_min(1e-12)
            terms[f"match/{name}"] = weight * wasserstein_1d(self._values(name, fake_physical, mask), target) / spread
        return terms
