"""Are the training jets symmetric under the augmentations pcgen offers (``train.reflect``, ``train.rotate``)?

    .venv/bin/python benchmarks/jet_symmetry.py --n 3000 --slices 3 --json benchmarks/results/jet_symmetry_cpu.json

With the leaderboard's protocol (its metrics, EFP normalisation from the truth slices) on the cards'
50,000-jet training set: the first ``n`` jets are the reference; each of ``slices`` further disjoint
slices of ``n`` jets is compared with it as it is (the truth row), reflected in eta_rel, and rotated
by a uniformly random angle per jet in the (eta_rel, phi_rel) plane. If the data are symmetric, the
augmented rows match the truth row within its spread; a model trained on augmented jets then learns
nothing the data do not have.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from pcgen.config import EvalConfig
from pcgen.data.pointclouds import PointClouds
from pcgen.leaderboard import fresh_jets, metric_values, spread
from pcgen.metrics.evaluate import efp_normalisation, metric_options, metrics_for_kind, select_specs
from pcgen.plugins import load_registry

RECIPE = {"dataset": "pythia", "num_particles": 30, "jet_type": "t"}  # the cards' data (other fields: defaults)


def reflected(clouds: PointClouds) -> PointClouds:
    """Every jet with eta_rel -> -eta_rel."""
    points = clouds.points.copy()
    points[..., clouds.feature_names.index("eta_rel")] *= -1
    return replace(clouds, points=points)


def rotated(clouds: PointClouds, seed: int) -> PointClouds:
    """Every jet rotated about its axis by its own uniformly random angle."""
    angle = np.random.default_rng(seed).uniform(0, 2 * np.pi, (len(clouds.points), 1))
    eta, phi = (clouds.feature_names.index(f) for f in ("eta_rel", "phi_rel"))
    points = clouds.points.copy()
    u, v = points[..., eta].copy(), points[..., phi].copy()
    points[..., eta] = np.cos(angle) * u - np.sin(angle) * v
    points[..., phi] = np.sin(angle) * u + np.cos(angle) * v
    return replace(clouds, points=points * clouds.mask[..., None])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000, help="jets per row")
    parser.add_argument("--slices", type=int, default=3, help="disjoint slices compared with the reference")
    parser.add_argument("--jets", type=int, default=50_000, help="size of the training set (seed 0) to read")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    clouds = fresh_jets({**RECIPE, "num_jets": args.jets}, seed=0, num=args.jets, progress=False)
    n = args.n
    real = clouds.subset(slice(0, n))
    others = [clouds.subset(slice(k * n, (k + 1) * n)) for k in range(1, 1 + args.slices)]
    norm = efp_normalisation(clouds.subset(slice(n, (1 + args.slices) * n)), "the truth slices")
    registry = load_registry()
    config = EvalConfig(num_jets=n)
    specs = select_specs(metrics_for_kind(registry, registry.kind_of(real).name), config)
    options = metric_options(specs, config, norm)
    rows = {
        "truth": spread([metric_values(real, o, specs, options) for o in others]),
        "reflected in eta_rel": spread([metric_values(real, reflected(o), specs, options) for o in others]),
        "rotated at random": spread([metric_values(real, rotated(o, k), specs, options) for k, o in enumerate(others)]),
    }
    keys = ["w1m", "w1p_pt_rel", "w1efp", "fpd", "kpd"]
    print(f"{'row':<22}" + "".join(f"{k:>20}" for k in keys) + "   (x1e-3; w1efp x1e-5)")
    for name, row in rows.items():
        scale = {k: (1e5 if k == "w1efp" else 1e3) for k in keys}
        print(f"{name:<22}" + "".join(f"{row[k][0] * scale[k]:>13.3f} ± {row[k][1] * scale[k]:<5.3f}"
                                      for k in keys if k in row))
    if args.json:
        args.json.write_text(json.dumps({"n": n, "slices": args.slices, "training_jets": args.jets,
                                         "rows": {name: {k: list(v) for k, v in row.items()} for name, row in rows.items()}},
                                        indent=1) + "\n")


if __name__ == "__main__":
    main()
