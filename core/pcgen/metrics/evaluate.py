"""The evaluation protocol and the metric table.

:func:`evaluate` compares generated jets with held-out real jets and, as the papers' "Truth" row,
real jets with a second, independent set of real jets (``reference``): the truth row is the floor a
perfect model would reach with this many jets. Every row uses the same number of jets (recorded in
the table). Use :func:`split_reference` to cut the held-out set into two disjoint halves (``real``,
``reference``); the model is then compared with ``real``. FPD and KPD normalise the EFPs with one
:class:`~pcgen.metrics.distances.EFPNormalisation` for all rows (pass the training split's, see
:func:`efp_normalisation`; without one it is measured on ``real``).
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
from pcgen.metrics.distances import EFPNormalisation
from pcgen.metrics.jet_metrics import JET_METRICS, jet_efps, prepare_jets
from pcgen.metrics.numbers import NAN_NOTE, format_entry
from pcgen.metrics.shower_metrics import SHOWER_LABELS, SHOWER_METRICS
from pcgen.specs import MetricSpec

TRUTH_ROW = "truth"
"""Row name of the real-vs-reference baseline."""
LABELS = {**{m.name: m.label for m in (*JET_METRICS, *SHOWER_METRICS) if m.label}, **SHOWER_LABELS}
"""Column titles of the core's metrics (and W1CoG's per-axis entries), for tables read back from
metrics.json; a table made here takes them from its specs, other metrics by their upper-cased name."""

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
    ``"w1p_eta_rel"``), listed by :attr:`all_columns`. ``counts[row]`` is ``(real, compared)``: how many
    clouds of each side the row used (``count_label`` names them); ``protocol`` describes how the
    values were measured (FPD/KPD protocol, batch sizes, EFP normalisation).
    """

    rows: dict[str, dict[str, Entry]] = field(default_factory=dict)
    scales: dict[str, float] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    count_label: str = "jets"
    protocol: dict[str, Any] = field(default_factory=dict)

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

    def count(self, row: str) -> str:
        """How many clouds a row used: ``"5000"`` (both sides), ``"5000 vs 3000"`` or "—"."""
        if row not in self.counts:
            return "—"
        real, other = self.counts[row]
        return f"{real}" if real == other else f"{real} vs {other}"

    def to_markdown(self, columns: list[str] | None = None) -> str:
        """A GitHub-flavoured markdown table of the scaled values, with the clouds each row used."""
        columns = self.columns if columns is None else columns
        lines = [
            "| " + " | ".join(["Model", self.count_label.capitalize(), *(self.header(m) for m in columns)]) + " |",
            "|" + "---|" * (len(columns) + 2),
        ]
        lines += [
            "| " + " | ".join([row, self.count(row), *(self.cell(row, m) for m in columns)]) + " |" for row in self.rows
        ]
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
        table.add_column(self.count_label.capitalize(), justify="right")
        for metric in columns:
            table.add_column(self.header(metric), justify="right")
        for row in self.rows:
            table.add_row(row, self.count(row), *(self.cell(row, m) for m in columns))
        return table

    def add_rows(self, other: MetricTable) -> MetricTable:
        """Add ``other``'s rows that this table lacks (e.g. another model's; a shared truth row is kept once)."""
        for name, row in other.rows.items():
            if name not in self.rows:
                self.rows[name] = row
                if name in other.counts:
                    self.counts[name] = other.counts[name]
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (non-finite numbers become None)."""
        rows = {r: {m: [_json_float(v), _json_float(e)] for m, (v, e) in row.items()} for r, row in self.rows.items()}
        return {
            "rows": rows,
            "counts": {r: list(c) for r, c in self.counts.items()},
            "count_label": self.count_label,
            "scales": dict(self.scales),
            "columns": list(self.columns),
            "labels": dict(self.labels),
            "protocol": dict(self.protocol),
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
            counts={r: (int(c[0]), int(c[1])) for r, c in data.get("counts", {}).items()},
            count_label=str(data.get("count_label", "jets")),
            protocol=dict(data.get("protocol", {})),
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


@dataclass
class EvalSets:
    """What ``pcgen eval`` compares: ``real`` vs ``fake`` (the model row) and ``real`` vs ``truth`` (the
    truth row, if any), each ``jets`` clouds, and ``notes`` saying where each set comes from."""

    real: PointClouds
    fake: PointClouds
    truth: PointClouds | None
    jets: int
    notes: list[str]


def eval_sets(
    fake: PointClouds, reference: PointClouds, truth: PointClouds | None, n: int, names: tuple[str, str, str | None]
) -> EvalSets:
    """The sets of ``pcgen eval``: ``n`` clouds per row (fewer only when a file has fewer, which a note
    says). Without a ``truth`` file the reference is split: its first ``n`` clouds are compared with
    the model, the next ``n`` form the truth row (with fewer than ``2 n``, two equal halves).
    ``names`` are the (samples, reference, truth) file names for the notes."""
    samples_name, reference_name, truth_name = names
    notes = []
    if truth is not None:
        jets = clouds_per_row(n, len(fake), len(reference), len(truth))
        sources = f"{truth_name} [0:{jets}]"
    else:
        jets = clouds_per_row(n, len(fake), len(reference) // 2)
        if len(reference) < 2 * min(n, len(fake)):
            notes.append(f"{reference_name} has {len(reference)} clouds, fewer than 2 × {min(n, len(fake))}: "
                         f"split into two halves of {jets} (no --truth file given)")
        sources = f"{reference_name} [{jets}:{2 * jets}]"
    if jets < n:
        sizes = {samples_name: len(fake), reference_name: len(reference)}
        if truth is not None and truth_name is not None:
            sizes[truth_name] = len(truth)
        notes.append(f"{jets} clouds per row, not the {n} asked for (" + ", ".join(f"{k}: {v}" for k, v in sizes.items())
                     + ")")
    real = reference.subset(slice(0, jets))
    truth_set = truth.subset(slice(0, jets)) if truth is not None else reference.subset(slice(jets, 2 * jets))
    notes.append(f"model row: {jets} generated ({samples_name} [0:{jets}]) vs {jets} real ({reference_name} [0:{jets}])")
    notes.append(f"truth row: {jets} real ({sources}) vs the same {jets} real")
    return EvalSets(real, fake.subset(slice(0, jets)), truth_set if jets > 0 else None, jets, notes)


def clouds_per_row(num_jets: int, *available: int) -> int:
    """How many clouds each row of an evaluation compares: ``eval.num_jets``, or fewer when one of the
    sets has fewer (``available``: their sizes). The one rule of ``pcgen run`` (in training and at the
    end), ``pcgen compare`` and ``pcgen eval``."""
    return min(num_jets, *available) if available else num_jets


def metrics_for_kind(registry: Any, kind: str) -> list[MetricSpec]:
    """The registered metrics of the kind called ``kind``, in registration order."""
    return [m for m in registry.metrics.values() if m.kind == kind]


def training_metrics(specs: list[MetricSpec], names: list[str] | None) -> list[MetricSpec]:
    """Metrics of in-training evaluations, from a kind's ``specs``: ``names`` (``eval.during_training``),
    or those marked ``during_training``; a name that is not one of them is an error."""
    if names is None:
        return [m for m in specs if m.during_training]
    by_name = {m.name: m for m in specs}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        kinds = sorted({m.kind for m in specs})
        raise ValueError(f"eval.during_training names {unknown}, not metrics of {', '.join(kinds) or 'this data'}; "
                         f"available: {sorted(by_name)}")
    return [by_name[n] for n in names]


def select_specs(specs: list[MetricSpec], config: EvalConfig) -> list[MetricSpec]:
    """The specs named in ``config.metrics`` (all if None), without EFP metrics if ``config.efp`` is False."""
    by_name = {s.name: s for s in specs}
    if config.metrics is not None:
        unknown = [n for n in config.metrics if n not in by_name]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown} in eval.metrics; available: {sorted(by_name)}")
        specs = [by_name[n] for n in config.metrics]
    return [s for s in specs if config.efp or not s.uses_efps]


def metric_options(specs: list[MetricSpec], config: EvalConfig,
                   normalisation: EFPNormalisation | None = None) -> dict[str, dict[str, Any]]:
    """Factory options per metric name, from each spec's ``options`` (bootstrap batches of the W1s, the
    FPD/KPD protocol and, for pcgen's protocol, the EFP normalisation)."""
    return {s.name: s.options(config, normalisation) for s in specs if s.options is not None}


def needs_normalisation(specs: list[MetricSpec], config: EvalConfig) -> bool:
    """Whether an evaluation by ``config`` of ``specs`` fixes an EFP normalisation (pcgen's FPD/KPD protocol)."""
    return config.protocol == "pcgen" and any(s.needs_normalisation for s in select_specs(specs, config))


def efp_normalisation(clouds: PointClouds, source: str) -> EFPNormalisation:
    """The FPD/KPD feature normalisation measured on ``clouds`` (jets; e.g. the training split),
    ``source`` saying which they are."""
    return EFPNormalisation.from_features(jet_efps(prepare_jets(clouds.points, clouds.mask)), source)


def protocol_description(config: EvalConfig, jets: int, normalisation: EFPNormalisation | None) -> dict[str, Any]:
    """How FPD and KPD were measured, for metrics.json and ``pcgen eval --json``."""
    if config.protocol == "jetnet":
        return {
            "fpd_kpd": "jetnet",
            "jets_per_row": jets,
            "detail": "jetnet 0.2.5 defaults: features divided by the real set's maxima; FPD from 20 batches of each "
            "of 10 sizes from 20,000 to 50,000 jets drawn with replacement, extrapolated linearly in 1/N "
            "(error: fit error); KPD median of 10 batches of 5,000 drawn with replacement (error: half the "
            "16-84 % spread)",
        }
    return {
        "fpd_kpd": "pcgen",
        "jets_per_row": jets,
        "num_splits": config.num_splits,
        "batch_size": jets // config.num_splits,
        "detail": f"each EFP mapped to a standard normal by fixed quantiles (efp_normalisation); {config.num_splits} disjoint batch pairs of "
        f"{jets // config.num_splits} jets; value = mean over pairs (FPD not extrapolated, KPD unbiased), "
        "error = standard error of that mean",
        "efp_normalisation": normalisation.to_dict() if normalisation is not None else None,
    }


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
    normalisation: EFPNormalisation | None = None,
    count_label: str = "clouds",
) -> MetricTable:
    """Metric table with a ``"truth"`` row (``real`` vs ``reference``, if given) and a ``model_name``
    row (``real`` vs ``fake``).

    ``real`` and ``reference`` must be independent sets of real jets (e.g. the two halves of the
    held-out set, see :func:`split_reference`). Every set is cut to the same number of jets, the
    smallest of ``config.num_jets`` and the sets' sizes (a seeded random subset), so that rows are
    comparable; ``table.counts`` records it. ``normalisation`` fixes the FPD/KPD features' scale for
    every row (pcgen protocol; default: measured on ``real``, recorded in ``table.protocol``).
    ``options[name]`` overrides factory keywords of one metric; ``count_label`` is what the table counts
    (the kind's noun: "jets", "showers").
    """
    chosen = select_specs(specs, config)
    sets = [real, fake] + ([reference] if reference is not None else [])
    n = clouds_per_row(config.num_jets, *(len(s) for s in sets))
    real, fake = _limit(real, n), _limit(fake, n)
    if config.protocol == "pcgen" and any(s.needs_normalisation for s in chosen) and normalisation is None:
        normalisation = efp_normalisation(real, f"the {n} real jets of this table")
    opts = metric_options(chosen, config, normalisation)
    for name, extra in (options or {}).items():
        opts[name] = {**opts.get(name, {}), **extra}
    pairs = {TRUTH_ROW: _limit(reference, n)} if reference is not None else {}
    pairs[model_name] = fake
    table = MetricTable(
        rows={row: {} for row in pairs},
        scales={s.name: s.jetnet_scale or s.scale if config.protocol == "jetnet" else s.scale for s in chosen},
        columns=[s.name for s in chosen],
        labels={s.name: s.label for s in chosen if s.label},
        counts={row: (n, n) for row in pairs},
        count_label=count_label,
        protocol=protocol_description(config, n, normalisation) if any(s.uses_efps for s in chosen) else {},
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
    opts = metric_options(specs, config)
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
