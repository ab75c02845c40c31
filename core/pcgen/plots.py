"""Distribution figures: real vs generated jets, each panel with a generated/real ratio below.

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

from pcgen.data.pointclouds import PointClouds
from pcgen.metrics.jet_metrics import relative_jet_mass

REAL_STYLE = {"color": "0.55", "alpha": 0.45, "label": "Real"}
COLORS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:cyan")
RATIO_LIMITS = (0.0, 2.0)


@dataclass(frozen=True)
class Panel:
    """One distribution: its axis title and whether its y axis is logarithmic."""

    xlabel: str
    log: bool = False


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


def _density(sample: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts, _ = np.histogram(sample, bins=edges)
    total = counts.sum()
    return counts / (total * np.diff(edges)) if total else counts.astype(float)


def _ratio_axes(fig: Figure, grid: object, column: int) -> tuple[Axes, Axes]:
    main = fig.add_subplot(grid[0, column])  # type: ignore[index]
    ratio = fig.add_subplot(grid[1, column], sharex=main)  # type: ignore[index]
    main.tick_params(labelbottom=False)
    return main, ratio


def _draw(
    main: Axes, ratio: Axes, real: np.ndarray, fakes: dict[str, np.ndarray], edges: np.ndarray, panel: Panel
) -> None:
    """Real as a filled histogram, each generated sample as a step line, ratios below."""
    reference = _density(real, edges)
    main.stairs(reference, edges, fill=True, **REAL_STYLE)
    for (name, sample), color in zip(fakes.items(), itertools.cycle(COLORS)):
        density = _density(sample, edges)
        main.stairs(density, edges, color=color, linewidth=1.5, label=name)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio.stairs(np.where(reference > 0, density / reference, np.nan), edges, color=color, linewidth=1.2)
    if panel.log:
        main.set_yscale("log")
    main.set_ylabel("Density")
    ratio.axhline(1.0, color="0.3", linestyle="--", linewidth=0.8)
    ratio.set_ylim(*RATIO_LIMITS)
    ratio.set_ylabel("Gen / Real")
    ratio.set_xlabel(panel.xlabel)
    ratio.set_xlim(edges[0], edges[-1])


def _figure(columns: int) -> tuple[Figure, object]:
    fig = Figure(figsize=(4.2 * columns, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, columns, height_ratios=(3, 1))
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
