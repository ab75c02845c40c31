"""Jet-level quantities computed from relative particle coordinates."""

from __future__ import annotations

import numpy as np


def relative_jet_features(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(pt_rel, eta_rel, mass_rel, num_particles) of each jet from its (eta_rel, phi_rel, pt_rel) particles.

    Relative mass is the jet mass divided by the jet pT, the quantity jetnet's W1M compares.
    """
    eta, phi, pt = (np.where(mask, points[..., i], 0.0).astype(np.float64) for i in range(3))
    px, py = (pt * np.cos(phi)).sum(1), (pt * np.sin(phi)).sum(1)
    pz, energy = (pt * np.sinh(eta)).sum(1), (pt * np.cosh(eta)).sum(1)
    jet_pt = np.hypot(px, py)
    mass = np.sqrt(np.clip(energy**2 - px**2 - py**2 - pz**2, 0.0, None))
    jet_eta = np.arcsinh(np.divide(pz, jet_pt, out=np.zeros_like(pz), where=jet_pt > 0))
    return np.stack([jet_pt, jet_eta, mass, mask.sum(1)], axis=1).astype(np.float32)
