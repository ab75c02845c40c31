"""Differentiable jet quantities from particles in jet-relative coordinates."""

from __future__ import annotations

import torch
from torch import Tensor


def jet_mass_over_pt(physical: Tensor, mask: Tensor, floor: float = 1e-12) -> Tensor:
    """Jet mass over jet pT ``(B,)`` of massless particles given in physical ``(eta_rel, phi_rel, pt_rel)``
    ``(B, N, 3)``: ``E = pt cosh(eta)``, ``p = (pt cos(phi), pt sin(phi), pt sinh(eta))`` summed over real
    particles, ``m = sqrt(max(E^2 - |p|^2, floor))``. Negative pt_rel counts as 0; padded particles as
    nothing. The quantity jetnet's W1M compares (numpy: :func:`pcgen.data.jetfeatures.relative_jet_mass`)."""
    eta, phi, pt = physical.unbind(-1)
    pt = torch.where(mask.bool(), pt.clamp_min(0.0), torch.zeros_like(pt))
    energy = (pt * torch.cosh(eta)).sum(1)
    px, py, pz = (pt * torch.cos(phi)).sum(1), (pt * torch.sin(phi)).sum(1), (pt * torch.sinh(eta)).sum(1)
    return (energy**2 - px**2 - py**2 - pz**2).clamp_min(floor).sqrt()
