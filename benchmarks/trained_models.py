"""The zoo's trained models on one protocol: metrics over several sampling seeds against a truth row,
and W1M against training time, from run folders trained on the same data.

    .venv/bin/python benchmarks/trained_models.py --runs runs/epic-fm-top30 runs/mdma-top30:best \
        --jets 3000 --seeds 3 --json docs/trained.json --markdown docs/trained.md \
        --figure docs/figures/trained_w1m_vs_time.png

Every row compares with the same real jets: held-out jets ``[offset, offset + jets)`` of the runs'
fixed split (the first ``offset`` held-out jets are the ones in-training evaluations, and so the
best checkpoint, saw). The truth row compares them with further disjoint held-out slices of the
same size, one value per slice; a model row is the mean over ``--seeds`` sampling seeds, its error
the standard deviation over seeds. ``RUN:best`` evaluates ``checkpoints/best.pt`` (default: last); ``RUN:last:live`` or ``RUN:best:live``
samples from the live weights instead of the weight average (EMA), to measure what the average gives.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pcgen.config import EvalConfig, read_toml, resolve
from pcgen.data.pointclouds import PointClouds
from pcgen.leaderboard import metric_values
from pcgen.leaderboard import spread as leaderboard_spread
from pcgen.metrics.evaluate import efp_normalisation, metric_options, metrics_for_kind
from pcgen.metrics.distances import EFPNormalisation
from pcgen.plugins import load_registry
from pcgen.threads import configure_threads
from pcgen.sampling import load_trained
from pcgen.train.data_prep import load_clouds, prepare

METRICS = ("w1m", "w1p", "w1efp", "fpd", "kpd")


def held_out(run: Path, registry: Any) -> tuple[PointClouds, EFPNormalisation]:
    """The held-out split of a run's data, exactly as the run made it, and the FPD/KPD feature
    normalisation of its training split (pcgen's protocol, the same for every row)."""
    resolved = resolve(read_toml(run / "config.toml"), registry)
    spec = registry.model(resolved.run.plugin)
    data = prepare(load_clouds(resolved, registry, progress=False), resolved, spec, resolved.kind)
    return data.test, efp_normalisation(data.train, f"training split of {run.name}'s data")


def measure(real: PointClouds, other: PointClouds, registry: Any, norm: EFPNormalisation) -> dict[str, float]:
    specs = [s for s in metrics_for_kind(registry, "jets") if s.name in METRICS]
    values = metric_values(real, other, specs, metric_options(specs, EvalConfig(num_jets=len(real)), norm))
    return {s.name: values[s.name] * s.scale for s in specs}


def real_and_truth(test: PointClouds, start: int, n: int, pairs: int | None = None) -> tuple[PointClouds, list[PointClouds]]:
    """The real jets every row compares with (held-out ``[start, start + n)``) and the further disjoint
    held-out slices of ``n`` jets that make the truth row (at most ``pairs`` of them)."""
    slices = [test.subset(slice(a, a + n)) for a in range(start + n, len(test) - n + 1, n)]
    return test.subset(slice(start, start + n)), slices[:pairs]


def sampled_metrics(trained: Any, real: PointClouds, seeds: range, registry: Any, norm: EFPNormalisation,
                    batch_size: int = 500, variant: str | None = None,
                    label: str | None = None) -> tuple[list[dict[str, float]], float]:
    """The metrics of ``len(real)`` generated jets against ``real`` for each sampling seed, and the seconds
    generation took in all; with ``label``, each seed's values are printed."""
    values, seconds = [], 0.0
    for seed in seeds:
        begin = time.perf_counter()
        fake = trained.generate(len(real), batch_size=batch_size, seed=seed, variant=variant)
        seconds += time.perf_counter() - begin
        values.append(measure(real, fake, registry, norm))
        if label:
            print(f"  {label} seed {seed}: " + "  ".join(f"{k} {v:.3g}" for k, v in values[-1].items()), flush=True)
    return values, seconds


def spread(values: list[dict[str, float]]) -> dict[str, list[float]]:
    """``{metric: [mean, std]}`` over several measurements (std with ddof=1, 0 for one value)."""
    return {k: list(v) for k, v in leaderboard_spread(values).items()}


def without_weight_average(trained: Any) -> Any:
    """The same trained model sampling from its live weights: every weight average (EMA) made inactive."""
    from pcgen.nn import ParameterAverage

    for module in trained.model.modules():
        if isinstance(module, ParameterAverage):
            module.updates.zero_()
    return trained


def tensorboard_scalars(run: Path, keep: Callable[[str], bool]) -> dict[str, list[tuple[int, float]]]:
    """``tag -> [(step, value), ...]`` of the scalars in a run's TensorBoard log whose tag ``keep`` accepts."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"] if keep(tag)}


def w1m_curve(run: Path) -> list[tuple[float, float]]:
    """(training minutes, in-training W1M) pairs from a run's TensorBoard events."""
    scalars = tensorboard_scalars(run, lambda tag: tag in ("metrics/w1m", "time/steps_per_second"))
    if "metrics/w1m" not in scalars:
        return []
    rates = dict(scalars["time/steps_per_second"])
    steps = np.array(sorted(rates))
    curve = []
    for step, value in scalars["metrics/w1m"]:
        nearest = int(steps[np.argmin(np.abs(steps - step))])
        curve.append((step / rates[nearest] / 60, value))
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", required=True, help="run folders, RUN or RUN:best")
    parser.add_argument("--jets", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--offset", type=int, default=1000, help="held-out jets reserved for in-training evaluation")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="RUN=model.KEY=VALUE sampling setting")
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    parser.add_argument("--figure")
    parser.add_argument("--card", nargs=2, metavar=("RUN", "OUT"), action="append", default=[],
                        help="write the model-card fields of RUN (data recipe and fingerprint, hardware, metrics) to OUT")
    parser.add_argument("--replot", help="only redraw --figure from this JSON of an earlier run")
    parser.add_argument("--curves-only", action="store_true",
                        help="only draw --figure: the runs' in-training W1M against training minutes (TensorBoard), "
                             "with the truth band of 1,000 vs 1,000 real jets")
    parser.add_argument("--time-label", default="training time (CPU minutes)",
                        help="x axis of --figure (e.g. 'training time (minutes on one H200, 7 runs sharing it)')")
    parser.add_argument("--refresh-reproduce", nargs=2, metavar=("RUN", "CARD"),
                        help="only recompute the small-n 'reproduce' block of the card fields CARD (JSON) of RUN")
    parser.add_argument("--hardware", default="2-core x86_64 CPU (shared), no GPU, torch 2.13 CPU build, 1 thread")
    args = parser.parse_args()
    if args.replot:
        plot_curves(json.loads(Path(args.replot).read_text()), Path(args.figure), args.time_label)
        return
    configure_threads(1)  # what the cards' hardware line says: one torch thread, one generation process
    registry = load_registry()
    if args.refresh_reproduce:
        run, card_path = Path(args.refresh_reproduce[0]), Path(args.refresh_reproduce[1])
        card = json.loads(card_path.read_text())
        test, norm = held_out(run, registry)
        card["reproduce"] = reproduce_block(run, card["sampling"], test, norm, registry)
        card_path.write_text(json.dumps(card, indent=2) + "\n")
        print(card["reproduce"])
        return
    runs = [(Path(r.split(":")[0]), (r.split(":") + ["last"])[1], r.endswith(":live")) for r in args.runs]
    test, norm = held_out(runs[0][0], registry)
    if args.curves_only:
        real, truth_slices = real_and_truth(test, args.offset, 1000, pairs=5)
        curves: dict[str, Any] = {"jets": 1000, "rows": {
            "truth": {"metrics": spread([measure(real, s, registry, norm) for s in truth_slices])}}}
        for run, _which, _live in runs:
            curves["rows"][run.name] = {"plugin": read_toml(run / "config.toml")["plugin"], "curve": w1m_curve(run)}
        plot_curves(curves, Path(args.figure), args.time_label)
        return
    n, start = args.jets, args.offset
    real, truth_slices = real_and_truth(test, start, n)
    result: dict[str, Any] = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
                              "jets": n, "seeds": args.seeds, "rows": {}}
    print(f"real: held-out jets [{start}, {start + n}); truth: {len(truth_slices)} further disjoint slices of {n}")
    result["rows"]["truth"] = {"metrics": spread([measure(real, s, registry, norm) for s in truth_slices]),
                               "pairs": len(truth_slices)}
    print("truth", result["rows"]["truth"]["metrics"])
    for run, which, live in runs:
        overrides = [s.split("=", 1)[1] for s in args.sets if s.split("=", 1)[0] == run.name]
        trained = load_trained(run / "checkpoints" / f"{which}.pt", registry, overrides=overrides)
        label = f"{which}, live weights" if live else which
        if live:
            trained = without_weight_average(trained)
        values, seconds = sampled_metrics(trained, real, range(1000, 1000 + args.seeds), registry, norm,
                                          batch_size=1000, label=f"{run.name} {label}")
        config = read_toml(run / "config.toml")
        row = {"metrics": spread(values), "checkpoint": which, "plugin": config["plugin"],
               "sampling_us_per_jet": round(seconds / (n * args.seeds) * 1e6, 1), "overrides": overrides,
               "curve": w1m_curve(run)}
        result["rows"][f"{run.name} ({label})"] = row
        print(run.name, label, row["metrics"], f"{row['sampling_us_per_jet']} us/jet")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(to_markdown(result) + "\n")
    if args.figure:
        plot_curves(result, Path(args.figure), args.time_label)
    for run, out in args.card:
        row = next(r for name, r in result["rows"].items() if name.startswith(Path(run).name + " "))
        fields = card_fields(Path(run), row, result, args.hardware, registry)
        fields["reproduce"] = reproduce_block(Path(run), row, test, norm, registry)
        Path(out).write_text(json.dumps(fields, indent=2) + "\n")


def reproduce_block(run: Path, row: dict[str, Any], test: PointClouds, norm: EFPNormalisation, registry: Any,
                    jets: int = 1000, seeds: int = 5) -> dict[str, Any]:
    """W1M and W1P at a small sample size (``pcgen sample --n 1000`` then ``pcgen eval --n 1000``), over
    several seeds, with the truth spread at that size: what a test can check the shipped weights against.
    Each seed is compared with other real jets, so that the model's spread holds the reference's
    fluctuation too (a test compares with fresh real jets)."""
    trained = load_trained(run / "checkpoints" / f"{row['checkpoint']}.pt", registry, overrides=row["overrides"])
    real, truth_slices = real_and_truth(test, 1000, jets, pairs=seeds)
    references = [real, *truth_slices][:seeds]
    model = [sampled_metrics(trained, reference, range(seed, seed + 1), registry, norm)[0][0]
             for seed, reference in enumerate(references)]
    truth = [measure(real, other, registry, norm) for other in truth_slices]
    keep = ("w1m", "w1p")
    return {"jets": jets, "seeds": seeds,
            "model": {k: v for k, v in spread(model).items() if k in keep},
            "truth": {k: v for k, v in spread(truth).items() if k in keep}}


def card_fields(run: Path, row: dict[str, Any], result: dict[str, Any], hardware: str, registry: Any) -> dict[str, Any]:
    """What a model card holds beyond the checkpoint: data recipe and fingerprint, hardware, metrics."""
    config = read_toml(run / "config.toml")
    resolved = resolve(config, registry)
    clouds = load_clouds(resolved, registry, progress=False)
    data = resolved.run.data
    summary = (f"{data.num_jets:,} Pythia 8 + FastJet {data.jet_type} jets, N={data.num_particles}, "
               f"seed {data.seed}, split {data.train_fraction}/{data.split_seed}")
    metrics = {m: {"model": row["metrics"][m], "truth": result["rows"]["truth"]["metrics"][m]} for m in row["metrics"]}
    return {
        "model": config["plugin"],
        "data": {"summary": summary, "recipe": config["data"], "fingerprint": clouds.fingerprint(),
                 "command": f"pcgen data generate --jet-type {data.jet_type} --particles {data.num_particles} "
                            f"--jets {data.num_jets} --seed {data.seed}"},
        "hardware": hardware,
        "training_minutes": config["train"]["time_budget_minutes"],
        "metrics_protocol": (f"{result['jets']} generated vs {result['jets']} held-out jets (held-out slice "
                             f"[1000, {1000 + result['jets']})), mean ± std over {result['seeds']} sampling seeds; "
                             f"truth: the same real jets vs {result['rows']['truth']['pairs']} further disjoint "
                             "held-out slices; W1M, W1P, FPD and KPD x1e-3, W1EFP x1e-5; FPD/KPD with pcgen protocol (training-split quantile normalisation, 5 disjoint batch pairs)"),
        "metrics": metrics,
        "sampling": {"checkpoint": row["checkpoint"], "overrides": row["overrides"],
                     "us_per_jet": row["sampling_us_per_jet"]},
    }


def to_markdown(result: dict[str, Any]) -> str:
    head = "| row | " + " | ".join(m.upper() for m in METRICS) + " | sampling µs/jet |"
    lines = [head, "|" + "---|" * (len(METRICS) + 2)]
    for name, row in result["rows"].items():
        cells = [f"{row['metrics'][m][0]:.3g} ± {row['metrics'][m][1]:.2g}" if m in row["metrics"] else "-"
                 for m in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row.get('sampling_us_per_jet', '-')} |")
    return "\n".join(lines)


def plot_curves(result: dict[str, Any], path: Path, time_label: str = "training time (CPU minutes)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    drawn: set[str] = set()
    for row in result["rows"].values():
        if row.get("curve") and row["plugin"] not in drawn:
            drawn.add(row["plugin"])
            minutes, w1m = zip(*row["curve"], strict=True)
            ax.plot(minutes, np.asarray(w1m) * 1e3, marker="o", ms=3, label=row["plugin"])
    truth = result["rows"]["truth"]["metrics"]["w1m"]
    ax.axhspan(truth[0] - truth[1], truth[0] + truth[1], color="grey", alpha=0.3,
               label=f"truth, {result['jets']:,} vs {result['jets']:,} real jets")
    ax.set_yscale("log")
    ax.set_xlabel(time_label)
    ax.set_ylabel("in-training W1M (x1e-3, 1,000 held-out jets)")
    ax.legend()
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
