"""The GPU check (run it through ``benchmarks/gpu_check.sh``): generation µs/jet at the best batch for N=30 and
N=150, training jets/s per plugin in fp32, bf16-mixed and compiled, and a short ``pcgen compare``; writes
the tables for docs/results.md into ``--out``.

    .venv/bin/python benchmarks/gpu_check.py --device cuda --out benchmarks/results/gpu_check
    .venv/bin/python benchmarks/gpu_check.py --device cpu --small       # the same, end to end, CPU-sized

Generation times ``TrainedModel``'s path without the scaler (``model.sample`` under
``torch.inference_mode``) of an untrained model at its paper configuration (the cost does not depend
on the weights), the batch doubling until memory runs out (or ``--max-batch``). Training times the
plugin's recipe on random clouds in model space, as ``benchmarks/training_speed.py`` does, with the
run's accelerator settings applied (TF32, fused optimisers, ``train.precision``, ``train.compile``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from training_speed import _build, _random_clouds, _stage_progresses  # noqa: E402

from pcgen.data.multiplicity import jet_condition, mask_for  # noqa: E402
from pcgen.data.pointclouds import JET_FEATURES  # noqa: E402
from pcgen.plugins import load_registry  # noqa: E402
from pcgen.specs import DataInfo  # noqa: E402
from pcgen.runtime.precision import Accelerator, autocast, compile_submodules  # noqa: E402
from pcgen.train.recipe import Batch, host_values  # noqa: E402

GAN_PLUGINS = ("igapt", "mdma", "gast", "epic-gan")
ALL_PLUGINS = ("igapt", "mdma", "gast", "epic-gan", "epic-fm", "tf-refiner", "omnijet")


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def generation_us(plugin: str, particles: int, device: torch.device, precision: str, compile_: bool,
                  max_batch: int) -> tuple[float, int]:
    """Best µs/jet over batches 256, 512, ... (until out of memory or ``max_batch``) and its batch."""
    spec = load_registry().model(plugin)
    torch.manual_seed(0)
    model = spec.build(spec.config_class(), DataInfo(particles, JET_FEATURES)).eval().to(device)
    if compile_:
        compile_submodules(model)
    best, best_batch, batch = float("inf"), 0, 256
    while batch <= max_batch:
        counts = torch.randint(max(1, particles // 3), particles + 1, (batch,))
        mask = mask_for(counts, particles).to(device)
        cond = jet_condition(mask)
        try:
            with torch.inference_mode(), autocast(device, precision):
                model.sample(mask, cond)  # warm-up (and compilation)
                synchronise(device)
                times = []
                for _ in range(3):
                    start = time.perf_counter()
                    model.sample(mask, cond)
                    synchronise(device)
                    times.append(time.perf_counter() - start)
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            break
        us = min(times) / batch * 1e6
        if us < best:
            best, best_batch = us, batch
        batch *= 2
    return best, best_batch


def training_jets_per_second(plugin: str, args: argparse.Namespace, device: torch.device, setting: str) -> dict:
    """Jets/s of training steps per stage of ``plugin`` at batch ``args.batch`` under ``setting``."""
    ns = argparse.Namespace(particles=args.particles, batch=args.batch)
    result = {}
    for label, progress in _stage_progresses(_build(plugin, ns, "fp32")[3]):
        _, _, resolved, recipe = _build(plugin, ns, setting)
        recipe.model.to(device)
        accelerator = Accelerator.from_config(resolved.run.train, device)
        accelerator.prepare(recipe)
        x, mask, cond = _random_clouds(args.batch, args.particles, 3, seed=1)
        batch = Batch(x, mask, cond).to(device)
        recipe.model.train()
        with accelerator.step_context():
            for step in range(3):  # warm-up (and compilation)
                recipe.training_step(batch, step, progress)
            synchronise(device)
            start, steps = time.perf_counter(), 0
            while time.perf_counter() - start < args.seconds or steps < 3:
                logs = recipe.training_step(batch, 3 + steps, progress)
                steps += 1
                if steps % 20 == 0:
                    host_values(logs)  # what logging costs, every 20 steps
            synchronise(device)
        result[label or "train"] = steps * args.batch / (time.perf_counter() - start)
    return result


def compare(args: argparse.Namespace, out: Path) -> str:
    """A short ``pcgen compare`` of two GANs; returns its metric table (Markdown)."""
    folder = out / "compare"
    sets = [f"train.device={args.device}", f"train.time_budget_minutes={args.compare_minutes}",
            f"data.num_jets={args.compare_jets}", f"eval.num_jets={min(args.compare_jets // 4, 5000)}",
            "train.eval_every=100000"]
    if args.small:
        sets += ["train.max_steps=10", "eval.efp=false", "data.num_particles=30", "train.batch_size=32"]
    command = [str(Path(sys.executable).parent / "pcgen"), "compare", "--plugins", "igapt,mdma", "--quiet",
               "--out", str(folder)]
    for s in sets:
        command += ["--set", s]
    subprocess.run(command, check=True)
    table = folder / "metrics.md"
    return table.read_text() if table.is_file() else "(no table written)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default="benchmarks/results/gpu_check")
    parser.add_argument("--small", action="store_true", help="CPU-sized: small batches, short times")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --device cpu --small to check the script on a CPU")
    small = args.small
    if small:
        torch.set_num_threads(1)  # small tensors on a shared CPU: one thread is fastest
    args.particles, args.batch = 30, 64 if small else 4096
    args.seconds = 0.5 if small else 4.0
    args.compare_minutes, args.compare_jets = (0.05, 400) if small else (1.0, 20_000)
    max_batch = 512 if small else 1 << 20
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    result: dict[str, Any] = {"device": name, "generation": [], "training": []}
    lines = [f"GPU check on {name}, torch {torch.__version__} (`benchmarks/gpu_check.sh`)", "",
             "| model | N | fp32 µs/jet (batch) | bf16 µs/jet (batch) | bf16 + compile µs/jet (batch) |",
             "|---|---|---|---|---|"]
    gen_plugins = GAN_PLUGINS if not small else ("igapt", "mdma")
    if small:  # check the compile path without minutes of code generation on a CPU
        import pcgen.runtime.precision

        pcgen.runtime.precision.COMPILE_BACKEND = "eager"
    for particles in (30, 150):
        for plugin in gen_plugins:
            cells = []
            for precision, compiled in (("32", False), ("bf16-mixed", False), ("bf16-mixed", True)):
                us, batch = generation_us(plugin, particles, device, precision, compiled, max_batch)
                result["generation"].append({"plugin": plugin, "N": particles, "precision": precision,
                                             "compile": compiled, "us_per_jet": us, "batch": batch})
                cells.append(f"{us:,.2f} ({batch:,})")
            lines.append(f"| {plugin} | {particles} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    lines += ["", f"Training jets/s at N={args.particles}, batch {args.batch}:", "",
              "| model | stage | fp32 | bf16-mixed | compile (fp32) |", "|---|---|---|---|---|"]
    train_plugins = ALL_PLUGINS if not small else ("igapt", "mdma")
    compiled = ("igapt", "mdma")
    for plugin in train_plugins:
        rates = {s: training_jets_per_second(plugin, args, device, s) if s != "compile" or plugin in compiled else {}
                 for s in ("fp32", "bf16", "compile")}
        for stage in rates["fp32"]:
            row = [f"{rates[s][stage]:,.0f}" if stage in rates[s] else "–" for s in ("fp32", "bf16", "compile")]
            result["training"].append({"plugin": plugin, "stage": stage, **{s: rates[s].get(stage) for s in rates}})
            lines.append(f"| {plugin} | {stage} | " + " | ".join(row) + " |")
            print(lines[-1], flush=True)
    lines += ["", "Short `pcgen compare --plugins igapt,mdma`:", "", compare(args, out)]
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {out / 'gpu_check.md'} (tables for docs/results.md)")


if __name__ == "__main__":
    main()
