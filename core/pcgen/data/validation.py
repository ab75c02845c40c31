"""Checks of a data file's contents, made when it is opened (:func:`pcgen.data.store.read_pointclouds`).

Each check raises one :class:`~pcgen.data.errors.DataError` whose one-line message names the file,
the dataset, what is wrong (how many, and the first place where it is) and how to fix it:

- layout: a file without pcgen's ``feature_names`` attribute is read in JetNet's layout, exactly
  4 columns (eta_rel, phi_rel, pt_rel, mask), so a file without a mask column is refused instead of
  having its pt_rel taken as the mask;
- the mask (the last column) holds only 0 and 1, and each cloud's real particles form a leading
  block (mask 1,1,1,0,0, never 1,0,1);
- real particles' features, and the jet features of jets, are finite
  (:class:`~pcgen.data.errors.NonFiniteDataError`);
- jets' relative coordinates are plausible: pt_rel in [0, :data:`MAX_PT_REL`], |eta_rel| and
  |phi_rel| at most :data:`MAX_ABS_ANGLE_REL`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pcgen.data.errors import DataError, NonFiniteDataError
from pcgen.data.pointclouds import JET_FEATURES

JETNET_COLUMNS = (*JET_FEATURES, "mask")
"""The columns of ``particle_features`` in JetNet's files."""
MAX_PT_REL = 1.01
"""Largest plausible pt_rel = pT / pT_jet: no particle carries more than its jet's pT (1 % for rounding)."""
MAX_ABS_ANGLE_REL = 2.0
"""Largest plausible |eta_rel| and |phi_rel|: 2.5 jet radii (R = 0.8); Pythia's and JetNet's jets stay below 1."""
_CONVENTION = ("pcgen expects JetNet's relative coordinates (eta_rel = eta - eta_jet, phi_rel = phi - phi_jet "
               "wrapped to [-pi, pi), pt_rel = pT / pT_jet): convert the file to them")
_LIKELY_CAUSE = {"pt_rel": "pT in GeV instead of pT / pT_jet?",
                 "eta_rel": "absolute eta, or not relative to the jet axis?",
                 "phi_rel": "absolute phi, degrees, or not wrapped to [-pi, pi)?"}


def check_layout(width: int, named: bool, path: Path, key: str) -> None:
    """A file without pcgen's ``feature_names`` attribute (``named`` False) must have JetNet's 4 columns."""
    if named or width == len(JETNET_COLUMNS):
        return
    raise DataError(
        f"data file {path}: '{key}' has {width} columns per particle, but a file without pcgen's 'feature_names' "
        f"attribute is read in JetNet's layout of {len(JETNET_COLUMNS)} columns ({', '.join(JETNET_COLUMNS)}), "
        "and its last column would be taken as the mask; add the mask as the last column (1 for a real particle, "
        "0 for padding)"
    )


def check_particles(particles: np.ndarray, feature_names: Sequence[str], path: Path, key: str,
                    declared_kind: bool = False) -> None:
    """Check ``(clouds, N, F + 1)`` particle rows (features, then the mask) as read from ``path``; JetNet's
    coordinate ranges are checked for jet features of a file that does not declare its kind (JetNet's own)."""
    mask_column = particles[..., -1]
    check_mask_values(mask_column, path, key)
    mask = mask_column == 1
    check_leading_mask(mask, path, key)
    check_finite_particles(particles[..., :-1], mask, feature_names, path, key)
    if not declared_kind and tuple(feature_names[: len(JET_FEATURES)]) == JET_FEATURES:
        check_jet_ranges(particles[..., : len(JET_FEATURES)], mask, path, key)


def check_mask_values(mask_column: np.ndarray, path: Path, key: str) -> None:
    """The mask column holds only 0 and 1 (NaN is neither)."""
    bad = (mask_column != 0) & (mask_column != 1)
    if not bad.any():
        return
    i, j = first(bad)
    raise DataError(
        f"data file {path}: the mask of '{key}' (its last column) holds {plural(int(bad.sum()), 'value')} other than 0 and 1 "
        f"(first: cloud index {i}, particle index {j}, value {mask_column[i, j]:.6g}); the last column must be 1 "
        f"for a real particle and 0 for padding, as in JetNet's layout ({', '.join(JETNET_COLUMNS)}): add or fix "
        "the mask column"
    )


def check_leading_mask(mask: np.ndarray, path: Path, key: str) -> None:
    """Each cloud's real particles come first, its padding last."""
    gaps = (mask[:, 1:] & ~mask[:, :-1]).any(axis=1)
    if not gaps.any():
        return
    i = int(np.argmax(gaps))
    raise DataError(
        f"data file {path}: in '{key}', {int(gaps.sum()):,} of {len(mask):,} clouds have padding before a real particle "
        f"(first: cloud index {i}, mask {mask_text(mask[i])}); real particles must come first and padding last "
        "(mask 1,1,1,0,0, never 1,0,1): sort each cloud's particles, e.g. by pt_rel descending, padding last"
    )


def check_finite_particles(features: np.ndarray, mask: np.ndarray, names: Sequence[str], path: Path,
                           key: str) -> None:
    """Every real particle's features are finite (padding is ignored: it is zeroed when read)."""
    bad = ~np.isfinite(features) & mask[..., None]
    if not bad.any():
        return
    clouds = int(bad.any(axis=(1, 2)).sum())
    i, j, k = first(bad)
    raise NonFiniteDataError(
        f"data file {path}: {clouds:,} of {len(features):,} clouds hold non-finite values (NaN or infinity) in '{key}' "
        f"(first: cloud index {i}, particle index {j}, {names[k]} = {features[i, j, k]}); drop or fix those "
        "clouds, or regenerate the file"
    )


def check_finite_globals(globs: np.ndarray, names: Sequence[str], path: Path, key: str) -> None:
    """Every cloud-level feature is finite, except a column that is NaN for every cloud: a quantity the
    file does not know (the incident energy of an unconditional model's showers)."""
    unknown = np.isnan(globs).all(axis=0) if len(globs) else np.zeros(globs.shape[1:], bool)
    bad = ~np.isfinite(globs) & ~unknown
    if not bad.any():
        return
    i, k = first(bad)
    raise NonFiniteDataError(
        f"data file {path}: {int(bad.any(axis=1).sum()):,} of {len(globs):,} clouds hold non-finite values (NaN or "
        f"infinity) in '{key}' (first: cloud index {i}, {names[k]} = {globs[i, k]}); drop or fix those clouds, "
        "or regenerate the file"
    )


def check_jet_ranges(points: np.ndarray, mask: np.ndarray, path: Path, key: str) -> None:
    """Real particles' (eta_rel, phi_rel, pt_rel) lie in plausible ranges for jets."""
    limits = {"eta_rel": (-MAX_ABS_ANGLE_REL, MAX_ABS_ANGLE_REL), "phi_rel": (-MAX_ABS_ANGLE_REL, MAX_ABS_ANGLE_REL),
              "pt_rel": (0.0, MAX_PT_REL)}
    for index, name in enumerate(JET_FEATURES):
        low, high = limits[name]
        values = points[..., index]
        bad = mask & ((values < low) | (values > high))
        if bad.any():
            i, j = first(bad)
            raise DataError(
                f"data file {path}: {int(bad.sum()):,} of {int(mask.sum()):,} particles in '{key}' have {name} outside "
                f"[{low:g}, {high:g}] (first: cloud index {i}, particle index {j}, {name} = {values[i, j]:.6g}; "
                f"{_LIKELY_CAUSE[name]}); {_CONVENTION}"
            )


def plural(count: int, noun: str) -> str:
    """``"1 value"``, ``"2 values"``."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def first(bad: np.ndarray) -> tuple[int, ...]:
    """The index of the first True entry of ``bad`` (in C order)."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))


def mask_text(row: np.ndarray, most: int = 16) -> str:
    """A mask row as ``1,0,1``, up to its last real particle (at most ``most`` entries, then ``...``)."""
    end = int(np.flatnonzero(row)[-1]) + 1 if row.any() else 1
    shown = ",".join(str(int(v)) for v in row[: min(end, most)])
    return shown + (",..." if end > most else "")
