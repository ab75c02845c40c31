"""Training and sampling speed per plugin, this checkout against a baseline commit, measured in one run.

    .venv/bin/python benchmarks/training_speed.py [--baseline 86a969e] [--plugins igapt mdma]
                                                  [--rounds 3] [--seconds 6] [--json out.json]

Each plugin is built with its paper configuration (its defaults) for jets of ``--particles``
constituents and trained on random clouds in model space with its own recipe, batch
``--batch`` (default 128); a staged model is timed in each of its stages. The reported number is
jets per second of training steps (after two warm-up steps; the best of ``--window``-second windows
over ``--seconds``) and, for sampling, µs per generated jet of ``--sample-jets`` jets through
``TrainedModel.generate`` with its default batch size (what ``pcgen sample`` uses: 1,024 clouds per
pass in older code, cache-sized passes on the CPU since issue 13) or ``--sample-batch`` (the best
of 5 calls). Best-of-windows estimates the speed with the least
interference from other work on a shared machine.

The baseline is the commit ``--baseline`` checked out in a temporary ``git worktree`` and put
first on ``PYTHONPATH`` (its core and plugins); plugins it does not have are reported for this
checkout only. Every measurement runs in a fresh process, and baseline and current processes
alternate, plugin by plugin, for ``--rounds`` rounds: on a shared machine both sides see the same
load, and the medians and their ratio are robust to it. ``--settings`` adds settings measured on
this checkout only (``bf16`` = ``train.precision="bf16-mixed"``, ``compile`` = ``train.compile``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PLUGINS = ("igapt", "mdma", "gast", "tf-refiner", "omnijet", "epic-fm", "epic-gan")


# ------------------------------------------------------------------------------------------------
# Worker: one plugin, one code base, one process
# ------------------------------------------------------------------------------------------------


def _random_clouds(batch: int, particles: int, features: int, seed: int) -> tuple[Any, Any, Any]:
    import torch

    from pcgen.data.multiplicity import jet_condition, mask_for

    gen = torch.Generator().manual_seed(seed)
    counts = torch.randint(max(1, particles // 3), particles + 1, (batch,), generator=gen)
    mask = mask_for(counts, particles)
    x = (torch.rand(batch, particles, features, generator=gen) * 2 - 1) * mask.unsqueeze(-1)
    return x, mask, jet_condition(mask)


def _stage_progresses(recipe: Any) -> list[tuple[str, float]]:
    """(label, progress) at the middle of each stage of a staged recipe, else one ('', 0.5)."""
    stages = getattr(recipe, "stages", None)
    if not stages:
        return [("", 0.5)]
    return [(s.name, (s.start + s.end) / 2) for s in stages]


def _build(plugin: str, args: argparse.Namespace, setting: str) -> tuple[Any, Any, Any, Any]:
    import torch

    from pcgen.config import load_config
    from pcgen.plugins import load_registry
    from pcgen.data.pointclouds import JET_FEATURES
    from pcgen.specs import DataInfo

    registry = load_registry()
    sets = [f"data.num_particles={args.particles}", f"train.batch_size={args.batch}", "recipe.warmup_steps=0"]
    if setting == "bf16":
        sets.append('train.precision="bf16-mixed"')
    if setting == "compile":
        sets.append("train.compile=true")
    resolved = load_config(None, sets, registry, plugin=plugin)
    spec = registry.model(plugin)
    info = DataInfo(max_particles=args.particles, feature_names=JET_FEATURES, cond_dim=1)
    torch.manual_seed(0)
    model = spec.build(resolved.model, info)
    recipe = registry.recipe(spec.recipe).recipe_class(model, resolved.recipe)
    return registry, spec, resolved, recipe


def _accelerate(recipe: Any, resolved: Any) -> Any:
    """This checkout's accelerator settings applied to a recipe, if it has them (the baseline does not)."""
    try:
        from pcgen.runtime.precision import Accelerator
    except ImportError:
        return None
    accelerator = Accelerator.from_config(resolved.run.train, __import__("torch").device("cpu"))
    accelerator.prepare(recipe)
    return accelerator


def worker(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    from pcgen.train.recipe import Batch

    result: dict[str, Any] = {}
    for label, progress in _stage_progresses(_build(args.worker, args, args.setting)[3]):
        _, spec, resolved, recipe = _build(args.worker, args, args.setting)
        _accelerate(recipe, resolved)
        x, mask, cond = _random_clouds(args.batch, args.particles, 3, seed=1)
        batch = Batch(x, mask, cond)
        recipe.model.train()
        torch.manual_seed(1)
        for step in range(2):  # warm-up
            recipe.training_step(batch, step, progress)
        rates: list[float] = []
        total_start, step = time.perf_counter(), 2
        while time.perf_counter() - total_start < args.seconds or len(rates) < 3:
            start, done = time.perf_counter(), 0
            while time.perf_counter() - start < args.window or done == 0:
                logs = recipe.training_step(batch, step, progress)
                {k: float(v) for k, v in logs.items()}  # what a logging step costs: every value on the host
                step, done = step + 1, done + 1
            rates.append(done * args.batch / (time.perf_counter() - start))
        # the best window: the speed with the least interference from other work on a shared machine
        result[f"train{':' + label if label else ''}"] = max(rates)
    result["sample_us"] = _sample_us(args)
    return result


def _sample_us(args: argparse.Namespace) -> float:
    from pcgen.data.multiplicity import MultiplicitySampler
    from pcgen.data.preprocessing import FeatureScaler
    from pcgen.sampling import TrainedModel

    _, spec, _, recipe = _build(args.worker, args, "fp32")
    x, mask, _ = _random_clouds(2048, args.particles, 3, seed=2)
    trained = TrainedModel(spec=spec, model=recipe.model, scaler=FeatureScaler(spec.preprocessing).fit(x, mask),
                           multiplicity=MultiplicitySampler.from_mask(mask), data_info=recipe_info(args), config={})
    batch = {"batch_size": args.sample_batch} if args.sample_batch else {}  # 0: each code base's default
    trained.generate(args.sample_jets, seed=0, **batch)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        trained.generate(args.sample_jets, seed=0, **batch)
        best = min(best, time.perf_counter() - start)
    return best / args.sample_jets * 1e6


def recipe_info(args: argparse.Namespace) -> Any:
    from pcgen.data.pointclouds import JET_FEATURES
    from pcgen.specs import DataInfo

    return DataInfo(max_particles=args.particles, feature_names=JET_FEATURES, cond_dim=1)


# ------------------------------------------------------------------------------------------------
# Driver: alternate baseline and current processes, report medians and ratios
# ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def baseline_checkout(commit: str) -> Any:
    """The baseline commit in a temporary git worktree; yields its PYTHONPATH (core + every plugin)."""
    with tempfile.TemporaryDirectory(prefix="pcgen-baseline-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit], check=True,
                       capture_output=True)
        try:
            parts = [str(path / "core"), *(str(p) for p in sorted((path / "plugins").iterdir()) if p.is_dir())]
            yield os.pathsep.join(parts)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False,
                           capture_output=True)


def run_worker(plugin: str, setting: str, args: argparse.Namespace, pythonpath: str | None) -> dict[str, Any] | None:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    command = [sys.executable, __file__, "--worker", plugin, "--setting", setting, "--seconds", str(args.seconds), "--window", str(args.window),
               "--batch", str(args.batch), "--particles", str(args.particles), "--threads", str(args.threads),
               "--sample-batch", str(args.sample_batch), "--sample-jets", str(args.sample_jets)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["?"]
        print(f"  {plugin} [{setting}, {'baseline' if pythonpath else 'current'}] failed: {tail[0]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def available_plugins(requested: list[str]) -> list[str]:
    from pcgen.plugins import load_registry

    names = set(load_registry().models)
    return [p for p in requested if p in names]


def drive(args: argparse.Namespace) -> dict[str, Any]:
    plugins = available_plugins(args.plugins)
    samples: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    with baseline_checkout(args.baseline) as baseline_path:
        for round_ in range(args.rounds):
            for plugin in plugins:
                order = [("baseline", baseline_path), ("current", None)]
                for side, path in order if round_ % 2 == 0 else order[::-1]:
                    value = run_worker(plugin, "fp32", args, path)
                    if value is not None:
                        samples.setdefault((plugin, "fp32", side), []).append(value)
                for setting in args.settings:
                    value = run_worker(plugin, setting, args, None)
                    if value is not None:
                        samples.setdefault((plugin, setting, "current"), []).append(value)
                print(f"round {round_ + 1}/{args.rounds}: {plugin} done", file=sys.stderr)
    return summarise(samples, plugins, args)


def _median(values: list[dict[str, Any]], key: str) -> float | None:
    found = [v[key] for v in values if key in v]
    return statistics.median(found) if found else None


def summarise(samples: dict[tuple[str, str, str], list[dict[str, Any]]], plugins: list[str],
              args: argparse.Namespace) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for plugin in plugins:
        current = samples.get((plugin, "fp32", "current"), [])
        baseline = samples.get((plugin, "fp32", "baseline"), [])
        keys = sorted({k for v in current for k in v})
        for key in keys:
            row: dict[str, Any] = {"plugin": plugin, "measure": key,
                                   "baseline": _median(baseline, key), "current": _median(current, key)}
            for setting in args.settings:
                row[setting] = _median(samples.get((plugin, setting, "current"), []), key)
            if row["baseline"] and row["current"]:
                ratio = row["current"] / row["baseline"]
                row["speed_up"] = 1 / ratio if key == "sample_us" else ratio
            rows.append(row)
    return {"baseline": args.baseline, "batch": args.batch, "particles": args.particles, "threads": args.threads,
            "rounds": args.rounds, "rows": rows}


def markdown(result: dict[str, Any], settings: list[str]) -> str:
    head = ["plugin", "measure", f"{result['baseline']}", "this checkout", "speed-up", *settings]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in result["rows"]:
        unit = "µs/jet" if row["measure"] == "sample_us" else "jets/s"
        cells = [row["plugin"], row["measure"].replace("sample_us", "sampling") + f" ({unit})"]
        for key in ("baseline", "current"):
            cells.append("–" if row[key] is None else f"{row[key]:,.1f}")
        cells.append(f"{row['speed_up']:.2f}x" if row.get("speed_up") else "–")
        cells += ["–" if row.get(s) is None else f"{row[s]:,.1f}" for s in settings]
        lines.append("| " + " | ".join(cells) + " |")
    train = [r["speed_up"] for r in result["rows"] if r.get("speed_up") and r["measure"] != "sample_us"]
    sample = [r["speed_up"] for r in result["rows"] if r.get("speed_up") and r["measure"] == "sample_us"]
    if train:
        lines.append(f"\nmedian training speed-up {statistics.median(train):.2f}x (min {min(train):.2f}x)")
    if sample:
        lines.append(f"median sampling speed-up {statistics.median(sample):.2f}x (min {min(sample):.2f}x)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", nargs="+", default=list(DEFAULT_PLUGINS))
    parser.add_argument("--baseline", default="86a969e", help="commit to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0, help="timed training seconds per stage and process")
    parser.add_argument("--window", type=float, default=1.0, help="seconds per timing window (the best counts)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--particles", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadiest on a shared machine)")
    parser.add_argument("--sample-jets", type=int, default=1024, help="jets per timed generate() call")
    parser.add_argument("--sample-batch", type=int, default=0,
                        help="clouds per forward pass; 0 = what generate() picks by default in each code base")
    parser.add_argument("--settings", nargs="*", default=[], choices=["bf16", "compile"])
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--setting", default="fp32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    # a stopped run still removes its temporary worktree (the context manager's cleanup runs)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = drive(args)
    print(markdown(result, args.settings))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
