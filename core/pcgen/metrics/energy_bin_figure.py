"""The response figure of a per-incident-energy-bin comparison (:mod:`pcgen.metrics.energy_bins`).

Built with the Agg canvas (no display, no pyplot state), as :mod:`pcgen.plots` does: save it with
``fig.savefig(path)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter, NullFormatter

from pcgen.metrics.energy_bins import MEV_PER_GEV, EnergyBinRow

REAL_COLOR = "0.25"
FAKE_COLOR = "tab:red"
OFFSET = 1.03
"""Real points are drawn at the bin centre / OFFSET, generated ones at centre * OFFSET (log x), so
that their error bars do not hide each other."""


def _points(
    ax: Axes, rows: Sequence[EnergyBinRow], value: str, error: str, label: str, color: str, marker: str, shift: float
) -> None:
    """One side (``real`` or ``fake`` fields ``value`` and ``error``) as points with error bars; the
    horizontal bars span the bin."""
    centre = np.array([r.centre for r in rows]) / MEV_PER_GEV
    low = np.array([r.low for r in rows]) / MEV_PER_GEV
    high = np.array([r.high for r in rows]) / MEV_PER_GEV
    y = np.array([getattr(r, value) for r in rows], np.float64)
    yerr = np.nan_to_num(np.array([getattr(r, error) for r in rows], np.float64), nan=0.0)
    x = centre * shift
    ax.errorbar(
        x, y, yerr=yerr, xerr=np.clip(np.stack([x - low, high - x]), 0.0, None), fmt=marker, color=color, capsize=2,
        markersize=5, linewidth=1.2, label=label,
    )


def response_figure(rows: Sequence[EnergyBinRow], title: str = "") -> Figure:
    """Mean response ``E_sum / E_inc`` (± its standard error) against the incident energy, real and
    generated, over a panel of the resolution (std / mean of the response, ± its error): 2 axes, log
    x axis in GeV, horizontal bars spanning each bin. Bins without a value leave a gap."""
    if not rows:
        raise ValueError("response_figure needs at least one energy bin")
    fig = Figure(figsize=(6.4, 5.6), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 1, height_ratios=(3, 2))
    main = fig.add_subplot(grid[0])
    lower = fig.add_subplot(grid[1], sharex=main)
    main.tick_params(labelbottom=False)
    for ax, field in ((main, "response"), (lower, "resolution")):
        _points(ax, rows, f"real_{field}", f"real_{field}_error", "Real", REAL_COLOR, "o", 1 / OFFSET)
        _points(ax, rows, f"fake_{field}", f"fake_{field}_error", "Generated", FAKE_COLOR, "s", OFFSET)
        ax.grid(alpha=0.3, which="both")
    main.set_xscale("log")
    main.set_xlim(rows[0].low / MEV_PER_GEV, rows[-1].high / MEV_PER_GEV)
    main.set_ylabel(r"$\langle E_{\mathrm{sum}} / E_{\mathrm{inc}} \rangle$")
    lower.set_ylabel(r"$\sigma / \langle E_{\mathrm{sum}} / E_{\mathrm{inc}} \rangle$")
    lower.xaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    decades = np.log10(rows[-1].high / rows[0].low)  # plain numbers at the minor ticks of a narrow range only
    lower.xaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False) if decades <= 1.5 else NullFormatter())
    lower.set_xlabel(r"Incident energy $E_{\mathrm{inc}}$ (GeV)")
    main.legend(loc="best", frameon=False)
    if title:
        main.set_title(title)
    return fig
