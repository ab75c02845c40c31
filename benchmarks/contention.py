"""Speed on a shared CPU: the main job's training steps/s and sampling µs/jet, alone and next to busy
processes, for the default thread setting and each explicit one, measured in one run.

    .venv/bin/python benchmarks/contention.py [--seconds 25] [--busy 2] [--json out.json]
    .venv/bin/python benchmarks/contention.py --main-job-repeats 3 --seconds 30   # the main job's ratio only

Each measurement is a fresh process (the OpenMP wait policy is read when torch loads):

- ``default``: what ``pcgen`` does with no option (threads = the CPUs the process may use,
  ``OMP_WAIT_POLICY=PASSIVE``);
- ``old default``: torch's own thread count and OpenMP's default waiting (what pcgen did before);
- ``threads=N``: ``pcgen --threads N`` (passive waiting);

sampling with ``default`` and ``threads=N`` shares the batches out to one-thread generation processes
(``generation_workers``: N, or the CPUs the process may use); ``old default`` samples in one process;

in two conditions: alone, and next to ``--busy`` processes that each keep one core busy (pure-Python
loops, as a second job or a test suite would). Training: iGAPT on the default data (the README's main
job), steps/s over ``--seconds`` of training after a warm-up. Sampling: the shipped ``epic-fm-top30``
(20 midpoint steps), µs/jet over a few batches. Prints a table of ratios to the best explicit setting
in each condition, and each setting's slowdown next to the busy processes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SETTINGS = ("default", "old default", "threads=1", "threads=2")


def environment(setting: str) -> dict[str, str]:
    """The environment of a worker process for a thread ``setting``."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "PCGEN_THREADS")}
    if setting == "old default":
        env["PCGEN_OLD_THREADS"] = "1"
    elif setting.startswith("threads="):
        env["PCGEN_THREADS"] = setting.split("=")[1]
    return env


def worker(task: str, seconds: float) -> dict[str, float]:
    """Run inside a fresh process: measure ``task`` ('train' or 'sample') with this process's thread setting."""
    if os.environ.get("PCGEN_OLD_THREADS"):
        os.environ["OMP_WAIT_POLICY"] = ""  # pcgen keeps a policy the user set; an empty one is OpenMP's default
        import torch  # noqa: F401 - loads OpenMP before pcgen could choose passive waiting

        threads = None
    else:
        threads = int(os.environ.get("PCGEN_THREADS", "0"))
    import torch

    from pcgen.plugins import load_registry
    from pcgen.threads import configure_threads

    if threads is not None:
        configure_threads(threads)
    registry = load_registry()
    result: dict[str, float] = {"threads": float(torch.get_num_threads())}
    if task == "train":
        result.update(train_speed(registry, seconds, int(os.environ.get("PCGEN_BUSY_AFTER", "0"))))
    else:
        from pcgen.threads import generation_workers

        workers = 1 if threads is None else generation_workers()  # before: one process, torch's threads
        result.update(sample_speed(registry, seconds, workers), workers=float(workers))
    return result


def train_speed(registry: Any, seconds: float, busy_after: int = 0) -> dict[str, float]:
    """Training steps/s of the main job (iGAPT, default data and settings) after a short warm-up; with
    ``busy_after``, that many busy processes start after the warm-up and the measurement begins once the
    trainer's load follower has had time to look (``pcgen.threads.FOLLOW_SECONDS``)."""
    import torch

    from pcgen.threads import FOLLOW_SECONDS, follow_load

    from pcgen.config import load_config
    from pcgen.train.data_prep import load_clouds, prepare

    resolved = load_config(None, [], registry, plugin="igapt")
    spec = registry.model("igapt")
    data = prepare(load_clouds(resolved, registry, progress=False), resolved, spec, resolved.kind)
    from pcgen.train.recipe import Batch

    model = registry.build_model(spec, resolved.model, data.info)
    recipe = registry.recipe(spec.recipe).recipe_class(model, resolved.recipe)
    size = resolved.run.train.batch_size
    steps, start, step, hogs = 0, float("inf"), 0, []
    try:
        while True:
            idx = slice((step * size) % (len(data.x) - size), (step * size) % (len(data.x) - size) + size)
            recipe.training_step(Batch(data.x[idx], data.mask[idx], data.cond[idx]), step, 0.5)
            follow_load()  # as the trainer does after every step
            step += 1
            if step == 3:
                hogs = busy_processes(busy_after)
                start = time.perf_counter() + (FOLLOW_SECONDS + 2 if busy_after else 0)
            elif time.perf_counter() >= start:
                steps += 1
                if time.perf_counter() - start >= seconds:
                    return {"steps_per_second": steps / (time.perf_counter() - start),
                            "threads_at_end": float(torch.get_num_threads())}
    finally:
        for hog in hogs:
            hog.kill()


def sample_speed(registry: Any, seconds: float, workers: int) -> dict[str, float]:
    """µs per jet of the shipped epic-fm-top30 at 20 midpoint steps, over ``seconds`` of sampling by
    ``workers`` generation processes (``TrainedModel.generate``)."""
    from pcgen.pretrained import load_pretrained

    trained = load_pretrained("epic-fm-top30", registry, "cpu", ["model.solver_steps=20"])
    trained.generate(136, seed=0, workers=1)  # warm-up
    jets, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        trained.generate(544, seed=jets, workers=workers)
        jets += 544
    return {"us_per_jet": (time.perf_counter() - start) / jets * 1e6}


def busy_processes(count: int) -> list[subprocess.Popen]:
    """``count`` processes that each keep one core busy until killed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def measure(task: str, setting: str, seconds: float, busy_after: int = 0) -> dict[str, float]:
    env = {**environment(setting), "PCGEN_BUSY_AFTER": str(busy_after)}
    out = subprocess.run([sys.executable, __file__, "--worker", task, "--seconds", str(seconds)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=25.0, help="measured seconds per setting and task")
    parser.add_argument("--busy", type=int, default=2, help="busy processes in the contended condition")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--main-job-repeats", type=int, default=0,
                        help="measure only the main job's ratio (default setting, busy / alone), this many times in turn")
    parser.add_argument("--worker", choices=("train", "sample"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.seconds)))
        return
    if args.main_job_repeats:
        result = main_job_ratios(args.busy, args.seconds, args.main_job_repeats)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return
    results: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "busy": args.busy,
                               "seconds": args.seconds, "rows": {}}
    for condition in ("alone", f"next to {args.busy} busy processes"):
        hogs = busy_processes(args.busy) if condition != "alone" else []
        try:
            for task in ("train", "sample"):
                for setting in SETTINGS:
                    value = measure(task, setting, args.seconds)
                    results["rows"][f"{condition} | {task} | {setting}"] = value
                    print(condition, task, setting, value, flush=True)
        finally:
            for hog in hogs:
                hog.kill()
    for setting in SETTINGS:  # the load arrives after the run started (its threads were chosen on an idle machine)
        value = measure("train", setting, args.seconds, busy_after=args.busy)
        results["rows"][f"busy after the start | train | {setting}"] = value
        print("busy after the start", "train", setting, value, flush=True)
    print(to_markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def main_job_ratios(busy: int, seconds: float, repeats: int) -> dict[str, Any]:
    """The main job's training steps/s with the default setting, alone and next to ``busy`` busy
    processes, ``repeats`` times in turn (so that a slow minute of the machine hits both), and the ratios."""
    pairs = []
    for repeat in range(repeats):
        alone = measure("train", "default", seconds)
        hogs = busy_processes(busy)
        try:
            contended = measure("train", "default", seconds)
        finally:
            for hog in hogs:
                hog.kill()
        ratio = contended["steps_per_second"] / alone["steps_per_second"]
        pairs.append({"alone": alone, "busy": contended, "ratio": ratio})
        print(f"repeat {repeat + 1}: alone {alone['steps_per_second']:.2f} steps/s ({int(alone['threads'])} threads), "
              f"busy {contended['steps_per_second']:.2f} ({int(contended['threads_at_end'])} threads at the end): "
              f"{ratio:.0%}", flush=True)
    ratios = [p["ratio"] for p in pairs]
    print(f"main job busy / alone: mean {sum(ratios) / len(ratios):.0%}, lowest {min(ratios):.0%} ({repeats} repeats)")
    return {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "busy": busy, "seconds": seconds, "pairs": pairs}


def speed(value: dict[str, float]) -> float:
    """Higher is faster: steps/s, or jets per second from µs/jet."""
    return value["steps_per_second"] if "steps_per_second" in value else 1e6 / value["us_per_jet"]


def to_markdown(results: dict[str, Any]) -> str:
    """Per task and condition: each setting's speed, its ratio to the best explicit setting, and its
    slowdown next to the busy processes."""
    rows = results["rows"]
    conditions = list(dict.fromkeys(key.split(" | ")[0] for key in rows))
    lines = ["| task | setting | threads (processes x threads) | " + " | ".join(f"{c}: speed (ratio to best explicit)" for c in conditions)
             + " | slowdown when busy |", "|---|---|---|" + "---|" * (len(conditions) + 1)]
    for task in ("train", "sample"):
        unit = "steps/s" if task == "train" else "µs/jet"
        for setting in SETTINGS:
            cells = []
            for condition in conditions:
                if f"{condition} | {task} | {setting}" not in rows:
                    cells.append("-")
                    continue
                value = rows[f"{condition} | {task} | {setting}"]
                best = max(speed(rows[f"{condition} | {task} | {s}"]) for s in SETTINGS if s.startswith("threads="))
                shown = value.get("steps_per_second", value.get("us_per_jet"))
                at_end = f", {int(value['threads_at_end'])} threads at the end" if condition.startswith("busy after") else ""
                cells.append(f"{shown:.3g} {unit} ({speed(value) / best:.2f}{at_end})")
            alone, busy = (speed(rows[f"{c} | {task} | {setting}"]) for c in conditions[:2])
            first = rows[f"{conditions[0]} | {task} | {setting}"]
            threads = f"{int(first['workers'])} x 1" if first.get("workers", 1) > 1 else str(int(first["threads"]))
            lines.append(f"| {task} | {setting} | {threads} | " + " | ".join(cells) + f" | {alone / busy:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
