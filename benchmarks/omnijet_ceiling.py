"""What holds OmniJet back: the tokenizer's reconstruction of real jets (the best any GPT over its
tokens could do) and the GPT's sampling settings, all on ``pcgen leaderboard``'s protocol.

Rows: ``reconstructed`` encodes ``--n`` fresh real jets into tokens and decodes them (a disjoint
slice from the jets they are measured against, so it is a generator that has the GPT's job done
perfectly); then the shipped weights sampled with each ``--settings`` entry (``model.*`` overrides
joined by ``,``; ``default`` for none), ``--seeds`` sampling seeds each. Metrics ×10⁻³, mean ± std.

    .venv/bin/python benchmarks/omnijet_ceiling.py --weights omnijet-top30 \\
        --settings default temperature=0.9 temperature=1.1 top_k=100 --json benchmarks/results/omnijet_ceiling.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pcgen.data.pointclouds import PointClouds
from pcgen.leaderboard import spread
from pcgen.plugins import load_registry
from pcgen.pretrained import load_pretrained
from pcgen.sampling import TrainedModel
from pcgen.threads import configure_threads

sys.path.insert(0, str(Path(__file__).resolve().parent))
from few_step_sampling import METRICS, SCALES, ReferenceJets  # noqa: E402


def reconstructed(trained: TrainedModel, clouds: PointClouds) -> PointClouds:
    """``clouds`` through the tokenizer (encode to the nearest code, decode), back in physical units."""
    mask = torch.from_numpy(clouds.mask)
    x = trained.scaler.transform(torch.from_numpy(clouds.points), mask)
    with torch.inference_mode():
        out = trained.model.part("tokenizer").reconstruct(x, mask)  # type: ignore[attr-defined]
    points = trained.scaler.inverse(out.float(), mask).numpy()
    return PointClouds(points, clouds.mask.copy(), clouds.feature_names, meta={**clouds.meta, "source": "reconstructed"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="omnijet-top30")
    parser.add_argument("--settings", nargs="+", default=["default"], help="model.* overrides (k=v,k=v) or 'default'")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    configure_threads(1)
    registry = load_registry()
    n = args.n
    reference = ReferenceJets.of(registry, [args.weights], n, spare=1)  # spare: jets none of its rows uses
    rows: dict[str, Any] = {"truth": reference.truth}
    trained = load_pretrained(args.weights, registry)
    rows["reconstructed"] = spread([reference.measure(reconstructed(trained, reference.spare))])
    for setting in args.settings:
        overrides = [] if setting == "default" else [f"model.{kv}" for kv in setting.split(",")]
        model = load_pretrained(args.weights, registry, overrides=overrides) if overrides else trained
        rows[setting] = spread([reference.measure(model.generate(n, seed=seed)) for seed in range(args.seeds)])
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"weights": args.weights, "jets": n, "seeds": args.seeds,
                                               "rows": rows}, indent=2) + "\n")
    print(to_markdown(rows, args.weights))


def to_markdown(rows: dict[str, dict[str, tuple[float, float]]], weights: str) -> str:
    """One row per setting: W1M, W1P, FPD ×10⁻³ (mean ± std)."""
    lines = [f"| {weights} | " + " | ".join(m.upper() for m in METRICS) + " |", "|---" * (1 + len(METRICS)) + "|"]
    for name, values in rows.items():
        cells = [f"{values[m][0] * SCALES[m]:.3g} ± {values[m][1] * SCALES[m]:.2g}" if np.isfinite(values[m][0])
                 else "-" for m in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
