"""OmniJet generation speed: tokens/s and µs per jet and per shower, with and without the KV cache.

    .venv/bin/python benchmarks/omnijet_generation.py [--json out.json] [--device cpu|cuda]
                                                      [--jet-batch 256] [--shower-batch 16]

An untrained model at the default (paper) architecture: the cost of generation does not depend on
the weights, only on the number of tokens. Each cloud gets a fixed number of tokens (the stop token
is placed there), so the two settings generate exactly the same amount: jets 30 tokens (N = 30),
showers 875 tokens (the mean hit count of the ``calo-photons`` data, N = 1,700). Times include
decoding tokens to particles. The ratio "no cache / cache" is measured in the same run at the same
batch size (for showers a small one: without the cache their cost grows with the square of the length).
"""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import dataclass

import torch

from generation_speed import fastest_sample_seconds  # benchmarks/ is on the path when run as a script
from pcgen import DataInfo
from pcgen.data.multiplicity import jet_condition, mask_for
from pcgen.data.pointclouds import JET_FEATURES, SHOWER_FEATURES
from pcgen.plugins import load_registry

CASES = {
    # name: (features, N, tokens per cloud)
    "jets": (JET_FEATURES, 30, 30),
    "showers": (SHOWER_FEATURES, 1700, 875),
}


@dataclass
class Timing:
    case: str
    kv_cache: bool
    batch: int
    tokens_per_cloud: int
    seconds: float

    @property
    def us_per_cloud(self) -> float:
        return 1e6 * self.seconds / self.batch

    @property
    def tokens_per_second(self) -> float:
        return self.batch * self.tokens_per_cloud / self.seconds

    def row(self) -> dict[str, float | int | str | bool]:
        return {"case": self.case, "kv_cache": self.kv_cache, "batch": self.batch,
                "tokens_per_cloud": self.tokens_per_cloud, "seconds": self.seconds,
                "us_per_cloud": self.us_per_cloud, "tokens_per_second": self.tokens_per_second}


def time_generation(case: str, kv_cache: bool, batch: int, device: torch.device, repeats: int) -> Timing:
    features, n_max, tokens = CASES[case]
    registry = load_registry()
    spec = registry.model("omnijet")
    config = spec.config_class(kv_cache=kv_cache)
    torch.manual_seed(0)
    model = spec.build(config, DataInfo(n_max, features)).to(device).eval()
    short = mask_for(torch.full((min(batch, 4),), min(tokens, 8)), n_max).to(device)
    with torch.no_grad():
        model.sample(short, jet_condition(short))  # warm-up, short: without the cache a full one takes minutes
    mask = mask_for(torch.full((batch,), tokens), n_max).to(device)
    best = fastest_sample_seconds(model, mask, jet_condition(mask), device, repeats, warmup=False)
    return Timing(case, kv_cache, batch, tokens, best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--jet-batch", type=int, default=256)
    parser.add_argument("--shower-batch", type=int, default=16)
    parser.add_argument("--no-cache-shower-batch", type=int, default=2,
                        help="Showers without the cache are slow (quadratic in length): fewer of them.")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    timings = []
    plan = [("jets", True, args.jet_batch), ("jets", False, args.jet_batch),
            ("showers", True, args.shower_batch), ("showers", True, args.no_cache_shower_batch),
            ("showers", False, args.no_cache_shower_batch)]
    for case, cache, size in plan:
        timing = time_generation(case, cache, size, device, args.repeats)
        timings.append(timing)
        print(f"{case:8s} kv_cache={cache!s:5s} batch {size:4d}: {timing.us_per_cloud:12.0f} µs/cloud "
              f"{timing.tokens_per_second:10.0f} tokens/s", flush=True)
    ratios = {}
    for case in CASES:
        without = next(t for t in timings if t.case == case and not t.kv_cache)
        with_cache = next(t for t in timings if t.case == case and t.kv_cache and t.batch == without.batch)
        ratios[case] = without.us_per_cloud / with_cache.us_per_cloud
        print(f"{case}: at batch {without.batch} the KV cache makes generation {ratios[case]:.1f}x faster per cloud")
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "timings": [t.row() for t in timings],
        "speedup_from_kv_cache": ratios,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
