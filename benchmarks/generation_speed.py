"""Generation time per jet: a model plugin's generator vs Pythia 8 + FastJet, measured in one run.

    .venv/bin/python benchmarks/generation_speed.py [--plugins igapt tf-refiner:vnf tf-refiner:tf]
                                                    [--jets 300] [--json out.json]

With ``--checkpoint RUN --steps 5 10 20 50 100`` it also measures a trained ODE-sampled model
(``epic-fm``) at each number of solver steps and variant (``--variants midpoint euler``): µs/jet and
the metrics of its samples over ``--seeds`` seeds against held-out jets, next to the truth row (the
protocol of ``benchmarks/trained_models.py``).

Pythia's time covers event generation, the detector-like step, clustering and the JetNet-like
constituent arrays for one jet (single process). The model's time is an untrained generator's
forward pass (the cost does not depend on the weights) at several batch sizes; on a GPU the batch
size doubles until memory runs out and the fastest µs/jet is reported.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from pcgen import DataInfo
from pcgen.config import DataConfig
from pcgen.data.multiplicity import jet_condition, mask_for
from pcgen.data.pointclouds import JET_FEATURES
from pcgen.data.pythia import GenSettings, generate_shard
from pcgen.plugins import load_registry
from pcgen.sampling import CPU_PASS_PARTICLES


def pythia_seconds_per_jet(num_jets: int, jet_type: str, particles: int) -> float:
    settings = GenSettings.from_config(DataConfig(jet_type=jet_type, num_particles=particles, num_jets=num_jets),
                                       shard_size=num_jets)
    start = time.perf_counter()
    clouds = generate_shard(settings, 0)
    return (time.perf_counter() - start) / len(clouds)


@torch.no_grad()
def fastest_sample_seconds(model: torch.nn.Module, mask: torch.Tensor, cond: torch.Tensor, device: torch.device,
                           repeats: int = 3, warmup: bool = True) -> float:
    """The fastest of ``repeats`` timings of ``model.sample(mask, cond)`` (after one warm-up call
    unless ``warmup`` is False), in seconds."""
    if warmup:
        model.sample(mask, cond)
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model.sample(mask, cond)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def model_seconds_per_jet(model: torch.nn.Module, particles: int, batch: int, device: torch.device,
                          repeats: int = 3) -> float:
    counts = torch.randint(particles // 2, particles + 1, (batch,))
    mask = mask_for(counts, particles).to(device)
    return fastest_sample_seconds(model, mask, jet_condition(mask), device, repeats) / batch


def batch_sizes(device: torch.device, particles: int = 30) -> list[int]:
    """Batches to time: on a CPU also the cache-sized pass that generation uses by default."""
    if device.type != "cpu":
        return [2**k for k in range(8, 20)]
    return sorted({CPU_PASS_PARTICLES // particles, 256, 1024, 4096})


def machine() -> str:
    cpu = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (+ CPU {cpu})"
    return f"CPU: {cpu}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", nargs="+", default=["igapt"], help="models; NAME:VARIANT picks a variant")
    parser.add_argument("--jets", type=int, default=300, help="Pythia jets to time")
    parser.add_argument("--particles", type=int, default=30)
    parser.add_argument("--jet-type", default="t")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--checkpoint", help="trained run (folder) of an ODE-sampled model, for the steps table")
    parser.add_argument("--steps", nargs="+", type=int, default=[5, 10, 20, 50, 100])
    parser.add_argument("--variants", nargs="+", default=["midpoint"])
    parser.add_argument("--grids", nargs="+", default=["uniform"], help="time grids: uniform, cosine")
    parser.add_argument("--eval-jets", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--skip-untrained", action="store_true", help="only the steps table")
    args = parser.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))

    registry = load_registry()
    if args.skip_untrained:
        args.plugins = []
    pythia_us = pythia_seconds_per_jet(args.jets, args.jet_type, args.particles) * 1e6 if device.type == "cpu" else None
    result: dict = {"machine": machine(), "device": str(device), "particles": args.particles,
                    "pythia_us_per_jet": round(pythia_us, 1) if pythia_us else None, "models": {}}
    print(f"machine: {result['machine']}")
    if pythia_us:
        print(f"Pythia 8 + FastJet ({args.jet_type}, 1 process): {pythia_us:10.1f} µs/jet")
    for name in args.plugins:
        plugin, _, variant = name.partition(":")
        spec = registry.model(plugin)
        torch.manual_seed(0)
        model = spec.build(spec.config_class(), DataInfo(args.particles, JET_FEATURES)).eval().to(device)
        model.select_variant(variant or None)
        per_batch: dict[int, float] = {}
        for batch in batch_sizes(device, args.particles):
            try:
                per_batch[batch] = model_seconds_per_jet(model, args.particles, batch, device)
            except torch.OutOfMemoryError:
                break
        best_batch = min(per_batch, key=per_batch.get)
        model_us = per_batch[best_batch] * 1e6
        result["models"][name] = {
            "us_per_jet": {str(b): round(s * 1e6, 2) for b, s in per_batch.items()},
            "best_us_per_jet": round(model_us, 2), "best_batch": best_batch,
            "speed_up_vs_pythia": round(pythia_us / model_us, 1) if pythia_us else None,
        }
        for b, us in result["models"][name]["us_per_jet"].items():
            print(f"{name:16s} batch {b:>6}: {us:10.2f} µs/jet")
        if pythia_us:
            print(f"{name:16s} ratio Pythia / model: {pythia_us / model_us:.1f}x")
    if args.checkpoint:
        result["steps_table"] = steps_table(args, registry, pythia_us)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


def steps_table(args: argparse.Namespace, registry: object, pythia_us: float | None) -> list[dict]:
    """µs/jet and metrics of a trained ODE-sampled model per solver, time grid and number of steps."""
    from pathlib import Path

    from trained_models import held_out, measure, real_and_truth, sampled_metrics, spread

    from pcgen.sampling import load_trained

    run = Path(args.checkpoint)
    test, norm = held_out(run, registry)
    n = args.eval_jets
    real, truth_slices = real_and_truth(test, 1000, n, pairs=5)
    truth = spread([measure(real, other, registry, norm) for other in truth_slices])
    rows = [{"setting": "truth", "metrics": truth}]
    print(f"truth ({n} vs {n} held-out jets): " + fmt(truth))
    for variant in args.variants:
        for grid in args.grids:
            for steps in args.steps:
                trained = load_trained(run, registry, overrides=[f"model.solver_steps={steps}", f'model.time_grid="{grid}"'])
                values, seconds = sampled_metrics(trained, real, range(2000, 2000 + args.seeds), registry, norm,
                                                  variant=variant)
                us = seconds / (n * args.seeds) * 1e6
                row = {"setting": f"{variant} {grid} {steps}", "variant": variant, "grid": grid, "steps": steps,
                       "us_per_jet": round(us, 1), "metrics": spread(values),
                       "speed_up_vs_pythia": round(pythia_us / us, 2) if pythia_us else None}
                rows.append(row)
                print(f"{row['setting']:24s} {us:9.1f} µs/jet  " + fmt(row["metrics"]))
    return rows


def fmt(metrics: dict) -> str:
    return "  ".join(f"{k} {v[0]:.3g}±{v[1]:.2g}" for k, v in metrics.items())


if __name__ == "__main__":
    main()
