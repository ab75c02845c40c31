"""The leaderboard: every shipped model sampled and ranked against the same fresh real jets.

``pcgen leaderboard`` loads the trained weights the installed plugins ship (:mod:`pcgen.pretrained`),
makes real jets with the data recipe of their cards but a seed that no card's training used, and
evaluates every model on one protocol:

- the reference: the first ``n`` fresh jets; the truth row: the same reference against ``seeds``
  further disjoint slices of ``n`` fresh jets (mean ± std over the slices);
- each model row: ``n`` generated jets per sampling seed against the reference (mean ± std over
  the seeds), with the sampling time per jet;
- FPD/KPD by pcgen's protocol, every EFP normalised by fixed quantiles measured on the truth slices
  (never on the reference or a model), the same for every row;
- with ``copies``, how close each model's jets come to its card's training jets against how close
  the fresh real jets come (:mod:`pcgen.metrics.copies`): a model that reproduces its training set
  looks as good as the truth row on every distance above, and only this check shows it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pcgen.config import EvalConfig
from pcgen.data.jet_config import JetDataConfig
from pcgen.data.pointclouds import PointClouds
from pcgen.metrics.evaluate import (
    TRUTH_ROW,
    MetricTable,
    compute_metric,
    efp_normalisation,
    metric_options,
    metrics_for_kind,
    protocol_description,
    select_specs,
)
from pcgen.metrics.copies import CopyCheck, CopyReference
from pcgen.metrics.distances import EFPNormalisation
from pcgen.pretrained import physics_recipe
from pcgen.specs import MetricSpec, ModelSpec, PretrainedWeights

DEFAULT_DATA_SEED = 1000
"""Seed of the fresh real jets (the shipped cards' data use seed 0)."""

Values = dict[str, float]



class LeaderboardError(ValueError):
    """A leaderboard that cannot be made as asked (unknown model, cards of different data, a used seed)."""


@dataclass
class Entry:
    """One ranked model: its weights, their card, and what sampling them measured."""

    spec: ModelSpec
    weights: PretrainedWeights
    card: dict[str, Any]
    values: list[Values] = field(default_factory=list)
    seconds: float = 0.0
    jets: int = 0

    @property
    def us_per_jet(self) -> float:
        return self.seconds / max(self.jets, 1) * 1e6


def select_entries(registry: Any, names: list[str] | None) -> list[Entry]:
    """The shipped weights to rank: all, or those named (by weights name or by model name)."""
    from pcgen.pretrained import available, read_card

    entries = available(registry)
    if not entries:
        raise LeaderboardError("no installed plugin ships trained weights; see `pcgen models`")
    if names:
        known = {w.name for _, w in entries} | {s.name for s, _ in entries}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise LeaderboardError(f"no shipped weights for {', '.join(unknown)}; available: "
                                   f"{', '.join(w.name for _, w in entries)} (see `pcgen models`)")
        entries = [(s, w) for s, w in entries if w.name in names or s.name in names]
    return [Entry(spec, weights, read_card(weights)) for spec, weights in entries]


def common_recipe(entries: list[Entry], seed: int) -> dict[str, Any]:
    """The data recipe every card shares (seed and size aside), checked to have trained on another seed."""
    recipes: dict[str, list[str]] = {}
    for entry in entries:
        recipe = entry.card.get("data", {}).get("recipe")
        if not isinstance(recipe, dict):
            raise LeaderboardError(f"the card of {entry.weights.name} has no data recipe; it cannot be ranked "
                                   "against fresh jets (leave it out with --models)")
        if int(recipe.get("seed", -1)) == seed:
            raise LeaderboardError(f"{entry.weights.name} was trained on data of seed {seed}; "
                                   "choose another --data-seed so that no model has seen the real jets")
        recipes.setdefault(json.dumps(physics_recipe(recipe), sort_keys=True), []).append(entry.weights.name)
    if len(recipes) > 1:
        groups = "; ".join(", ".join(names) for names in recipes.values())
        raise LeaderboardError(f"the models were trained on different data recipes ({groups}); rank each group "
                               "separately with --models")
    return json.loads(next(iter(recipes)))


def fresh_jets(recipe: dict[str, Any], seed: int, num: int, progress: bool = True) -> PointClouds:
    """``num`` real jets of ``recipe`` made with ``seed`` (cached on disk like any Pythia data set)."""
    from pcgen.data.sources import load_pythia

    if recipe.get("dataset", "pythia") != "pythia":
        raise LeaderboardError(f"the cards' data set is {recipe.get('dataset')!r}; the leaderboard makes fresh "
                               "real jets with Pythia only")
    config = JetDataConfig.model_validate({**recipe, "seed": seed, "num_jets": num, "conditions": []})
    return load_pythia(config, progress=progress)


def metric_values(real: PointClouds, other: PointClouds, specs: list[MetricSpec],
                  options: dict[str, dict[str, Any]]) -> Values:
    """Every metric's value (natural units, parts such as W1P per feature included) of ``other`` vs ``real``."""
    values: Values = {}
    for spec in specs:
        values.update({k: v for k, (v, _) in compute_metric(spec, real, other, options.get(spec.name, {})).items()})
    return values


def spread(values: list[Values]) -> dict[str, tuple[float, float]]:
    """``{metric: (mean, std)}`` over repeated measurements (std with ddof=1; 0 for one value)."""
    return {k: (float(np.mean([v[k] for v in values])),
                float(np.std([v[k] for v in values], ddof=1)) if len(values) > 1 else 0.0) for k in values[0]}


@dataclass
class Leaderboard:
    """The metric table (truth row first, then models by W1M), timings and the jets that were compared."""

    table: MetricTable
    entries: list[Entry]
    real: PointClouds
    samples: dict[str, PointClouds]
    truth: dict[str, tuple[float, float]]
    notes: list[str]
    copies: dict[str, CopyCheck] = field(default_factory=dict)
    """With ``copies``: the copy check of the truth row (a fresh real slice) and of each model's first seed."""

    def to_dict(self) -> dict[str, Any]:
        """``pcgen eval --json``'s schema, plus each model's sampling speed and card."""
        return {**self.table.to_dict(), "notes": self.notes,
                "inputs": {"weights": [e.weights.name for e in self.entries]},
                "models": {e.weights.name: {"model": e.spec.name, "sampling_us_per_jet": round(e.us_per_jet, 1),
                                            "training_minutes": e.card.get("training_minutes"),
                                            "hardware": e.card.get("hardware"),
                                            "per_seed": e.values} for e in self.entries},
                **({"copies": {k: v.to_dict() for k, v in self.copies.items()}} if self.copies else {})}


def rank(registry: Any, names: list[str] | None = None, n: int = 3000, seeds: int = 3,
         data_seed: int = DEFAULT_DATA_SEED, device: str | torch.device = "cpu",
         report: Callable[[str], None] = print, progress: bool = True, copies: bool = False) -> Leaderboard:
    """Sample every selected model ``seeds`` times and evaluate it against the same fresh real jets; with
    ``copies``, also check how close each model's jets come to its card's training jets."""
    from pcgen.pretrained import load_pretrained

    if n < 100 or seeds < 1:
        raise LeaderboardError(f"need --n >= 100 jets per row and --seeds >= 1, got {n} and {seeds}")
    entries = select_entries(registry, names)
    recipe = common_recipe(entries, data_seed)
    slices = max(seeds, 2)
    clouds = fresh_jets(recipe, data_seed, n * (1 + slices), progress)
    real = clouds.subset(slice(0, n))
    truth_sets = [clouds.subset(slice(k * n, (k + 1) * n)) for k in range(1, 1 + slices)]
    norm: EFPNormalisation = efp_normalisation(clouds.subset(slice(n, None)),
                                               f"the {slices * n} truth-slice jets of seed {data_seed}")
    config = EvalConfig(num_jets=n)
    kind = registry.kind_of(real)
    specs = select_specs(metrics_for_kind(registry, kind.name), config)
    options = metric_options(specs, config, norm)
    notes = [f"real: {n} fresh Pythia jets (seed {data_seed}, the cards' recipe); truth: the same vs "
             f"{len(truth_sets)} further disjoint slices of {n}; models: {seeds} sampling seeds each"]
    report(notes[0])
    truth = spread([metric_values(real, other, specs, options) for other in truth_sets])
    samples: dict[str, PointClouds] = {}
    for entry in entries:
        trained = load_pretrained(entry.weights.name, registry, device)
        for seed in range(seeds):
            begin = time.perf_counter()
            fake = trained.generate(n, seed=seed, device=device, like=real if trained.conditional else None)
            entry.seconds += time.perf_counter() - begin
            entry.jets += n
            entry.values.append(metric_values(real, fake, specs, options))
            samples.setdefault(entry.weights.name, fake)
        w1m = spread(entry.values).get("w1m", (float("nan"), 0.0))
        report(f"{entry.weights.name}: W1M {w1m[0] * 1e3:.2f} ± {w1m[1] * 1e3:.2f} x1e-3, "
               f"{entry.us_per_jet:.0f} µs/jet")
    entries.sort(key=lambda e: spread(e.values).get("w1m", (float("inf"), 0.0))[0])
    table = MetricTable(
        rows={TRUTH_ROW: truth, **{e.weights.name: spread(e.values) for e in entries}},
        scales={s.name: s.scale for s in specs},
        columns=[s.name for s in specs],
        labels={s.name: s.label for s in specs if s.label},
        counts={TRUTH_ROW: (n, n), **{e.weights.name: (n, n) for e in entries}},
        count_label=kind.noun,
        protocol={**protocol_description(config, n, norm), "rows": "mean ± std over sampling seeds (models) or "
                  "disjoint real slices (truth)", "data_seed": data_seed, "seeds": seeds},
    )
    board = Leaderboard(table, entries, real, samples, truth, notes)
    if copies:
        board.copies = copy_checks(entries, recipe, real, truth_sets[0], samples, progress)
    return board


def training_data(card: dict[str, Any]) -> tuple[int, int]:
    """``(seed, num_jets)`` of the data set a card's model was trained on."""
    used = card.get("data", {}).get("recipe", {})
    return int(used.get("seed", 0)), int(used.get("num_jets", 0))


def training_jets(recipe: dict[str, Any], card: dict[str, Any], progress: bool = True) -> PointClouds:
    """The jets a card's model was trained on (its data set, made or loaded from the cache: the training and
    held-out split together, since a copy of either would show)."""
    seed, num = training_data(card)
    return fresh_jets(recipe, seed, num, progress)


def copy_checks(entries: list[Entry], recipe: dict[str, Any], real: PointClouds, truth: PointClouds,
                samples: dict[str, PointClouds], progress: bool = True) -> dict[str, CopyCheck]:
    """The copy check of ``truth`` (fresh real jets: about 1 and 1 %) and of each model's first sample,
    each against its card's training jets, with ``real`` as the fresh reference (one per training set)."""
    checks: dict[str, CopyCheck] = {}
    references: dict[tuple[int, int], CopyReference] = {}
    for entry in entries:
        key = training_data(entry.card)
        if key not in references:
            references[key] = CopyReference(real, training_jets(recipe, entry.card, progress))
        if TRUTH_ROW not in checks:
            checks[TRUTH_ROW] = references[key].check(truth)
        checks[entry.weights.name] = references[key].check(samples[entry.weights.name])
    return checks


def write(board: Leaderboard, out_dir: Path) -> list[Path]:
    """metrics.md, metrics.json, distributions.png and speed.png in ``out_dir``; returns the paths."""
    from pcgen.plots import leaderboard_figure, speed_quality_figure
    from pcgen.safe_io import save_figure, write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    speeds = {e.weights.name: e.us_per_jet for e in board.entries}
    markdown = board.table.to_markdown() + "\n\n" + "| Model | sampling µs/jet |\n|---|---|\n" + "".join(
        f"| {name} | {us:,.0f} |\n" for name, us in speeds.items())
    if board.copies:
        markdown += ("\n| Model | nearest training jet: median distance / fresh real jets' | near copies "
                     "(fresh real jets: 1 %) |\n|---|---|---|\n" + "".join(
                         f"| {name} | {c.median_ratio:.2f} | {c.near_copies:.1%} |\n" for name, c in board.copies.items()))
    paths = [
        write_text(out_dir / "metrics.md", markdown, "leaderboard table"),
        write_text(out_dir / "metrics.json", json.dumps(board.to_dict(), indent=2) + "\n", "leaderboard table (JSON)"),
        save_figure(leaderboard_figure(board.real, board.samples), out_dir / "distributions.png"),
        save_figure(speed_quality_figure(board.table, speeds), out_dir / "speed.png"),
    ]
    return paths
