"""pcgen's jet evaluation vs jetnet's on the same 10,000 vs 10,000 jets, measured in one run.

    .venv/bin/python benchmarks/metrics_speed.py [--data FILE.h5] [--jets 10000] [--json out.json]

jetnet side: what a user of jetnet 0.2.5 runs for the JetNet table: ``w1m``, ``w1p``, ``w1efp`` (with
``num_eval_samples`` = the jets available, as pcgen), ``get_fpd_kpd_jet_features`` (energyflow, all
CPUs) and ``fpd``/``kpd`` with their defaults (``kpd`` compiles with numba on its first call, which
is part of its cost in a fresh process). pcgen side: ``evaluate`` with ``protocol="jetnet"`` on the
same jets (its values must equal jetnet's), and with pcgen's default protocol. The data default is
the Pythia top jets in the pcgen cache (the 50,000-jet set if present: jets 0..2n-1 are the two
sets, the next ones the normalisation's training stand-in). Times exclude importing the packages.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

from pcgen.config import EvalConfig
from pcgen.data.store import read_pointclouds
from pcgen.metrics import JET_METRICS, evaluate, prepare_jets
from pcgen.metrics.evaluate import efp_normalisation

SEED = 42


def default_data() -> Path:
    cache = Path(os.environ.get("PCGEN_CACHE", Path.home() / ".cache" / "pcgen"))
    files = sorted(cache.glob("pythia-t-N30-*jets*.h5"), key=lambda p: p.stat().st_size, reverse=True)
    if not files:
        raise SystemExit(f"no Pythia top jets in {cache}; run `pcgen data generate` or pass --data")
    return files[0]


def jetnet_evaluation(real, fake) -> tuple[dict[str, tuple[float, float]], float]:  # noqa: ANN001
    """jetnet's own calls; returns the values and the seconds they took."""
    from jetnet.evaluation import gen_metrics

    x, y = prepare_jets(real.points, real.mask), prepare_jets(fake.points, fake.mask)
    n = min(len(x), len(y))
    start = time.perf_counter()
    values = {}
    gen_metrics.rng = np.random.default_rng(SEED)
    values["w1m"] = gen_metrics.w1m(x, y, num_eval_samples=n, num_batches=5)
    gen_metrics.rng = np.random.default_rng(SEED)
    means, stds = gen_metrics.w1p(x, y, real.mask, fake.mask, exclude_zeros=False, num_eval_samples=n, num_batches=5)
    values["w1p"] = (means[2], stds[2])
    gen_metrics.rng = np.random.default_rng(SEED)
    means, stds = gen_metrics.w1efp(x, y, num_eval_samples=n, num_batches=5)
    values["w1efp"] = (means.mean(), stds.mean())
    features_x, features_y = gen_metrics.get_fpd_kpd_jet_features(x), gen_metrics.get_fpd_kpd_jet_features(y)
    values["fpd"] = gen_metrics.fpd(features_x, features_y)
    values["kpd"] = gen_metrics.kpd(features_x, features_y)
    return {k: (float(v), float(e)) for k, (v, e) in values.items()}, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="HDF5 jets (default: Pythia tops in the cache)")
    parser.add_argument("--jets", type=int, default=10_000, help="jets per set")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Recommended number")
    import jetnet.evaluation  # noqa: F401 - import cost is not timed

    path = args.data or default_data()
    clouds = read_pointclouds(path)
    n = args.jets
    if len(clouds) < 2 * n:
        raise SystemExit(f"{path} has {len(clouds)} jets; need {2 * n}")
    real, fake = clouds.subset(slice(0, n)), clouds.subset(slice(n, 2 * n))
    train = clouds.subset(slice(2 * n, len(clouds))) if len(clouds) > 2 * n + 1000 else real

    config = EvalConfig(num_jets=n, protocol="jetnet")
    start = time.perf_counter()
    ours = evaluate(real, fake, None, JET_METRICS, config, progress=False).rows["model"]
    pcgen_seconds = time.perf_counter() - start

    start = time.perf_counter()
    norm = efp_normalisation(train, f"{len(train)} other jets of {path.name}")
    default = evaluate(real, fake, None, JET_METRICS, EvalConfig(num_jets=n), progress=False, normalisation=norm)
    default_seconds = time.perf_counter() - start

    theirs, jetnet_seconds = jetnet_evaluation(real, fake)
    rows = []
    for metric, (value, error) in theirs.items():
        mine = ours[metric]
        rows.append({"metric": metric, "jetnet": [value, error], "pcgen_jetnet_protocol": list(mine),
                     "relative_difference": abs(mine[0] - value) / abs(value) if value else abs(mine[0]),
                     "pcgen_protocol": list(default.rows["model"][metric])})
    result = {
        "data": str(path), "jets_per_set": n, "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "jetnet_seconds": jetnet_seconds, "pcgen_jetnet_protocol_seconds": pcgen_seconds,
        "pcgen_protocol_seconds": default_seconds, "speedup": jetnet_seconds / pcgen_seconds,
        "speedup_pcgen_protocol": jetnet_seconds / default_seconds, "metrics": rows,
    }
    print(f"{n} vs {n} jets from {path.name}")
    print(f"jetnet: {jetnet_seconds:.1f} s   pcgen (jetnet protocol): {pcgen_seconds:.1f} s   "
          f"speed-up {result['speedup']:.1f}x   pcgen (own protocol, incl. normalisation): {default_seconds:.1f} s")
    for row in rows:
        print(f"  {row['metric']:6s} jetnet {row['jetnet'][0]:.6g} ± {row['jetnet'][1]:.2g}   "
              f"pcgen {row['pcgen_jetnet_protocol'][0]:.6g} ± {row['pcgen_jetnet_protocol'][1]:.2g}   "
              f"rel. diff {row['relative_difference']:.1e}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
