"""Sanity numbers of generated jets, shown by ``pcgen eval`` next to the same numbers of real jets.

Three fractions that a distance metric can hide but a physicist would check first:

- ``at_min_pt_rel``: particles whose pt_rel equals the smallest real pt_rel (to float precision),
  i.e. sit at the clamp of the training range (:class:`~pcgen.data.preprocessing.FeatureScaler`
  clamps generated values to it), where a real particle almost never sits;
- ``beyond_jet_radius``: particles farther than the jet radius (sqrt(eta_rel² + phi_rel²) > 0.8)
  from the jet axis, which the anti-kT clustering of the real jets rarely leaves there;
- ``pt_rel_sum_above_limit``: jets whose pt_rel add up to more than 1.05 (a jet's particles carry
  its pT; the sum exceeds 1 only by the angles between them).

They apply to jets only (eta_rel, phi_rel, pt_rel); other kinds of clouds get none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.table import Table

from pcgen.data.pointclouds import JET_FEATURES, PointClouds

JET_RADIUS = 0.8
"""Anti-kT radius of the jets (JetNet's and pcgen's Pythia jets)."""
PT_SUM_LIMIT = 1.05
"""A jet whose pt_rel sum exceeds this carries more pT than the jet it is relative to."""
CLAMP_RTOL = 1e-6
"""Relative tolerance of "equal to the minimum real pt_rel": a few float32 ulps."""
SANITY_LABELS = {
    "at_min_pt_rel": "particles at the min. real pT_rel",
    "beyond_jet_radius": f"particles beyond ΔR {JET_RADIUS:g}",
    "pt_rel_sum_above_limit": f"jets with Σ pT_rel > {PT_SUM_LIMIT:g}",
}
"""Column titles of the sanity table, by key."""


def applies_to(clouds: PointClouds) -> bool:
    """Whether the sanity numbers apply: jets with (eta_rel, phi_rel, pt_rel) first."""
    return tuple(clouds.feature_names[: len(JET_FEATURES)]) == JET_FEATURES


def jet_sanity(points: np.ndarray, mask: np.ndarray, min_pt_rel: float) -> dict[str, float]:
    """The three fractions (see the module) of jets ``(B, N, 3+)`` with masks ``(B, N)``."""
    mask = mask.astype(bool)
    eta, phi, pt = (points[..., i].astype(np.float64) for i in range(3))
    particles = max(int(mask.sum()), 1)
    at_min = mask & np.isclose(pt, min_pt_rel, rtol=CLAMP_RTOL, atol=0.0)
    beyond = mask & (np.hypot(eta, phi) > JET_RADIUS)
    sums = np.where(mask, pt, 0.0).sum(axis=1)
    return {
        "at_min_pt_rel": float(at_min.sum() / particles),
        "beyond_jet_radius": float(beyond.sum() / particles),
        "pt_rel_sum_above_limit": float((sums > PT_SUM_LIMIT).mean()) if len(sums) else 0.0,
    }


def min_pt_rel(clouds: PointClouds) -> float:
    """The smallest pt_rel of a real particle in ``clouds`` (the lower clamp of a model trained on them)."""
    pt = clouds.points[..., JET_FEATURES.index("pt_rel")][clouds.mask]
    return float(pt.min()) if pt.size else float("nan")


@dataclass
class SanityReport:
    """The sanity fractions of generated and real jets: ``rows["generated" | "real"][key]``."""

    rows: dict[str, dict[str, float]]
    files: dict[str, str]
    min_pt_rel: float

    def to_rich(self) -> Table:
        """A small table of the fractions in percent, generated and real side by side."""
        caption = ", ".join(f"{row}: {name}" for row, name in self.files.items())
        table = Table(title="sanity of the generated jets (percent)",
                      caption=f"{caption}; min. real pT_rel {self.min_pt_rel:.4g}")
        table.add_column("jets", style="bold")
        for key in SANITY_LABELS:
            table.add_column(SANITY_LABELS[key], justify="right")
        for row, values in self.rows.items():
            table.add_row(row, *(f"{100 * values[k]:.3g} %" for k in SANITY_LABELS))
        return table

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: the fractions (0 to 1), the files, the pt_rel minimum and what each key means."""
        return {
            "rows": {row: dict(values) for row, values in self.rows.items()},
            "files": dict(self.files),
            "min_pt_rel": self.min_pt_rel if np.isfinite(self.min_pt_rel) else None,
            "definitions": {
                "at_min_pt_rel": "fraction of particles whose pt_rel equals min_pt_rel (the smallest real pt_rel "
                                 f"of the reference file) within a relative {CLAMP_RTOL:g}",
                "beyond_jet_radius": f"fraction of particles with sqrt(eta_rel^2 + phi_rel^2) > {JET_RADIUS:g}",
                "pt_rel_sum_above_limit": f"fraction of jets whose particles' pt_rel sum exceeds {PT_SUM_LIMIT:g}",
            },
        }


def sanity_report(generated: PointClouds, real: PointClouds, reference: PointClouds,
                  files: tuple[str, str]) -> SanityReport:
    """The fractions of ``generated`` and ``real`` jets; the pt_rel minimum is the whole ``reference``
    file's (the real jets' source). ``files`` names (generated, real) in the table."""
    floor = min_pt_rel(reference)
    rows = {"generated": jet_sanity(generated.points, generated.mask, floor),
            "real": jet_sanity(real.points, real.mask, floor)}
    return SanityReport(rows, {"generated": files[0], "real": files[1]}, floor)
