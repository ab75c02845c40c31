"""Tests of the distribution figures."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from pcgen.data.pointclouds import PointClouds
from pcgen.plots import distribution_figure, multiplicity_figure

N = 30


def make_jets(num: int, seed: int, eta_scale: float = 1.0, garbage: bool = False) -> PointClouds:
    """Physical-looking jets with variable multiplicity; optional garbage in the padded slots."""
    rng = np.random.default_rng(seed)
    mask = np.arange(N)[None] < rng.integers(5, N + 1, num)[:, None]
    pt = np.sort(rng.exponential(1.0, (num, N)), axis=1)[:, ::-1]
    pt = np.where(mask, pt, 0.0)
    pt /= pt.sum(1, keepdims=True)
    eta, phi = rng.normal(0, 0.1 * eta_scale, (2, num, N))
    points = np.stack([eta, phi, pt], -1) * mask[..., None]
    if garbage:
        points = np.where(mask[..., None], points, rng.normal(4.0, 9.0, points.shape))
    return PointClouds(points.astype(np.float32), mask)


@pytest.fixture(scope="module")
def real() -> PointClouds:
    return make_jets(800, seed=0)


def histograms(fig: Figure) -> list[list[np.ndarray]]:
    """The plotted values of every step patch, per axes."""
    return [[np.asarray(p.get_data().values) for p in ax.patches] for ax in fig.axes]


def test_distribution_figure_axes_and_png(real, tmp_path):
    fakes = {"model A": make_jets(600, seed=1, eta_scale=1.2), "model B": make_jets(500, seed=2)}
    fig = distribution_figure(real, fakes, bins=30)
    assert len(fig.axes) == 8  # four distributions, each with a ratio panel
    assert fig.axes[4].get_yscale() == "log"  # pt_rel
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["Real", "model A", "model B"]
    assert all(len(v) == 30 for ax in histograms(fig)[::2] for v in ax)
    path = tmp_path / "distributions.png"
    fig.savefig(path)
    assert path.stat().st_size > 10_000


def test_padded_slots_do_not_change_the_figure(real):
    clean = distribution_figure(real, {"gen": make_jets(300, seed=3)})
    dirty = distribution_figure(make_jets(800, seed=0, garbage=True), {"gen": make_jets(300, seed=3, garbage=True)})
    for a, b in zip(histograms(clean), histograms(dirty), strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_multiplicity_figure(real, tmp_path):
    fig = multiplicity_figure(real, {"gen": make_jets(400, seed=4)})
    assert len(fig.axes) == 2
    assert fig.axes[0].patches[0].get_data().values.sum() == pytest.approx(1.0)  # unit-width bins
    path = tmp_path / "multiplicity.png"
    fig.savefig(path)
    assert path.stat().st_size > 1_000


def test_empty_generated_set_does_not_crash(real, tmp_path):
    empty = PointClouds(np.zeros((0, N, 3), np.float32), np.zeros((0, N), bool))
    fig = distribution_figure(real, {"empty": empty})
    fig.savefig(tmp_path / "empty.png")


def test_values_beyond_the_real_range_are_drawn_in_the_edge_bins(real):
    far = make_jets(400, seed=5)
    far.points[..., 0] = np.where(far.mask, far.points[..., 0] + 50.0, 0.0)  # every eta_rel far above the real range
    fig = distribution_figure(real, {"gen": far}, bins=30)
    generated = histograms(fig)[0][1]  # eta_rel panel: [real, gen]
    assert generated[-1] > 0 and generated[:-1].sum() == 0
    edges = np.asarray(fig.axes[0].patches[1].get_data().edges)
    np.testing.assert_allclose((generated * np.diff(edges)).sum(), 1.0)
