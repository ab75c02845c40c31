"""Jet-level quantities computed from relative particle coordinates.

Real jet files (JetNet's, :mod:`pcgen.data.pythia`'s) hold the jet's ``pt``, ``eta``, ``mass`` in GeV
and ``num_particles`` (:data:`~pcgen.data.pointclouds.JET_GLOBALS`). Clouds in relative coordinates
alone (generated jets) do not know their jet's pT, so their jet features are relative ones, under
names that say so (:data:`RELATIVE_JET_GLOBALS`); :func:`jet_features_gev` gives the GeV ones when
the jet's pT and eta are known.
"""

from __future__ import annotations

import numpy as np

RELATIVE_JET_GLOBALS = ("jet_pt_rel", "jet_eta_rel", "mass_over_pt", "num_particles")
"""The columns of :func:`relative_jet_features`: the jet's pT and eta relative to the jet its particles
are relative to (pT ratio, eta difference), its mass over that jet's pT, and its number of particles."""


def _jet_four_momentum(eta: np.ndarray, phi: np.ndarray, pt: np.ndarray) -> tuple[np.ndarray, ...]:
    """(px, py, pz, E) of each jet, the sum of its massless particles ``(B, N)`` (padding zero)."""
    px, py = (pt * np.cos(phi)).sum(1), (pt * np.sin(phi)).sum(1)
    return px, py, (pt * np.sinh(eta)).sum(1), (pt * np.cosh(eta)).sum(1)


def _mass(px: np.ndarray, py: np.ndarray, pz: np.ndarray, energy: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(energy**2 - px**2 - py**2 - pz**2, 0.0, None))


def relative_jet_mass(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Jet mass over jet pT from massless particles in relative coordinates (negative pt_rel taken as
    0), ``(B,)`` float64: the quantity ``jetnet.utils.jet_features(jets)["mass"]`` gives and W1M
    compares, with numpy only (plots and observables need no jetnet)."""
    points, mask = np.asarray(points), np.asarray(mask).astype(bool)
    eta, phi, pt = (np.where(mask, points[..., i], 0.0).astype(np.float64) for i in range(3))
    return _mass(*_jet_four_momentum(eta, phi, np.maximum(pt, 0.0)))


def relative_jet_features(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """:data:`RELATIVE_JET_GLOBALS` of each jet from its (eta_rel, phi_rel, pt_rel) particles (massless).

    ``mass_over_pt`` is the jet mass divided by the jet pT, the quantity jetnet's W1M compares.
    """
    eta, phi, pt = (np.where(mask, points[..., i], 0.0).astype(np.float64) for i in range(3))
    px, py, pz, energy = _jet_four_momentum(eta, phi, pt)
    jet_pt = np.hypot(px, py)
    mass = _mass(px, py, pz, energy)
    jet_eta = np.arcsinh(np.divide(pz, jet_pt, out=np.zeros_like(pz), where=jet_pt > 0))
    return np.stack([jet_pt, jet_eta, mass, mask.sum(1)], axis=1).astype(np.float32)


def jet_features_gev(points: np.ndarray, mask: np.ndarray, jet_pt: np.ndarray, jet_eta: np.ndarray) -> np.ndarray:
    """(pt, eta, mass, num_particles) in GeV, as real files hold them, of jets whose particles are
    relative to a jet axis of pT ``jet_pt`` (GeV) and pseudorapidity ``jet_eta``, ``(clouds,)`` each."""
    absolute = points.astype(np.float64)
    absolute[..., 0] += np.asarray(jet_eta, np.float64)[:, None]
    features = relative_jet_features(absolute, mask).astype(np.float64)
    features[:, [0, 2]] *= np.asarray(jet_pt, np.float64)[:, None]
    return features.astype(np.float32)
