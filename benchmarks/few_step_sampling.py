"""Few-step sampling: quality and speed of ODE solver settings of shipped flow-matching weights, next to
Pythia 8 + FastJet, measured in one run on one CPU thread.

Each setting ``WEIGHTS:SOLVER:STEPS`` samples ``--n`` jets per sampling seed; W1M, W1P and FPD are
measured against the same fresh real jets as ``pcgen leaderboard`` (the cards' recipe, a seed no card
trained on), with a truth row of disjoint real slices. The first setting is the reference: every
other row gives its pull ``(value - reference) / hypot(std, reference std)`` per metric and counts as
"within the errors" when every pull is at most 2. Pythia's cost per jet is timed on ``--pythia-jets``
jets of the same recipe in one process (``workers=1``), so both sides use one core.

    .venv/bin/python benchmarks/few_step_sampling.py --settings epic-fm-top30:midpoint:100 \\
        epic-fm-top30:midpoint:20 epic-fm-reflow-top30:euler:2 --json benchmarks/results/few_step_cpu.json
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pcgen.config import EvalConfig
from pcgen.data.jet_config import JetDataConfig
from pcgen.data.pointclouds import PointClouds
from pcgen.leaderboard import DEFAULT_DATA_SEED, common_recipe, fresh_jets, metric_values, select_entries, spread
from pcgen.metrics.evaluate import efp_normalisation, metric_options, metrics_for_kind
from pcgen.plugins import load_registry
from pcgen.threads import configure_threads
from pcgen.pretrained import load_pretrained

METRICS = ("w1m", "w1p", "fpd")
SCALES = {"w1m": 1e3, "w1p": 1e3, "fpd": 1e3}


@dataclass
class ReferenceJets:
    """What every row is measured against: ``n`` fresh real jets of the weights' shared recipe (a seed no
    card trained on, as ``pcgen leaderboard``), the truth row from two further disjoint slices, and the
    metric settings (FPD/KPD normalised on the truth slices). ``spare`` holds ``spare * n`` more fresh
    jets, disjoint from all of those, made in the same call."""

    recipe: dict[str, Any]
    real: PointClouds
    truth: dict[str, tuple[float, float]]
    specs: list[Any]
    options: dict[str, dict[str, Any]]
    spare: PointClouds

    @classmethod
    def of(cls, registry: Any, weights: list[str], n: int, metrics: tuple[str, ...] = METRICS,
           spare: int = 0) -> ReferenceJets:
        recipe = common_recipe(select_entries(registry, weights), DEFAULT_DATA_SEED)
        clouds = fresh_jets(recipe, DEFAULT_DATA_SEED, (3 + spare) * n)
        real, truth_sets = clouds.subset(slice(0, n)), [clouds.subset(slice(k * n, (k + 1) * n)) for k in (1, 2)]
        norm = efp_normalisation(clouds.subset(slice(n, 3 * n)), f"the {2 * n} truth-slice jets")
        specs = [s for s in metrics_for_kind(registry, registry.kind_of(real).name) if s.name in metrics]
        options = metric_options(specs, EvalConfig(num_jets=n), norm)
        truth = spread([metric_values(real, t, specs, options) for t in truth_sets])
        return cls(recipe, real, truth, specs, options, clouds.subset(slice(3 * n, None)))

    def measure(self, other: PointClouds) -> dict[str, float]:
        """Every metric of ``other`` against the real jets (natural units)."""
        return metric_values(self.real, other, self.specs, self.options)


def pythia_config(recipe: dict[str, Any], jets: int, seed: int, cache: str) -> JetDataConfig:
    """The data config that makes ``jets`` real jets of a card's recipe with ``seed`` in one process."""
    return JetDataConfig.model_validate({**recipe, "seed": seed, "num_jets": jets, "workers": 1, "cache_dir": cache})


def pythia_us_per_jet(recipe: dict[str, Any], jets: int, seed: int) -> float:
    """Microseconds of one process per real jet (Pythia 8 + FastJet + detector cuts), cache bypassed."""
    from pcgen.data.sources import load_pythia

    with tempfile.TemporaryDirectory() as cache:
        config = pythia_config(recipe, jets, seed, cache)
        begin = time.perf_counter()
        load_pythia(config, progress=False)
        return (time.perf_counter() - begin) / jets * 1e6


def pulls(row: dict[str, tuple[float, float]], reference: dict[str, tuple[float, float]]) -> dict[str, float]:
    """``(value - reference) / hypot(std, reference std)`` per metric."""
    return {m: (row[m][0] - reference[m][0]) / max(math.hypot(row[m][1], reference[m][1]), 1e-30) for m in METRICS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", required=True, help="WEIGHTS:SOLVER:STEPS; the first is the reference")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pythia-jets", type=int, default=1000)
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    args = parser.parse_args()
    configure_threads(1)  # one torch thread, one generation process: the speeds compare with Pythia in one process
    registry = load_registry()
    settings = [tuple(s.split(":")) for s in args.settings]
    n = args.n
    reference = ReferenceJets.of(registry, sorted({s[0] for s in settings}), n)
    rows: dict[str, Any] = {"truth": {"metrics": reference.truth}}
    pythia = pythia_us_per_jet(reference.recipe, args.pythia_jets, seed=DEFAULT_DATA_SEED + 7)
    print(f"Pythia 8 + FastJet: {pythia:.0f} µs/jet (one process)", flush=True)
    for weights, solver, steps in settings:
        trained = load_pretrained(weights, registry, overrides=[f"model.solver_steps={steps}"])
        values, seconds = [], 0.0
        for seed in range(args.seeds):
            begin = time.perf_counter()
            fake = trained.generate(n, seed=seed, variant=solver)
            seconds += time.perf_counter() - begin
            values.append(reference.measure(fake))
        us = seconds / (n * args.seeds) * 1e6
        evaluations = int(steps) * (2 if solver == "midpoint" else 1)
        rows[f"{weights} {solver} {steps}"] = {"metrics": spread(values), "us_per_jet": us,
                                               "network_evaluations": evaluations, "vs_pythia": pythia / us}
        print(f"{weights} {solver} {steps}: " + "  ".join(
            f"{m} {spread(values)[m][0] * SCALES[m]:.3g}" for m in METRICS) + f"  {us:.0f} µs/jet", flush=True)
    names = [f"{w} {s} {k}" for w, s, k in settings]
    for name in names[1:]:
        rows[name]["pulls"] = pulls(rows[name]["metrics"], rows[names[0]]["metrics"])
        rows[name]["within_errors"] = all(abs(p) <= 2 for p in rows[name]["pulls"].values())
    result = {"jets": n, "seeds": args.seeds, "threads": 1, "pythia_us_per_jet": pythia, "reference": names[0],
              "rows": rows}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    table = to_markdown(result)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    print(table)


def to_markdown(result: dict[str, Any]) -> str:
    """The table of docs/results.md: metrics x1e-3, µs/jet, speed-up over Pythia, pulls against the reference."""
    lines = ["| sampler | network evaluations | W1M | W1P | FPD | µs/jet | x Pythia | pulls vs " + result["reference"] + " |",
             "|---|---|---|---|---|---|---|---|"]
    for name, row in result["rows"].items():
        cells = [f"{row['metrics'][m][0] * SCALES[m]:.3g} ± {row['metrics'][m][1] * SCALES[m]:.2g}" for m in METRICS]
        if name == "truth":
            lines.append("| truth (real vs real) | - | " + " | ".join(cells) + " | - | - | - |")
            continue
        pull = ", ".join(f"{p:+.1f}" for p in row["pulls"].values()) + (" (within)" if row["within_errors"] else "") \
            if "pulls" in row else "reference"
        lines.append(f"| {name} | {row['network_evaluations']} | " + " | ".join(cells) +
                     f" | {row['us_per_jet']:.0f} | {row['vs_pythia']:.2f} | {pull} |")
    lines.append(f"\nPythia 8 + FastJet: {result['pythia_us_per_jet']:.0f} µs/jet in one process; "
                 f"{result['jets']} jets x {result['seeds']} seeds per row, one torch thread.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
