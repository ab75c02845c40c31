"""The evaluation protocol and the metric table.

:func:`evaluate` compares generated jets with held-out real jets and, as the papers' "Truth" row,
real jets with a second, independent set of real jets (``reference``): the truth row is the floor a
perfect model would reach with this many jets. Use :func:`split_reference` to cut the held-out set
into two disjoint halves (``real``, ``reference``); the model is then compared with ``real``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pcgen.config import EvalConfig
from pcgen.data.pointclouds import PointClouds
from pcgen.metrics.jet_metrics import EFP_METRICS
from pcgen.metrics.numbers import NAN_NOTE, format_entry
from pcgen.metrics.shower_metrics import SHOWER_LABELS, SHOWER_METRICS
from pcgen.specs import MetricSpec

TRUTH_ROW = "truth"
"""Row name of the real-vs-reference baseline."""
W1_METRICS = ("w1m", "w1p", "w1efp", *(m.name for m in SHOWER_METRICS))
"""Metrics whose error is the std over ``eval.num_batches`` bootstrap subsamples."""
LABELS = {"w1m": "W1M", "w1p": "W1P pTrel", "w1efp": "W1EFP", "fpd": "FPD", "kpd": "KPD", **SHOWER_LABELS}
"""Column titles of the known metrics; other metrics are titled by their upper-cased name."""

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")

Entry = tuple[float, float]


# ------------------------------------------------------------------------------------------------
# Formatting
# ------------------------------------------------------------------------------------------------


def unit_label(scale: float) -> str:
    """The unit a value multiplied by ``scale`` is in: 1e3 -> "×10⁻³", 1 -> ""."""
    if scale == 1:
        return ""
    exponent = math.log10(scale)
    if abs(exponent - round(exponent)) < 1e-9:
        return "×10" + str(-round(exponent)).translate(_SUPERSCRIPT)
    return f"×{1 / scale:.3g}"


# ------------------------------------------------------------------------------------------------
# The table
# ------------------------------------------------------------------------------------------------


@dataclass
class MetricTable:
    """Metric values per row (e.g. "truth", a model name): ``rows[row][metric] = (value, error)``.

    Values are stored in natural units; ``scales[metric]`` multiplies them for display. ``columns``
    are the headline metrics in display order; rows may hold more entries (e.g. W1P per feature,
    ``"w1p_eta_rel"``), listed by :attr:`all_columns`.
    """

    rows: dict[str, dict[str, Entry]] = field(default_factory=dict)
    scales: dict[str, float] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def all_columns(self) -> list[str]:
        """Headline columns first, then every other metric found in the rows."""
        extra = [m for row in self.rows.values() for m in row if m not in self.columns]
        return self.columns + list(dict.fromkeys(extra))

    def header(self, metric: str) -> str:
        """Column title with its unit, e.g. ``"W1M (×10⁻³)"``."""
        label = self.labels.get(metric, LABELS.get(metric, metric.upper()))
        unit = unit_label(self.scales.get(metric, 1.0))
        return f"{label} ({unit})" if unit else label

    def cell(self, row: str, metric: str) -> str:
        """The scaled ``"value ± error"`` text of one entry ("—" when absent)."""
        entry = self.rows.get(row, {}).get(metric)
        if entry is None:
            return "—"
        scale = self.scales.get(metric, 1.0)
        return format_entry(entry[0] * scale, entry[1] * scale)

    def to_markdown(self, columns: list[str] | None = None) -> str:
        """A GitHub-flavoured markdown table of the scaled values."""
        columns = self.columns if columns is None else columns
        lines = [
            "| " + " | ".join(["Model", *(self.header(m) for m in columns)]) + " |",
            "|" + "---|" * (len(columns) + 1),
        ]
        lines += ["| " + " | ".join([row, *(self.cell(row, m) for m in columns)]) + " |" for row in self.rows]
        if self.has_nan(columns):
            lines += ["", NAN_NOTE]
        return "\n".join(lines)

    def has_nan(self, columns: list[str]) -> bool:
        """Whether a shown cell holds a ``nan`` (then the table carries :data:`NAN_NOTE`)."""
        return any("nan" in self.cell(row, m) for row in self.rows for m in columns)

    def to_rich(self, columns: list[str] | None = None, title: str | None = None) -> Table:
        """The same table for a rich console."""
        columns = self.columns if columns is None else columns
        table = Table(title=title, caption=NAN_NOTE if self.has_nan(columns) else None)
        table.add_column("Model", style="bold")
        for metric in columns:
            table.add_column(self.header(metric), justify="right")
        for row in self.rows:
            table.add_row(row, *(self.cell(row, m) for m in columns))
        return table

    def add_rows(self, other: MetricTable) -> MetricTable:
        """Add ``other``'s rows that this table lacks (e.g. another model's; a shared truth row is kept once)."""
        for name, row in other.rows.items():
            self.rows.setdefault(name, row)
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (non-finite numbers become None)."""
        rows = {r: {m: [_json_float(v), _json_float(e)] for m, (v, e) in row.items()} for r, row in self.rows.items()}
        return {
            "rows": rows,
            "scales": dict(self.scales),
            "columns": list(self.columns),
            "labels": dict(self.labels),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetricTable:
        """Inverse of :meth:`to_dict`."""
        rows = {r: {m: (_from_json(v), _from_json(e)) for m, (v, e) in row.items()} for r, row in data["rows"].items()}
        return cls(
            rows=rows,
            scales={m: float(s) for m, s in data.get("scales", {}).items()},
            columns=list(data.get("columns", [])),
            labels=dict(data.get("labels", {})),
        )


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _from_json(x: float | None) -> float:
    return math.nan if x is None else float(x)


# ------------------------------------------------------------------------------------------------
# The protocol
# ------------------------------------------------------------------------------------------------


def split_reference(heldout: PointClouds, seed: int = 0) -> tuple[PointClouds, PointClouds]:
    """Two disjoint random halves ``(real, reference)`` of a held-out set, for the truth row."""
    return heldout.split(0.5, seed)


def metrics_for_kind(registry: Any, kind: str) -> list[MetricSpec]:
    """The registered metrics that apply to clouds of ``kind`` ("jets", "showers"), in registration order."""
    return [m for m in registry.metrics.values() if m.kind == kind]


def training_metrics(registry: Any, kind: str, names: list[str] | None) -> list[MetricSpec]:
    """Metrics of in-training evaluations: ``names`` (``eval.during_training``), or those of ``kind``
    marked ``during_training``; a named metric of another kind is an error."""
    specs = metrics_for_kind(registry, kind)
    if names is None:
        return [m for m in specs if m.during_training]
    by_name = {m.name: m for m in specs}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"eval.during_training names {unknown}, not metrics of {kind}; available: {sorted(by_name)}")
    return [by_name[n] for n in names]


def select_specs(specs: list[MetricSpec], config: EvalConfig) -> list[MetricSpec]:
    """The specs named in ``config.metrics`` (all if None), without EFP metrics if ``config.efp`` is False."""
    by_name = {s.name: s for s in specs}
    if config.metrics is not None:
        unknown = [n for n in config.metrics if n not in by_name]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown} in eval.metrics; available: {sorted(by_name)}")
        specs = [by_name[n] for n in config.metrics]
    return [s for s in specs if config.efp or s.name not in EFP_METRICS]


def metric_options(config: EvalConfig) -> dict[str, dict[str, Any]]:
    """Factory options per metric name implied by the config (bootstrap batches of the W1s)."""
    return {name: {"num_batches": config.num_batches} for name in W1_METRICS}


def evaluate(
    real: PointClouds,
    fake: PointClouds,
    reference: PointClouds | None,
    specs: list[MetricSpec],
    config: EvalConfig,
    progress: bool = True,
    *,
    model_name: str = "model",
    options: dict[str, dict[str, Any]] | None = None,
) -> MetricTable:
    """Metric table with a ``"truth"`` row (``real`` vs ``reference``, if given) and a ``model_name``
    row (``real`` vs ``fake``).

    ``real`` and ``reference`` must be independent sets of real jets (e.g. the two halves of the
    held-out set, see :func:`split_reference`). Each set is cut to ``config.num_jets`` jets (a seeded
    random subset) if larger. ``options[name]`` overrides factory keywords of one metric.
    """
    chosen = select_specs(specs, config)
    opts = metric_options(config)
    for name, extra in (options or {}).items():
        opts[name] = {**opts.get(name, {}), **extra}
    real, fake = _limit(real, config.num_jets), _limit(fake, config.num_jets)
    pairs = {TRUTH_ROW: _limit(reference, config.num_jets)} if reference is not None else {}
    pairs[model_name] = fake
    table = MetricTable(
        rows={row: {} for row in pairs},
        scales={s.name: s.scale for s in chosen},
        columns=[s.name for s in chosen],
        labels={s.name: s.label for s in chosen if s.label},
    )
    with _progress_bar(progress, total=len(chosen) * len(pairs)) as advance:
        for row, other in pairs.items():
            for spec in chosen:
                advance(f"{row}: {spec.name}")
                entries = compute_metric(spec, real, other, opts.get(spec.name, {}))
                table.rows[row].update(entries)
                _describe_parts(table, spec, entries)
        advance("done")
    return table


def compute_metrics(
    real: PointClouds, fake: PointClouds, specs: list[MetricSpec], config: EvalConfig
) -> dict[str, float]:
    """Headline values ``{name: value}`` of a few metrics (no table, no truth row): for in-training checks."""
    opts = metric_options(config)
    return {s.name: compute_metric(s, real, fake, opts.get(s.name, {}))[s.name][0] for s in specs}


def compute_metric(spec: MetricSpec, real: PointClouds, fake: PointClouds, options: dict[str, Any]) -> dict[str, Entry]:
    """``{name: (value, error)}`` of one metric, plus ``{name}_{part}`` entries for a metric that
    exposes parts after ``compute()`` (``per_feature``, as W1P does)."""
    metric = spec.factory(**options)
    metric.update(*_tensors(real), *_tensors(fake))
    value, error = (float(x) for x in metric.compute())
    result = {spec.name: (value, error)}
    for part, (v, e) in getattr(metric, "per_feature", {}).items():
        result[f"{spec.name}_{part}"] = (float(v), float(e))
    return result


def _describe_parts(table: MetricTable, spec: MetricSpec, entries: dict[str, Entry]) -> None:
    """Scale and title of the extra entries of a metric (e.g. "w1p_eta_rel" -> "W1P eta_rel")."""
    for metric in entries:
        if metric != spec.name:
            table.scales.setdefault(metric, spec.scale)
        if metric != spec.name and metric not in LABELS:
            table.labels.setdefault(metric, f"{spec.name.upper()} {metric.removeprefix(spec.name + '_')}")


def _tensors(clouds: PointClouds) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.asarray(clouds.points, np.float32)), torch.from_numpy(clouds.mask.astype(bool))


def _limit(clouds: PointClouds, num: int, seed: int = 0) -> PointClouds:
    """At most ``num`` clouds: a seeded random subset, in the original order."""
    if len(clouds) <= num:
        return clouds
    return clouds.subset(np.sort(np.random.default_rng(seed).permutation(len(clouds))[:num]))


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Any]:
    """Yields ``advance(description)``: marks the previous step done and names the next."""
    text = TextColumn("[bold]evaluating[/] {task.description}")
    with Progress(text, BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=not enabled) as bar:
        task = bar.add_task("", total=total)
        started = [False]

        def advance(description: str) -> None:
            bar.update(task, description=description, advance=1 if started[0] else 0)
            started[0] = True

        yield advance
