"""Issue 21, item 7: samples a physicist can trust. Generated jets' `jet_features` hold relative
quantities under names that say so (real files' `pt`, `eta`, `mass` are GeV); generated particles are
sorted by pt_rel like JetNet's; `pcgen eval` shows three sanity fractions of the generated jets next to
the real ones' (particles at the pt_rel clamp, beyond the jet radius, jets with sum pt_rel > 1.05)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
from .helpers import one_line
from toydata import toy_jets

from pcgen.data.jetfeatures import RELATIVE_JET_GLOBALS, jet_features_gev
from pcgen.data.pointclouds import JET_GLOBALS, SHOWER_FEATURES, PointClouds
from pcgen.data.pythia import jetnet_jet
from pcgen.data.store import read_pointclouds, write_pointclouds
from pcgen.data.jetfeatures import relative_jet_mass
from pcgen.metrics.sanity import applies_to


def test_generated_jet_features_are_relative_and_say_so(cli, trained_run: Path, tmp_path: Path) -> None:
    """Before: m/pT and the pT ratio (about 1) were written as `mass` and `pt`, names that hold GeV."""
    out = tmp_path / "s.h5"
    assert cli("sample", "--checkpoint", trained_run, "--n", "200", "--out", out, "--device", "cpu").exit_code == 0
    with h5py.File(out, "r") as f:
        assert json.loads(f.attrs["global_names"]) == list(RELATIVE_JET_GLOBALS)
    samples = read_pointclouds(out)
    columns = dict(zip(samples.global_names, samples.globals.T, strict=True))
    assert not {"pt", "eta", "mass"} & set(columns)
    np.testing.assert_allclose(columns["mass_over_pt"], relative_jet_mass(samples.points, samples.mask), atol=1e-5)
    np.testing.assert_array_equal(columns["num_particles"], samples.multiplicity)


def test_generated_particles_are_sorted_by_pt_rel_padding_last(cli, trained_run: Path, tmp_path: Path) -> None:
    """Before: in the generator's slot order."""
    out = tmp_path / "s.h5"
    assert cli("sample", "--checkpoint", trained_run, "--n", "200", "--out", out, "--device", "cpu").exit_code == 0
    samples = read_pointclouds(out)
    pt = np.where(samples.mask, samples.points[..., 2], -1.0)
    assert (np.diff(pt, axis=1) <= 0).all()
    assert (samples.mask[:, :-1] >= samples.mask[:, 1:]).all()  # padding last


def test_jet_features_in_gev_match_the_real_files_when_the_jet_is_known() -> None:
    """With the jet's pT and eta, generated jets get (pt, eta, mass) in GeV as real files hold them."""
    rng = np.random.default_rng(0)
    points, masks, truth = [], [], []
    for _ in range(20):
        pt, eta, phi = rng.uniform(5, 200, 12), rng.normal(1.0, 0.2, 12), rng.normal(0.5, 0.2, 12)
        p4 = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)], axis=1)
        p, m, g = jetnet_jet(p4, 30)  # massless particles: the jet mass is that of the relative coordinates
        points.append(p)
        masks.append(m)
        truth.append(g)
    points, mask, truth = np.stack(points), np.stack(masks), np.stack(truth)
    np.testing.assert_allclose(jet_features_gev(points, mask, truth[:, 0], truth[:, 1]), truth, rtol=2e-4, atol=2e-4)


def _planted_samples(reference: PointClouds) -> tuple[PointClouds, dict[str, float]]:
    """Toy jets with known faults, and the sanity fractions of their first 50 clouds."""
    jets = toy_jets(100, 30, seed=5)
    points, mask = jets.points.copy(), jets.mask
    floor = float(reference.points[..., 2][reference.mask].min())
    for i in range(10):  # 10 particles exactly at the clamp
        points[i, int(mask[i].sum()) - 1, 2] = floor
    points[10:20, 0, :2] = 0.7  # 10 particles at Delta R = 0.99
    points[20:25, :, 2] *= 1.2  # 5 jets whose pt_rel sum to 1.2
    planted = replace(jets, points=np.where(mask[..., None], points, 0.0).astype(np.float32))
    particles = int(mask[:50].sum())
    return planted, {"at_min_pt_rel": 10 / particles, "beyond_jet_radius": 10 / particles,
                     "pt_rel_sum_above_limit": 5 / 50}


def test_eval_reports_the_sanity_fractions_next_to_the_real_ones(cli, tmp_path: Path) -> None:
    """Before: none of them; the metric table alone hid particles stuck at the clamp or outside the jet."""
    real = toy_jets(200, 30, seed=6)
    gev = np.column_stack([np.full(200, 1000.0), np.zeros(200), np.full(200, 170.0), real.multiplicity])
    reference = write_pointclouds(replace(real, globals=gev.astype(np.float32), global_names=JET_GLOBALS),
                                  tmp_path / "real.h5")  # real files' names, in GeV: eval reads both kinds
    planted, expected = _planted_samples(real)
    samples = write_pointclouds(planted, tmp_path / "model.h5")
    result = cli("eval", "--samples", samples, "--reference", reference, "--n", "50", "--no-efp",
                 "--json", tmp_path / "m.json")
    assert result.exit_code == 0, result.stderr
    shown = one_line(result.stdout)
    assert "sanity of the generated jets" in shown and "generated: model.h5, real: real.h5" in shown
    sanity = json.loads((tmp_path / "m.json").read_text())["sanity"]
    for key, value in expected.items():
        assert math.isclose(sanity["rows"]["generated"][key], value), key
    floor = float(real.points[..., 2][real.mask].min())
    assert sanity["min_pt_rel"] == floor
    first = real.subset(slice(0, 50))
    at_floor = np.isclose(first.points[..., 2][first.mask], floor, rtol=1e-6, atol=0).sum()
    assert sanity["rows"]["real"] == {"at_min_pt_rel": at_floor / first.mask.sum(), "beyond_jet_radius": 0.0,
                                      "pt_rel_sum_above_limit": 0.0}


def test_the_sanity_fractions_are_for_jets_only() -> None:
    showers = PointClouds(np.ones((2, 3, 4), np.float32), np.ones((2, 3), bool), SHOWER_FEATURES)
    assert applies_to(toy_jets(5, 10)) and not applies_to(showers)
