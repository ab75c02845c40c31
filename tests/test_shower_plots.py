"""Tests of the shower distribution figure and of the figure dispatcher."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from pcgen.data import shower_observables as obs
from pcgen.data.pointclouds import PointClouds
from pcgen.data.shower_sim import simulate_showers
from pcgen.data.observables import RADIAL_BINS
from pcgen.kinds.jets import JETS
from pcgen.kinds.showers import SHOWERS
from pcgen.plots import shower_distribution_figure


@pytest.fixture(scope="module")
def real() -> PointClouds:
    return simulate_showers(200, seed=0, max_hits=1700)


@pytest.fixture(scope="module")
def fake() -> PointClouds:
    return simulate_showers(120, seed=1, max_hits=1700)


def with_garbage(clouds: PointClouds, seed: int) -> PointClouds:
    rng = np.random.default_rng(seed)
    garbage = rng.normal(20.0, 1e3, clouds.points.shape)
    garbage[::4, ::9] = np.nan
    points = np.where(clouds.mask[..., None], clouds.points, garbage).astype(np.float32)
    return PointClouds(points, clouds.mask, clouds.feature_names)


def histograms(fig: Figure) -> list[list[np.ndarray]]:
    """The plotted values of every step patch, per axes."""
    return [[np.asarray(p.get_data().values) for p in ax.patches] for ax in fig.axes]


def test_shower_figure_axes_and_png(real, fake, tmp_path):
    fig = shower_distribution_figure(real, {"model A": fake, "model B": simulate_showers(80, seed=2)}, bins=30)
    assert len(fig.axes) == 12  # six panels, each with a ratio panel
    mains = fig.axes[::2]
    assert mains[0].get_xscale() == "log" and mains[0].get_yscale() == "log"  # hit energy
    assert [t.get_text() for t in mains[0].get_legend().get_texts()] == ["Real", "model A", "model B"]
    assert all(len(v) == 30 for ax in histograms(fig)[::2][:4] for v in ax)
    path = tmp_path / "showers.png"
    fig.savefig(path, dpi=60)
    assert path.stat().st_size > 10_000


def test_profiles_are_mean_energies(real, fake):
    fig = shower_distribution_figure(real, {"gen": fake})
    layer_panel, radial_panel = histograms(fig)[8], histograms(fig)[10]
    np.testing.assert_allclose(layer_panel[0], obs.layer_energy(real.points, real.mask, 30).mean(0), rtol=1e-6)
    np.testing.assert_allclose(layer_panel[1], obs.layer_energy(fake.points, fake.mask, 30).mean(0), rtol=1e-6)
    radial = obs.radial_profile(fake.points, fake.mask, RADIAL_BINS).mean(0)
    np.testing.assert_allclose(radial_panel[1], radial, rtol=1e-6)
    ratio = histograms(fig)[9][0]
    np.testing.assert_allclose(ratio, layer_panel[1] / layer_panel[0], rtol=1e-6)


def test_padded_slots_do_not_change_the_figure(real, fake):
    clean = shower_distribution_figure(real, {"gen": fake})
    dirty = shower_distribution_figure(with_garbage(real, 1), {"gen": with_garbage(fake, 2)})
    for a, b in zip(histograms(clean), histograms(dirty), strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_each_kind_draws_its_own_figure(real, fake):
    assert len(SHOWERS.figure(real, {"gen": fake}, 50).axes) == 12
    rng = np.random.default_rng(0)
    mask = np.arange(10)[None] < rng.integers(2, 11, 50)[:, None]
    jets = PointClouds((rng.normal(0, 0.1, (50, 10, 3)) * mask[..., None]).astype(np.float32), mask)
    assert len(JETS.figure(jets, {"gen": jets}, 50).axes) == 8
