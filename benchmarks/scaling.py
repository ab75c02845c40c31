"""Cost of a training step and of generation vs the number of particles N, per model, measured in one run.

    .venv/bin/python benchmarks/scaling.py [--plugins igapt gast mdma] [--particles 30 150 600 2400]
                                           [--batch 32] [--out docs/scaling]

Each (model, N) is measured in a fresh subprocess, so peak memory is that measurement's own:
on the CPU the growth of the process's peak resident memory over its state after building the model,
on a GPU ``torch.cuda.max_memory_allocated``. Times are the best of a few repetitions, in seconds
per training step (one critic and one generator update at a fixed batch size) and µs per generated
cloud. The table reports every cost as a ratio to the smallest N next to the ratio of N itself:
a model whose cost grows linearly in N has cost ratios near the N ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

REPEATS = 3


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(plugin: str, particles: int, batch: int, device_name: str) -> dict[str, float]:
    """One (model, N) measurement in this process."""
    from pcgen import DataInfo
    from pcgen.data.multiplicity import jet_condition, mask_for
    from pcgen.data.pointclouds import JET_FEATURES
    from pcgen.plugins import load_registry
    from pcgen.train.recipe import Batch

    device = torch.device(device_name)
    registry = load_registry()
    spec = registry.model(plugin)
    torch.manual_seed(0)
    model = spec.build(spec.config_class(), DataInfo(particles, JET_FEATURES)).to(device)
    recipe_spec = registry.recipe(spec.recipe)
    recipe = recipe_spec.recipe_class(model, recipe_spec.config_class(**spec.recipe_defaults))
    counts = torch.randint(max(1, particles // 2), particles + 1, (batch,))
    mask = mask_for(counts, particles).to(device)
    batch_data = Batch(torch.randn(batch, particles, 3, device=device) * mask.unsqueeze(-1), mask, jet_condition(mask))

    def timed(fn) -> float:  # noqa: ANN001
        best = float("inf")
        for _ in range(REPEATS):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        return best

    # Generation first: the process's peak memory only grows, and generating needs less than training.
    model.eval()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    before = rss_mib()
    with torch.no_grad():
        model.sample(mask, jet_condition(mask))
        gen_s = timed(lambda: model.sample(mask, jet_condition(mask)))
    gen_mem = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else rss_mib() - before
    model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    recipe.training_step(batch_data, 1000, 0.5)  # warm-up (past any warm-up of the schedule)
    step_s = timed(lambda: recipe.training_step(batch_data, 1000, 0.5))
    train_mem = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else rss_mib() - before
    return {"step_s": step_s, "train_peak_mib": train_mem, "us_per_jet": gen_s / batch * 1e6,
            "generate_peak_mib": gen_mem}


def run_all(plugins: list[str], particles: list[int], batch: int, device: str) -> list[dict]:
    rows = []
    for plugin in plugins:
        for n in particles:
            cmd = [sys.executable, __file__, "--one", plugin, str(n), "--batch", str(batch), "--device", device]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"{plugin} N={n}: failed\n{done.stderr[-800:]}", file=sys.stderr)
                continue
            row = {"plugin": plugin, "particles": n, **json.loads(done.stdout.strip().splitlines()[-1])}
            print(f"{plugin:8s} N={n:5d}  step {row['step_s']:.3f} s  train peak {row['train_peak_mib']:.0f} MiB  "
                  f"{row['us_per_jet']:.1f} µs/jet  generate peak {row['generate_peak_mib']:.0f} MiB", flush=True)
            rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| model | N | N ratio | s / train step | ratio | train peak MiB | µs / jet | ratio | generate peak MiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for plugin in dict.fromkeys(r["plugin"] for r in rows):
        mine = [r for r in rows if r["plugin"] == plugin]
        base = mine[0]
        for r in mine:
            lines.append(
                f"| {plugin} | {r['particles']} | {r['particles'] / base['particles']:.0f} | {r['step_s']:.3f} | "
                f"{r['step_s'] / base['step_s']:.1f} | {r['train_peak_mib']:.0f} | {r['us_per_jet']:.1f} | "
                f"{r['us_per_jet'] / base['us_per_jet']:.1f} | {r['generate_peak_mib']:.0f} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    for ax, key, label in zip(fig.subplots(1, 2), ("step_s", "us_per_jet"),
                              ("seconds per training step", "µs per generated jet"), strict=True):
        for plugin in dict.fromkeys(r["plugin"] for r in rows):
            mine = [r for r in rows if r["plugin"] == plugin]
            ax.plot([r["particles"] for r in mine], [r[key] for r in mine], "o-", label=plugin)
        first = rows[0]
        ns = sorted({r["particles"] for r in rows})
        ax.plot(ns, [first[key] * n / ns[0] for n in ns], "k--", lw=0.8, label="∝ N")
        ax.set(xscale="log", yscale="log", xlabel="particles per cloud N", ylabel=label)
        ax.legend()
    fig.suptitle(title)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", nargs="+", default=["igapt", "gast", "mdma"])
    parser.add_argument("--particles", nargs="+", type=int, default=[30, 150, 600, 2400])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", help="write OUT.json, OUT.md and OUT.png")
    parser.add_argument("--one", nargs=2, metavar=("PLUGIN", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), args.batch, args.device)))
        return
    rows = run_all(args.plugins, args.particles, args.batch, args.device)
    table = markdown(rows)
    print(table)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps({"device": args.device, "batch": args.batch, "rows": rows},
                                                       indent=2))
        out.with_suffix(".md").write_text(table + "\n")
        plot(rows, out.with_suffix(".png"), f"cost vs N, batch {args.batch}, {args.device}")


if __name__ == "__main__":
    main()
