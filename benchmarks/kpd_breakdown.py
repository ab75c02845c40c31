"""Which jet features make a model's FPD and KPD? The leaderboard's distances split by EFP.

    .venv/bin/python benchmarks/kpd_breakdown.py --weights omnijet-top30 old.safetensors --n 3000 \\
        --seeds 3 --json benchmarks/results/kpd_breakdown_cpu.json

Against the leaderboard's fresh real jets (its data seed, the cards' recipe) and with its EFP
normalisation (quantiles of the truth slices), for each set of weights and sampling seed: KPD and
FPD on all 36 d <= 4 EFPs, on the 35 without EFP 0 (the graph without edges: the scalar pT_rel sum
of the jet's particles), and on EFP 0 alone; the spread of each EFP relative to the real jets'
(median and range over EFPs 1-35, after the normalisation); the share of jets whose pT_rel sum is
above every real one; the jet mass's standard deviation. The truth row compares a disjoint slice of
real jets. ``--weights`` takes names of shipped weights or .safetensors files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pcgen.data.jetfeatures import relative_jet_mass
from pcgen.data.pointclouds import PointClouds
from pcgen.leaderboard import DEFAULT_DATA_SEED, common_recipe, fresh_jets, select_entries, spread
from pcgen.metrics.distances import EFPNormalisation, frechet_distance, mmd_unbiased, split_distance
from pcgen.metrics.evaluate import efp_normalisation
from pcgen.metrics.jet_metrics import jet_efps, prepare_jets
from pcgen.plugins import load_registry
from pcgen.pretrained import load_pretrained, load_weights_file

def mass(clouds: PointClouds) -> np.ndarray:
    """Each jet's mass relative to its pT."""
    return relative_jet_mass(np.asarray(clouds.points), np.asarray(clouds.mask))


FEATURE_SETS = {"all": slice(None), "without_efp0": slice(1, None), "efp0": slice(0, 1)}


def raw_efps(clouds: PointClouds) -> np.ndarray:
    """The 36 EFPs of each cloud, ``(B, 36)``, before the normalisation."""
    return jet_efps(prepare_jets(clouds.points, clouds.mask))


def breakdown(real: torch.Tensor, fake_clouds: PointClouds, norm: EFPNormalisation,
              real_efp0_max: float) -> dict[str, float]:
    """Distances of ``fake_clouds``' normalised EFPs against ``real`` (normalised, ``(B, 36)``) by feature set,
    and spreads."""
    raw = raw_efps(fake_clouds)
    fake = norm.apply(raw)
    row: dict[str, float] = {}
    for name, columns in FEATURE_SETS.items():
        row[f"kpd_{name}"] = split_distance(real[:, columns], fake[:, columns], mmd_unbiased).value
        if name != "efp0":  # a Fréchet distance needs a covariance matrix
            row[f"fpd_{name}"] = split_distance(real[:, columns], fake[:, columns], frechet_distance).value
    ratio = (fake[:, 1:].std(0) / real[:, 1:].std(0)).numpy()
    row.update(spread_median=float(np.median(ratio)), spread_min=float(ratio.min()), spread_max=float(ratio.max()),
               above_real_pt_sum=float((raw[:, 0] > real_efp0_max).mean()),
               mass_std=float(np.std(mass(fake_clouds))))
    return row


def load(source: str, registry: Any) -> Any:
    """Shipped weights by name, or a .safetensors file."""
    if Path(source).suffix == ".safetensors":
        return load_weights_file(Path(source), registry, "cpu")
    return load_pretrained(source, registry, "cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", nargs="+", required=True, help="shipped weights names or .safetensors files")
    parser.add_argument("--n", type=int, default=3000, help="jets per row")
    parser.add_argument("--seeds", type=int, default=3, help="sampling seeds per model")
    parser.add_argument("--data-seed", type=int, default=DEFAULT_DATA_SEED)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    registry = load_registry()
    shipped = [w for w in args.weights if Path(w).suffix != ".safetensors"]
    recipe = common_recipe(select_entries(registry, shipped or None), args.data_seed)
    clouds = fresh_jets(recipe, args.data_seed, 3 * args.n)
    real_clouds, truth_clouds = clouds.subset(slice(0, args.n)), clouds.subset(slice(args.n, 2 * args.n))
    norm = efp_normalisation(clouds.subset(slice(args.n, None)), f"the {2 * args.n} truth-slice jets")

    real_raw = raw_efps(real_clouds)
    real, real_efp0_max = norm.apply(real_raw), float(real_raw[:, 0].max())
    real_mass_std = float(np.std(mass(real_clouds)))
    rows: dict[str, list[dict[str, float]]] = {"truth": [breakdown(real, truth_clouds, norm, real_efp0_max)]}
    for source in args.weights:
        trained = load(source, registry)
        rows[source] = [breakdown(real, trained.generate(args.n, seed=seed), norm, real_efp0_max)
                        for seed in range(args.seeds)]
        print(source, "done", file=sys.stderr, flush=True)

    print(f"| row | KPD all | KPD without EFP 0 | KPD EFP 0 | FPD all | FPD without EFP 0 | EFP spread / real "
          f"(median, range) | pT sum above every real jet | jet mass std (real {real_mass_std:.4f}) |")
    print("|---|---|---|---|---|---|---|---|---|")
    summary: dict[str, dict[str, tuple[float, float]]] = {}
    for name, values in rows.items():
        summary[name] = s = spread(values)

        def pm(key: str, scale: float = 1e3, fmt: str = ".0f", s: dict[str, tuple[float, float]] = s) -> str:
            return f"{s[key][0] * scale:{fmt}} ± {s[key][1] * scale:{fmt}}"

        print(f"| {name} | {pm('kpd_all')} | {pm('kpd_without_efp0')} | {pm('kpd_efp0')} | {pm('fpd_all')} | "
              f"{pm('fpd_without_efp0')} | {s['spread_median'][0]:.3f} ({s['spread_min'][0]:.3f}-"
              f"{s['spread_max'][0]:.3f}) | {s['above_real_pt_sum'][0]:.1%} | {pm('mass_std', 1, '.4f')} |")
    if args.json:
        args.json.write_text(json.dumps({"n": args.n, "seeds": args.seeds, "data_seed": args.data_seed,
                                         "real_mass_std": real_mass_std, "rows": rows, "summary": summary},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
