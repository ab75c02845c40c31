"""Distribution figures: real vs generated jets or showers, each panel with a generated/real ratio below.

Figures are built with the Agg canvas (no display, no pyplot state): save them with
``fig.savefig(path)``; ``plt.close(fig)`` is harmless but not needed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pcgen.data import shower_observables as obs
from pcgen.data.observables import energy_profiles
from pcgen.data.pointclouds import PointClouds
from pcgen.metrics.evaluate import TRUTH_ROW, MetricTable
from pcgen.data.jetfeatures import relative_jet_mass
from pcgen.metrics.shower_metrics import E_INDEX, infer_num_layers, prepare_showers

REAL_STYLE = {"color": "0.55", "alpha": 0.45, "label": "Real"}
COLORS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:cyan")
RATIO_LIMITS = (0.0, 2.0)


@dataclass(frozen=True)
class Panel:
    """One distribution: its axis title and whether its y axis is logarithmic."""

    xlabel: str
    log: bool = False
    logx: bool = False
    """Logarithmic x axis (with log-spaced bins)."""
    ylabel: str = "Density"


PANELS = (
    Panel(r"Particle $\eta^{\mathrm{rel}}$"),
    Panel(r"Particle $\phi^{\mathrm{rel}}$"),
    Panel(r"Particle $p_T^{\mathrm{rel}}$", log=True),
    Panel(r"Jet $m/p_T$ (relative mass)"),
)


def _particles(clouds: PointClouds, index: int) -> np.ndarray:
    """One feature of all real (unmasked) particles, flattened."""
    return np.asarray(clouds.points[..., index][clouds.mask.astype(bool)], np.float64)


def _distributions(clouds: PointClouds) -> list[np.ndarray]:
    """The four plotted samples: eta_rel, phi_rel, pt_rel of particles and the relative jet mass."""
    return [_particles(clouds, i) for i in range(3)] + [relative_jet_mass(clouds.points[..., :3], clouds.mask)]


def _edges(real: np.ndarray, bins: int, log: bool) -> np.ndarray:
    """Common bin edges from the real sample (0.1-99.9 % quantiles; from the minimum for log panels)."""
    finite = real[np.isfinite(real)]
    if finite.size == 0:
        return np.linspace(0.0, 1.0, bins + 1)
    low, high = np.quantile(finite, [0.0 if log else 0.001, 1.0 if log else 0.999])
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1)


def _log_edges(real: np.ndarray, bins: int) -> np.ndarray:
    """Log-spaced bin edges over the positive finite values of the real sample."""
    positive = real[np.isfinite(real) & (real > 0)]
    if positive.size == 0:
        return np.geomspace(1e-3, 1.0, bins + 1)
    low, high = positive.min(), positive.max()
    if high <= low:
        low, high = low / 2, high * 2
    return np.geomspace(low, high, bins + 1)


def _density(sample: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Unit-area density over ``edges``; values outside them count in the first or last bin
    (under- and overflow), so a generated sample far off the real range shows up at the edges."""
    sample = np.clip(sample[np.isfinite(sample)], edges[0], edges[-1])
    counts, _ = np.histogram(sample, bins=edges)
    total = counts.sum()
    return counts / (total * np.diff(edges)) if total else counts.astype(float)


def _ratio_axes(fig: Figure, grid: object, column: int, row: int = 0) -> tuple[Axes, Axes]:
    main = fig.add_subplot(grid[2 * row, column])  # type: ignore[index]
    ratio = fig.add_subplot(grid[2 * row + 1, column], sharex=main)  # type: ignore[index]
    main.tick_params(labelbottom=False)
    return main, ratio


def _draw(
    main: Axes, ratio: Axes, real: np.ndarray, fakes: dict[str, np.ndarray], edges: np.ndarray, panel: Panel
) -> None:
    """Real as a filled histogram, each generated sample as a step line, ratios below."""
    _draw_heights(
        main, ratio, _density(real, edges), {name: _density(s, edges) for name, s in fakes.items()}, edges, panel
    )


def _draw_heights(
    main: Axes, ratio: Axes, real: np.ndarray, fakes: dict[str, np.ndarray], edges: np.ndarray, panel: Panel
) -> None:
    """Real bin heights filled, each generated set's as a step line, generated/real ratios below."""
    main.stairs(real, edges, fill=True, **REAL_STYLE)
    for (name, heights), color in zip(fakes.items(), itertools.cycle(COLORS)):
        main.stairs(heights, edges, color=color, linewidth=1.5, label=name)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio.stairs(np.where(real > 0, heights / real, np.nan), edges, color=color, linewidth=1.2)
    if panel.log:
        main.set_yscale("log")
    if panel.logx:
        main.set_xscale("log")
    main.set_ylabel(panel.ylabel)
    ratio.axhline(1.0, color="0.3", linestyle="--", linewidth=0.8)
    ratio.set_ylim(*RATIO_LIMITS)
    ratio.set_ylabel("Gen / Real")
    ratio.set_xlabel(panel.xlabel)
    ratio.set_xlim(edges[0], edges[-1])


def _figure(columns: int, rows: int = 1) -> tuple[Figure, object]:
    fig = Figure(figsize=(4.2 * columns, 4.6 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2 * rows, columns, height_ratios=(3, 1) * rows)
    return fig, grid


def distribution_figure(real: PointClouds, fakes: dict[str, PointClouds], bins: int = 50) -> Figure:
    """Four panels (eta_rel, phi_rel, pt_rel of the real particles; jet m/pT), each over a
    generated/real ratio panel: 8 axes. Masked particles are excluded; histograms are normalised
    to unit area so that samples of different sizes compare."""
    fig, grid = _figure(len(PANELS))
    real_samples = _distributions(real)
    fake_samples = {name: _distributions(clouds) for name, clouds in fakes.items()}
    for column, panel in enumerate(PANELS):
        main, ratio = _ratio_axes(fig, grid, column)
        edges = _edges(real_samples[column], bins, panel.log)
        _draw(main, ratio, real_samples[column], {n: s[column] for n, s in fake_samples.items()}, edges, panel)
    fig.axes[0].legend(loc="best", frameon=False)
    return fig


def multiplicity_figure(real: PointClouds, fakes: dict[str, PointClouds]) -> Figure:
    """Histogram of the number of particles per jet (one bin per integer), with a ratio panel."""
    fig, grid = _figure(1)
    counts = np.concatenate([real.multiplicity, *(c.multiplicity for c in fakes.values())])
    low, high = (int(counts.min()), int(counts.max())) if counts.size else (0, real.max_particles)
    edges = np.arange(low - 0.5, high + 1.5)
    main, ratio = _ratio_axes(fig, grid, 0)
    samples = {name: clouds.multiplicity.astype(float) for name, clouds in fakes.items()}
    _draw(main, ratio, real.multiplicity.astype(float), samples, edges, Panel("Particles per jet"))
    main.legend(loc="best", frameon=False)
    return fig


SHOWER_DISTRIBUTIONS = (
    Panel("Hit energy (MeV)", log=True, logx=True),
    Panel("Energy sum per shower (MeV)"),
    Panel("Hits per shower"),
    Panel("Centre of gravity z (layer)"),
)
"""Distribution panels of the shower figure (samples normalised to unit area)."""
SHOWER_PROFILES = (
    Panel("Layer", log=True, ylabel="Mean energy (MeV)"),
    Panel("Radius from the centre of gravity (cells)", log=True, ylabel="Mean energy (MeV)"),
)
"""Profile panels of the shower figure: mean energy per layer and per radial ring."""
SHOWER_PROFILE_KEYS = ("layer_energy", "radial_energy")
"""The :func:`pcgen.data.observables.energy_profiles` drawn in the :data:`SHOWER_PROFILES` panels."""
SHOWER_COLUMNS = 3


def _shower_distributions(points: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """The samples of :data:`SHOWER_DISTRIBUTIONS` of zero-padded showers: hit energies, energy
    sum, hits and z centre of gravity."""
    return [
        points[..., E_INDEX][mask],
        obs.energy_sum(points, mask),
        obs.num_hits(points, mask).astype(np.float64),
        obs.centre_of_gravity(points, mask)[:, 2],
    ]


def shower_distribution_figure(real: PointClouds, fakes: dict[str, PointClouds], bins: int = 50) -> Figure:
    """Six panels in two rows, each over a generated/real ratio panel (12 axes).

    Distributions, normalised to unit area: hit energy (log-spaced bins), energy sum and hits per
    shower, z centre of gravity. Profiles: the mean energy per layer (``floor(z)``, over the layers
    of the real showers) and per ring one cell wide around each shower's centre of gravity (the last
    ring collects everything beyond). Showers have the features ``(x, y, z, E)``; masked hits are
    excluded.
    """
    real_points, real_mask = prepare_showers(real.points, real.mask)
    fake_sets = {name: prepare_showers(clouds.points, clouds.mask) for name, clouds in fakes.items()}
    num_layers = infer_num_layers(real_points, real_mask)
    fig, grid = _figure(SHOWER_COLUMNS, rows=2)
    axes = [
        _ratio_axes(fig, grid, i % SHOWER_COLUMNS, row=i // SHOWER_COLUMNS)
        for i in range(len(SHOWER_DISTRIBUTIONS) + len(SHOWER_PROFILES))
    ]

    real_samples = _shower_distributions(real_points, real_mask)
    fake_samples = {name: _shower_distributions(*showers) for name, showers in fake_sets.items()}
    for index, panel in enumerate(SHOWER_DISTRIBUTIONS):
        sample = real_samples[index]
        edges = _log_edges(sample, bins) if panel.logx else _edges(sample, bins, panel.log)
        _draw(*axes[index], sample, {n: s[index] for n, s in fake_samples.items()}, edges, panel)

    real_profiles = energy_profiles(real_points, real_mask, num_layers)
    fake_profiles = {name: energy_profiles(*showers, num_layers) for name, showers in fake_sets.items()}
    for index, (panel, key) in enumerate(zip(SHOWER_PROFILES, SHOWER_PROFILE_KEYS, strict=True)):
        main, ratio = axes[len(SHOWER_DISTRIBUTIONS) + index]
        real_profile = real_profiles[key]
        _draw_heights(main, ratio, real_profile.counts, {n: p[key].counts for n, p in fake_profiles.items()},
                      real_profile.edges, panel)
    fig.axes[0].legend(loc="best", frameon=False)
    return fig


LEADERBOARD_PANELS = (
    Panel(r"Jet $m/p_T$ (relative mass)"),
    Panel(r"Particle $p_T^{\mathrm{rel}}$", log=True),
    Panel("Particles per jet"),
)


def leaderboard_figure(real: PointClouds, fakes: dict[str, PointClouds], bins: int = 50) -> Figure:
    """Every model's jet m/pT, particle pT_rel and multiplicity against the real jets, with ratio panels."""
    fig, grid = _figure(len(LEADERBOARD_PANELS))
    samples = [
        (relative_jet_mass(real.points[..., :3], real.mask),
         {n: relative_jet_mass(c.points[..., :3], c.mask) for n, c in fakes.items()}),
        (_particles(real, 2), {n: _particles(c, 2) for n, c in fakes.items()}),
        (real.multiplicity.astype(float), {n: c.multiplicity.astype(float) for n, c in fakes.items()}),
    ]
    for column, (panel, (real_sample, fake_samples)) in enumerate(zip(LEADERBOARD_PANELS, samples, strict=True)):
        main, ratio = _ratio_axes(fig, grid, column)
        if column == 2:
            counts = np.concatenate([real_sample, *fake_samples.values()])
            edges = np.arange(int(counts.min()) - 0.5, int(counts.max()) + 1.5)
        else:
            edges = _edges(real_sample, bins, panel.log)
        _draw(main, ratio, real_sample, fake_samples, edges, panel)
    fig.axes[0].legend(loc="best", frameon=False, fontsize="small")
    return fig


def speed_quality_figure(table: MetricTable, us_per_jet: dict[str, float], metric: str = "w1m") -> Figure:
    """Each model's ``metric`` (mean ± std) against its sampling time per jet, with the truth row as a band."""
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    scale = table.scales.get(metric, 1.0)
    for (name, us), color in zip(us_per_jet.items(), itertools.cycle(COLORS)):
        value, error = table.rows[name][metric]
        ax.errorbar(us, value * scale, yerr=error * scale, fmt="o", color=color, capsize=3, label=name)
    if TRUTH_ROW in table.rows:
        value, error = table.rows[TRUTH_ROW][metric]
        ax.axhspan((value - error) * scale, (value + error) * scale, color="0.7", alpha=0.5, label="truth (real vs real)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sampling time (µs per jet, this machine)")
    ax.set_ylabel(table.header(metric))
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", frameon=False, fontsize="small")
    return fig
