"""Train the seed models on one GPU, all at once, within a fixed wall-clock budget (run it through
``benchmarks/gpu_train.sh``): one ``pcgen run`` per model, side by side on the same GPU, each with the
recipe of its CPU-trained card and ``train.total_budget_minutes`` so that every run (in-training
evaluations and the final one included) ends in time.

Under ``--out`` it writes what a lent machine can send back: ``summary.md`` / ``summary.json`` (steps,
steps/s, in-training W1M/W1P curves, each run's final metrics on 1,000 held-out jets) and the runs
themselves (config, slim checkpoints without optimiser state, weights in float16, TensorBoard logs,
metrics) as ``runs.tar`` in parts of at most 15 MiB. On this machine, ``--unpack`` turns the parts
back into run folders that ``benchmarks/trained_models.py`` and ``pcgen export`` read:

    benchmarks/gpu_train.sh --minutes 6.5                                    # on the GPU machine
    .venv/bin/python benchmarks/gpu_train.py --unpack DIR --runs /work/runs  # here, afterwards
    .venv/bin/python benchmarks/gpu_train.py --device cpu --minutes 0.5 --plugins igapt,epic-fm  # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent

RECIPES: dict[str, list[str]] = {
    # The settings of each model's CPU-trained card (see its training_command), nothing GPU-specific.
    "igapt": [],
    "mdma": [],
    "gast": [],
    "epic-gan": [],
    "epic-fm": ["model.weight_norm=false", "train.batch_size=256", "recipe.warmup_steps=500", "model.solver_steps=20"],
    "tf-refiner": [],
    "omnijet": ["recipe.fractions.tokenizer=0.15", "recipe.fractions.gpt=0.85", "model.dropout=0.1"],
}
COMMON = ["data.num_jets=50000", "eval.num_jets=1000", "eval.efp=false", "train.time_budget_minutes=0"]
CHECKPOINTS: dict[str, tuple[str, ...]] = {"tf-refiner": ("best",), "omnijet": ("last",)}
"""Checkpoints sent back per model (default: best and last); the two large models send only the one their
CPU card samples from, so that everything fits in what a lent machine returns (64 MiB)."""
SUFFIX = "-gpu"
PART_BYTES = 15 * 2**20
RETURN_BYTES = 60 * 2**20


def launch(plugin: str, work: Path, device: str, minutes: float, threads: int, every: int) -> subprocess.Popen[bytes]:
    """One ``pcgen run`` of ``plugin`` in the background (evaluating and checkpointing every ``every``
    steps), its output in ``work/<plugin>.log``."""
    settings = [f"run_dir={work}", f"name={plugin}{SUFFIX}", f"train.device={device}", f"train.num_threads={threads}",
                f"train.total_budget_minutes={minutes}", f"train.eval_every={every}", f"train.checkpoint_every={every}",
                *COMMON, *RECIPES[plugin]]
    python = [sys.executable, *(["-S"] if sys.flags.no_site else [])]  # a child sees the packages its parent sees
    command = [*python, "-m", "pcgen", "run", "--plugin", plugin, "--quiet"]
    command += [arg for setting in settings for arg in ("--set", setting)]
    log = open(work / f"{plugin}.log", "wb")  # noqa: SIM115 - closed when the process ends (see wait_all)
    log.write((" ".join(command) + "\n").encode())
    log.flush()
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)


def wait_all(processes: dict[str, subprocess.Popen[bytes]], deadline: float) -> dict[str, int | None]:
    """Wait for every run; at ``deadline`` stop those still running (SIGTERM, pcgen's stop request: they
    checkpoint and stop), and kill them 30 s later. Returns each run's exit status (None: killed)."""
    codes: dict[str, int | None] = {}
    interrupted = False
    while len(codes) < len(processes):
        for name, process in processes.items():
            if name not in codes and process.poll() is not None:
                codes[name] = process.returncode
                print(f"{time.strftime('%H:%M:%S')} {name} ended with exit status {process.returncode}", flush=True)
        now = time.time()
        if now > deadline and not interrupted:
            interrupted = True
            for name, process in processes.items():
                if name not in codes:
                    print(f"{name}: past the deadline, asked to stop", flush=True)
                    os.killpg(process.pid, signal.SIGTERM)
        if now > deadline + 30:
            for name, process in processes.items():
                if name not in codes:
                    os.killpg(process.pid, signal.SIGKILL)
                    codes[name] = None
        time.sleep(2)
    return codes


def scalar_curves(run: Path) -> dict[str, list[tuple[int, float]]]:
    """``tag -> [(step, value), ...]`` of the in-training metrics, steps/s and stage in a run's TensorBoard log."""
    sys.path.insert(0, str(Path(__file__).parent))
    from trained_models import tensorboard_scalars

    return tensorboard_scalars(run, lambda t: t.startswith("metrics/") or t in ("time/steps_per_second", "stage"))


def slim_checkpoint(source: Path, target: Path) -> dict[str, Any]:
    """Copy a checkpoint without optimiser state and random-generator state, the model's floating
    tensors in float16 (what a card then measures and ships); returns its training loop state."""
    payload = torch.load(source, map_location="cpu", weights_only=True)
    for key in ("recipe", "rng_torch", "rng_cuda"):
        payload.pop(key, None)
    payload["model"] = {k: v.half() if v.is_floating_point() else v for k, v in payload["model"].items()}
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, target)
    return dict(payload["loop"])


def collect(plugin: str, work: Path, stage: Path, code: int | None) -> dict[str, Any]:
    """One row of the summary; the run's small files and slim checkpoints copied into ``stage``."""
    run = work / f"{plugin}{SUFFIX}"
    row: dict[str, Any] = {"plugin": plugin, "exit_status": code, "run": run.name}
    if not (run / "config.toml").is_file():
        row["error"] = "no run folder (see the log)"
        return row
    target = stage / run.name
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.toml", "metrics.json", "metrics.md", "distributions.png"):
        if (run / name).is_file():
            shutil.copy2(run / name, target / name)
    if (run / "tensorboard").is_dir():
        shutil.copytree(run / "tensorboard", target / "tensorboard", dirs_exist_ok=True)
    for which in CHECKPOINTS.get(plugin, ("best", "last")):
        source = run / "checkpoints" / f"{which}.pt"
        if source.is_file():
            row[which] = slim_checkpoint(source, target / "checkpoints" / f"{which}.pt")
    try:
        row["curves"] = scalar_curves(run)
    except Exception as err:  # noqa: BLE001 - a summary without curves is still worth sending back
        row["curves_error"] = repr(err)
    if (run / "metrics.json").is_file():
        table = json.loads((run / "metrics.json").read_text())
        row["final_metrics"] = table
    return row


def markdown(rows: list[dict[str, Any]], device: str, minutes: float) -> str:
    lines = [f"# GPU training: {len(rows)} runs side by side on {device}, {minutes:g} minutes each", "",
             "| model | exit | steps | steps/s | best W1M (step) | last W1M | last W1P |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        curves = row.get("curves", {})
        w1m, w1p = curves.get("metrics/w1m", []), curves.get("metrics/w1p", [])
        loop = row.get("last", {})
        steps = loop.get("step", "")
        rate = f"{steps / loop['elapsed']:.1f}" if loop.get("elapsed") else ""
        best = min(w1m, key=lambda p: p[1]) if w1m else None
        lines.append(f"| {row['plugin']} | {row['exit_status']} | {steps} | {rate} | "
                     f"{f'{best[1] * 1e3:.2f} ({best[0]})' if best else ''} | "
                     f"{f'{w1m[-1][1] * 1e3:.2f}' if w1m else ''} | {f'{w1p[-1][1] * 1e3:.3f}' if w1p else ''} |")
    return "\n".join(lines) + "\n\nW1M and W1P ×10⁻³, in-training evaluations on 1,000 held-out jets.\n"


def pack(stage: Path, out: Path) -> list[Path]:
    """``stage`` as ``runs.tar.partNN`` files of at most 15 MiB in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    archive = out / "runs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(stage, arcname="runs")
    parts = []
    with open(archive, "rb") as whole:
        while chunk := whole.read(PART_BYTES):
            part = out / f"runs.tar.part{len(parts):02d}"
            part.write_bytes(chunk)
            parts.append(part)
    archive.unlink()
    total = sum(p.stat().st_size for p in parts)
    if total > RETURN_BYTES:
        print(f"warning: the runs take {total / 2**20:.0f} MiB; a lent machine returns at most 64 MiB in 8 files, "
              "so the last parts would not come back", flush=True)
    return parts


def unpack(folder: Path, runs: Path) -> None:
    """Join ``runs.tar.part*`` from ``folder`` and extract the run folders into ``runs``."""
    parts = sorted(folder.glob("runs.tar.part*"))
    if not parts:
        raise SystemExit(f"no runs.tar.part* files in {folder}")
    joined = runs / "gpu-runs.tar"
    runs.mkdir(parents=True, exist_ok=True)
    with open(joined, "wb") as whole:
        for part in parts:
            whole.write(part.read_bytes())
    with tarfile.open(joined) as tar:
        for member in tar.getmembers():
            name = Path(member.name)
            if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
                raise SystemExit(f"refusing archive entry {member.name}")
            member.name = str(Path(*name.parts[1:])) if len(name.parts) > 1 else "."
        tar.extractall(runs, filter="data")
    joined.unlink()
    print(f"run folders in {runs}: " + ", ".join(sorted(p.name for p in runs.glob(f"*{SUFFIX}"))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/gpu_train")
    parser.add_argument("--work", type=Path, default=Path("/tmp/pcgen-gpu-runs"), help="where the runs train")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--minutes", type=float, default=6.5, help="each run's whole budget (train.total_budget_minutes)")
    parser.add_argument("--grace", type=float, default=1.5, help="minutes past the budget before a run is interrupted")
    parser.add_argument("--plugins", default=",".join(RECIPES))
    parser.add_argument("--every", type=int, default=500, help="steps between in-training evaluations and checkpoints")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per run (0: the CPUs / runs, at least 1)")
    parser.add_argument("--unpack", type=Path, help="join and extract the parts in this folder (with --runs), then stop")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="with --unpack: where the run folders go")
    args = parser.parse_args()
    if args.unpack:
        unpack(args.unpack, args.runs)
        return
    plugins = [p.strip() for p in args.plugins.split(",") if p.strip()]
    unknown = [p for p in plugins if p not in RECIPES]
    if unknown:
        raise SystemExit(f"unknown plugin(s) {unknown}; known: {', '.join(RECIPES)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch sees no GPU here; use --device cpu for a smoke test")
    threads = args.threads or max(1, (os.cpu_count() or 1) // len(plugins))
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    start = time.time()
    device = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "CPU"
    print(f"{time.strftime('%H:%M:%S')} {len(plugins)} runs on {device}, {args.minutes:g} min each, {threads} threads each",
          flush=True)
    processes = {p: launch(p, args.work, args.device, args.minutes, threads, args.every) for p in plugins}
    codes = wait_all(processes, start + 60 * (args.minutes + args.grace))
    stage = args.work / "stage"
    stage.mkdir(parents=True, exist_ok=True)  # the logs go there even when no run got as far as its folder
    rows = [collect(p, args.work, stage, codes[p]) for p in plugins]
    for p in plugins:
        shutil.copy2(args.work / f"{p}.log", stage / f"{p}.log")
    summary = {"device": device, "minutes": args.minutes, "threads_per_run": threads, "torch": torch.__version__,
               "cpus": os.cpu_count(), "wall_seconds": time.time() - start, "rows": rows}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    (args.out / "summary.md").write_text(markdown(rows, device, args.minutes))
    parts = pack(stage, args.out)
    print(markdown(rows, device, args.minutes))
    for p in plugins:  # the end of each log: what went wrong, if anything did
        tail = (args.work / f"{p}.log").read_text(errors="replace").strip().splitlines()[-4:]
        print(f"--- {p}.log\n" + "\n".join(tail))
    print(f"{time.strftime('%H:%M:%S')} done in {time.time() - start:.0f} s; {len(parts)} parts, "
          f"{sum(p.stat().st_size for p in parts) / 2**20:.1f} MiB in {args.out}", flush=True)


if __name__ == "__main__":
    main()
