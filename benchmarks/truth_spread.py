"""How much the truth row moves: five disjoint real-vs-real pairs per sample size, both FPD/KPD protocols.

    .venv/bin/python benchmarks/truth_spread.py [--data FILE.h5] [--sizes 1000 3000 4000] [--json out.json]

The data default is the largest Pythia top-jet file in the pcgen cache (the 50,000-jet set). Its
first 7,000 jets stand in for a run's training split (they fix the EFP normalisation, as a run's
training split does); the pairs come from the jets after the first 10,000, each pair two disjoint
sets of ``n`` jets, no jet used twice. For every metric the script reports the mean of the five
values, their standard deviation (the real spread of the truth row) and the mean of the five
printed errors, which should match the spread. Two mismodelled samples (particle pT smeared by
20 %, eta stretched by 5 %) show the size of differences the metrics resolve at the largest ``n``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from pcgen.config import EvalConfig
from pcgen.data.pointclouds import PointClouds
from pcgen.data.store import read_pointclouds
from pcgen.metrics import JET_METRICS, evaluate
from pcgen.metrics.evaluate import efp_normalisation

TRAIN_JETS, POOL_START, PAIRS = 7_000, 10_000, 5
METRICS = ("w1m", "w1p", "w1efp", "fpd", "kpd")


def perturbed(clouds: PointClouds, pt_smear: float = 0.0, eta_scale: float = 1.0, seed: int = 0) -> PointClouds:
    points = np.array(clouds.points, dtype=np.float64)
    points[..., 0] *= eta_scale
    points[..., 2] *= np.exp(pt_smear * np.random.default_rng(seed).normal(size=points[..., 2].shape))
    return PointClouds(points.astype(np.float32), clouds.mask)


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from metrics_speed import default_data

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 4000])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Recommended number")
    path = args.data or default_data()
    clouds = read_pointclouds(path)
    norm = efp_normalisation(clouds.subset(slice(0, TRAIN_JETS)), f"first {TRAIN_JETS} jets of {path.name}")
    pool = clouds.subset(slice(POOL_START, len(clouds)))
    results: dict[str, dict] = {}
    for n in args.sizes:
        if len(pool) < 2 * PAIRS * n:
            raise SystemExit(f"{len(pool)} pool jets cannot make {PAIRS} disjoint pairs of {n}")
        for protocol in ("pcgen", "jetnet"):
            start = time.perf_counter()
            values = []
            for k in range(PAIRS):
                real = pool.subset(slice(2 * k * n, (2 * k + 1) * n))
                other = pool.subset(slice((2 * k + 1) * n, (2 * k + 2) * n))
                config = EvalConfig(num_jets=n, protocol=protocol)
                metrics = ("fpd", "kpd") if protocol == "jetnet" else METRICS
                config = config.model_copy(update={"metrics": list(metrics)})
                table = evaluate(real, other, None, JET_METRICS, config, progress=False, normalisation=norm)
                values.append({m: table.rows["model"][m] for m in metrics})
            summary = {}
            for metric in values[0]:
                v = np.array([row[metric][0] for row in values])
                e = np.array([row[metric][1] for row in values])
                summary[metric] = {"values": v.tolist(), "errors": e.tolist(), "mean": float(v.mean()),
                                   "spread": float(v.std(ddof=1)), "mean_error": float(e.mean())}
            results[f"{protocol}-{n}"] = {"jets": n, "protocol": protocol, "seconds": time.perf_counter() - start,
                                          "metrics": summary}
            print(f"\n{protocol} protocol, {PAIRS} disjoint pairs of {n} vs {n} jets")
            for metric, s in summary.items():
                print(f"  {metric:6s} mean {s['mean']:.4g}  spread (std of 5) {s['spread']:.3g}  "
                      f"mean printed error {s['mean_error']:.3g}   values {np.round(s['values'], 8).tolist()}")
    n = max(args.sizes)
    real = pool.subset(slice(0, n))
    for name, kwargs in (("pt smeared 20%", {"pt_smear": 0.2}), ("eta x 1.05", {"eta_scale": 1.05})):
        fake = perturbed(pool.subset(slice(n, 2 * n)), **kwargs)
        table = evaluate(real, fake, None, JET_METRICS, EvalConfig(num_jets=n), progress=False, normalisation=norm)
        results[name] = {"jets": n, "metrics": {m: list(table.rows["model"][m]) for m in METRICS}}
        print(f"\n{name}, {n} vs {n}: " + ", ".join(f"{m} {v:.4g} ± {e:.2g}" for m, (v, e) in
                                                  results[name]["metrics"].items()))
    if args.json:
        args.json.write_text(json.dumps({"data": str(path), "normalisation": norm.source, "results": results},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
