"""Tests of the per-incident-energy-bin shower comparison (response, resolution, W1s) and its figure."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from pcgen.data.calo import SHOWER_GLOBALS
from pcgen.data.pointclouds import SHOWER_FEATURES, PointClouds
from pcgen.data.shower_sim import simulate_showers
from pcgen.metrics.energy_bin_figure import response_figure
from pcgen.metrics.energy_bins import (
    EnergyBinRow,
    compare_energy_bins,
    energy_bin_edges,
    energy_bin_json,
    energy_bin_markdown,
    incident_energies,
    with_incident_energies,
)

torch.set_num_threads(1)

EDGES = np.geomspace(1e3, 1e5, 6)
"""Five bins from 1 to 100 GeV (MeV)."""
CENTRES = np.sqrt(EDGES[:-1] * EDGES[1:])


def showers(incident: np.ndarray, hits: list[np.ndarray], max_hits: int = 6) -> PointClouds:
    """Showers with incident energies ``incident`` (MeV) and hit lists ``(k, 4)`` of ``(x, y, z, E)``,
    zero-padded to ``max_hits``."""
    points = np.zeros((len(hits), max_hits, 4), np.float32)
    mask = np.zeros((len(hits), max_hits), bool)
    for i, h in enumerate(hits):
        points[i, : len(h)] = h
        mask[i, : len(h)] = True
    globs = np.stack([np.asarray(incident, np.float32), mask.sum(axis=1)], axis=1).astype(np.float32)
    return PointClouds(points, mask, SHOWER_FEATURES, globs, SHOWER_GLOBALS, {"kind": "showers"})


def scaled_showers(incident: np.ndarray, responses: np.ndarray, layer: float = 0.5) -> PointClouds:
    """Three hits per shower in one layer, their energies summing to ``response * incident``."""
    fractions = np.array([0.5, 0.3, 0.2])
    hits = [
        np.array([[10.5, 10.5, layer, f * r * e] for f in fractions], np.float64)
        for e, r in zip(incident, responses, strict=True)
    ]
    return showers(incident, hits)


def with_garbage(clouds: PointClouds, value: float) -> PointClouds:
    """The same showers with every padded entry set to ``value``."""
    points = np.where(clouds.mask[..., None], clouds.points, np.float32(value)).astype(np.float32)
    return replace(clouds, points=points)


def as_json(rows: list[EnergyBinRow]) -> str:
    return json.dumps(energy_bin_json(rows), allow_nan=False, sort_keys=True)


@pytest.fixture(scope="module")
def photons() -> PointClouds:
    return simulate_showers(150, seed=5, max_hits=1700)


# ------------------------------------------------------------------------------------------------
# Known values
# ------------------------------------------------------------------------------------------------


def test_known_responses_and_counts_per_bin() -> None:
    per_bin = 4
    incident = np.repeat(CENTRES, per_bin)
    real = scaled_showers(incident, np.ones(len(incident)))
    fake = scaled_showers(incident[per_bin:], np.full(len(incident) - per_bin, 0.5))  # nothing in the first bin
    rows = compare_energy_bins(real, fake, edges=EDGES, min_showers=2)
    assert len(rows) == 5
    assert [r.real_count for r in rows] == [per_bin] * 5
    assert [r.fake_count for r in rows] == [0] + [per_bin] * 4
    for r in rows:
        assert r.real_response == pytest.approx(1.0, rel=1e-6)
        assert r.real_resolution == pytest.approx(0.0, abs=1e-6)
        assert r.real_hits == 3.0
    assert math.isnan(rows[0].fake_response) and math.isnan(rows[0].w1_response)  # empty side: NaN, row kept
    for r in rows[1:]:
        assert r.fake_response == pytest.approx(0.5, rel=1e-6)
        assert r.w1_response == pytest.approx(0.5, rel=1e-5)
        assert r.w1_hits == 0.0
        assert (r.low, r.high) == pytest.approx((EDGES[rows.index(r)], EDGES[rows.index(r) + 1]))


def test_known_resolution_and_errors() -> None:
    n = 10
    incident = np.full(n, CENTRES[2])
    responses = np.tile([0.9, 1.1], n // 2)
    rows = compare_energy_bins(scaled_showers(incident, responses), scaled_showers(incident, responses),
                               edges=EDGES, min_showers=2)
    row = rows[2]
    std = 0.1 * math.sqrt(n / (n - 1))
    assert row.real_response == pytest.approx(1.0, rel=1e-6)
    assert row.real_resolution == pytest.approx(std, rel=1e-5)
    assert row.real_response_error == pytest.approx(std / math.sqrt(n), rel=1e-5)
    assert row.real_resolution_error > 0
    assert [r.real_count for r in rows] == [0, 0, n, 0, 0]


def test_known_layer_and_radial_w1() -> None:
    n, energy = 4, CENTRES[0]
    incident = np.full(n, energy)
    # real: two hits 2 cells apart in layer 0 (ring 1 around their centre); fake: 0.5 cells apart in layer 1 (ring 0)
    real = showers(incident, [np.array([[9.0, 10.0, 0.5, energy / 2], [11.0, 10.0, 0.5, energy / 2]])] * n)
    fake = showers(incident, [np.array([[9.75, 10.0, 1.5, energy / 2], [10.25, 10.0, 1.5, energy / 2]])] * n)
    row = compare_energy_bins(real, fake, edges=EDGES, num_layers=2, min_showers=2)[0]
    assert row.w1_layer == pytest.approx(energy, rel=1e-6)  # layers 0 and 1 each differ by E, mean over 2
    assert row.w1_radial == pytest.approx(2 * energy / 10, rel=1e-6)  # rings 0 and 1 differ, 10 rings
    assert row.w1_response == pytest.approx(0.0, abs=1e-6)


def test_generated_energies_ten_percent_high(photons: PointClouds) -> None:
    points = photons.points.copy()
    points[..., 3] *= 1.1
    fake = replace(photons, points=points)
    rows = compare_energy_bins(photons, fake)
    assert len(rows) == 5
    for r in rows:
        assert r.real_count == r.fake_count > 0
        assert r.fake_response / r.real_response == pytest.approx(1.1, rel=1e-5)
        assert r.fake_resolution == pytest.approx(r.real_resolution, rel=1e-4)
        assert r.w1_response == pytest.approx(0.1 * r.real_response, rel=1e-4)  # W1(X, 1.1 X) = 0.1 E[X]
        assert r.w1_hits == 0.0


# ------------------------------------------------------------------------------------------------
# Identities and padding
# ------------------------------------------------------------------------------------------------


def test_identical_sets_give_zero_w1_in_every_bin(photons: PointClouds) -> None:
    rows = compare_energy_bins(photons, photons)
    assert len(rows) == 5 and sum(r.real_count for r in rows) == len(photons)
    for r in rows:
        assert (r.w1_response, r.w1_hits, r.w1_layer, r.w1_radial) == (0.0, 0.0, 0.0, 0.0)
        assert r.fake_response == r.real_response and r.fake_resolution == r.real_resolution
        assert 0.01 < r.real_response < 0.02  # calo-photons: sampling fraction 1.5 %


def test_different_sets_give_positive_w1(photons: PointClouds) -> None:
    other = simulate_showers(100, seed=6, max_hits=1700)
    rows = compare_energy_bins(photons, other)
    assert all(r.w1_response > 0 and r.w1_hits > 0 and r.w1_layer > 0 and r.w1_radial > 0 for r in rows)


@pytest.mark.parametrize("garbage", [1e6, -3e4, np.nan])
def test_padded_hits_change_nothing(photons: PointClouds, garbage: float) -> None:
    small = photons.subset(slice(0, 60))
    other = simulate_showers(60, seed=7, max_hits=1700)
    clean = compare_energy_bins(small, other, min_showers=2)
    dirty = compare_energy_bins(with_garbage(small, garbage), with_garbage(other, garbage), min_showers=2)
    assert (~small.mask).any() and (~other.mask).any()
    assert as_json(dirty) == as_json(clean)


# ------------------------------------------------------------------------------------------------
# Bins and incident energies
# ------------------------------------------------------------------------------------------------


def test_edges_log_spaced_over_real_range(photons: PointClouds) -> None:
    energies = incident_energies(photons)
    edges = energy_bin_edges(energies, 5)
    assert len(edges) == 6
    assert edges[0] == energies.min() and edges[-1] == energies.max()
    assert np.allclose(np.diff(np.log(edges)), np.log(edges[-1] / edges[0]) / 5)
    # calo-photons: 10-100 GeV, in MeV
    assert 1e4 <= energies.min() < energies.max() <= 1e5
    with pytest.raises(ValueError, match="positive"):
        energy_bin_edges(np.array([1.0, -2.0]))
    with pytest.raises(ValueError):
        compare_energy_bins(photons, photons, edges=[3.0, 2.0, 1.0])


def test_too_few_showers_give_nan_w1_not_dropped() -> None:
    incident = np.concatenate([np.full(5, CENTRES[0]), np.full(1, CENTRES[4])])
    clouds = scaled_showers(incident, np.ones(len(incident)))
    rows = compare_energy_bins(clouds, clouds, edges=EDGES, min_showers=3)
    assert len(rows) == 5
    assert rows[0].w1_response == 0.0
    last = rows[4]
    assert last.real_count == last.fake_count == 1
    assert last.real_response == pytest.approx(1.0, rel=1e-6)
    assert all(math.isnan(x) for x in (last.w1_response, last.w1_hits, last.w1_layer, last.w1_radial))
    assert math.isnan(last.real_resolution)


def test_missing_incident_energies_raise_clear_error(photons: PointClouds) -> None:
    no_column = replace(photons, globals=photons.globals[:, 1:], global_names=("num_hits",))
    with pytest.raises(ValueError, match=r"incident_energy.*\['num_hits'\]"):
        incident_energies(no_column)
    with pytest.raises(ValueError, match="incident_energy"):
        compare_energy_bins(photons, no_column)
    # generated showers of an unconditional model: the sampler writes NaN incident energies
    globs = np.stack([np.full(len(photons), np.nan), photons.multiplicity], axis=1).astype(np.float32)
    generated = replace(photons, globals=globs, global_names=SHOWER_GLOBALS)
    with pytest.raises(ValueError, match=r"NaN.*150 of 150.*\['incident_energy', 'num_hits'\]"):
        compare_energy_bins(photons, generated)
    rows = compare_energy_bins(photons, with_incident_energies(generated, incident_energies(photons)))
    assert all(r.w1_response == 0.0 for r in rows)


# ------------------------------------------------------------------------------------------------
# Outputs
# ------------------------------------------------------------------------------------------------


def test_markdown_has_one_row_per_bin(photons: PointClouds) -> None:
    rows = compare_energy_bins(photons, photons, num_bins=6)
    lines = energy_bin_markdown(rows).strip().splitlines()
    assert len(lines) == 2 + 6
    assert "(GeV)" in lines[0] and "(MeV)" in lines[0]
    assert all(line.startswith("|") and line.count("|") == lines[0].count("|") for line in lines)


def test_json_rows_are_strict_json() -> None:
    clouds = scaled_showers(np.full(3, CENTRES[1]), np.ones(3))
    rows = compare_energy_bins(clouds, clouds, edges=EDGES)  # 3 < min_showers: NaN W1s
    data = json.loads(as_json(rows))
    assert len(data) == 5 and data[1]["real_count"] == 3 and data[1]["w1_response"] is None
    assert data[1]["centre"] == pytest.approx(CENTRES[1])


def test_figure_has_two_axes_and_saves(photons: PointClouds, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows = compare_energy_bins(photons, photons.subset(slice(0, 40)), min_showers=5)
    fig = response_figure(rows, title="calo-photons")
    assert len(fig.axes) == 2
    assert fig.axes[0].get_xscale() == "log" and fig.axes[1].get_xscale() == "log"
    fig.savefig(tmp_path / "response.png")
    assert (tmp_path / "response.png").stat().st_size > 0
    with pytest.raises(ValueError):
        response_figure([])
