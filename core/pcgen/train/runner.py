"""A whole run: run folder, data, model, training, final evaluation and reports."""

from __future__ import annotations

import os

import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pcgen.config import ConfigError, ResolvedConfig, apply_overrides, read_toml, resolve, to_toml
from pcgen.plugins import PluginError
from pcgen.threads import available_cpus, configure_threads
from pcgen.safe_io import file_operation, make_new_dir, save_figure, write_text
from pcgen.train.data_prep import load_clouds, prepare
from pcgen.train.distributed import barrier, broadcast_object, init_distributed
from pcgen.train.trainer import Trainer


@dataclass
class RunResult:
    run_dir: Path
    completed: bool
    step: int
    table: Any = None
    stop_signal: int | None = None
    """The signal that stopped training early (SIGTERM, SIGUSR1), if one did."""


def new_run_dir(resolved: ResolvedConfig) -> Path:
    """``<run_dir>/<name>`` or ``<run_dir>/<plugin>-<timestamp>`` (``-1``, ``-2``, ... appended when taken);
    never reuses an existing folder, also when several runs start in the same instant."""
    run = resolved.run
    return make_new_dir(Path(run.run_dir) / (run.name or f"{run.plugin}-{time.strftime('%Y%m%d-%H%M%S')}"))


def resume_config(run_dir: Path, overrides: list[str], registry: Any) -> ResolvedConfig:
    """The saved config of a run folder, with optional ``--set`` overrides (e.g. a longer budget)."""
    saved = Path(run_dir) / "config.toml"
    if not saved.is_file():
        raise ConfigError(f"{run_dir} is not a pcgen run folder (no config.toml); pass the folder `pcgen run` made")
    return resolve(apply_overrides(read_toml(saved), overrides), registry)


def execute(
    resolved: ResolvedConfig,
    registry: Any,
    run_dir: Path | None = None,
    resume: bool = False,
    console: Console | None = None,
    show_progress: bool = True,
    final_eval: bool = True,
) -> RunResult:
    """Train (or continue) a run and, when training completes, evaluate it and write the reports.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) every rank calls this: they train together (see
    :mod:`pcgen.train.distributed`) and rank 0 alone writes the run folder, evaluates and reports.
    """
    with init_distributed(resolved.run.train.device) as ranks:
        if not ranks.is_main:
            console, show_progress = Console(stderr=True, quiet=True), False
        return _execute(resolved, registry, run_dir, resume, console or Console(stderr=True), show_progress,
                        final_eval, ranks.is_main)


def _execute(resolved: ResolvedConfig, registry: Any, run_dir: Path | None, resume: bool, console: Console,
             show_progress: bool, final_eval: bool, main: bool) -> RunResult:
    run = resolved.run
    spec = registry.model(run.plugin)
    torch.manual_seed(run.train.seed)
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    configure_threads(run.train.num_threads or max(1, available_cpus() // max(local_ranks, 1)))
    made_here = main and (run_dir is None or not Path(run_dir).exists())
    if main:
        run_dir = Path(run_dir) if run_dir else new_run_dir(resolved)
        with file_operation("create the run folder", run_dir):
            run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "config.toml", to_toml(resolved.to_dict()), "run's config")
    run_dir = Path(broadcast_object(str(run_dir)))

    kind = registry.dataset(run.data.dataset).kind
    check_metric_names(registry, kind, run.eval)
    if not main:
        barrier()  # rank 0 makes (and caches) the data first
    clouds = load_clouds(resolved, registry, progress=show_progress)
    if main:
        barrier()
    data = prepare(clouds, resolved, spec, kind)
    try:
        model = registry.build_model(spec, resolved.model, data.info)
    except PluginError:
        if made_here:  # a plugin that cannot build its model leaves no run folder behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    recipe = registry.recipe(spec.recipe).recipe_class(model, resolved.recipe)
    trainer = Trainer(resolved, spec, recipe, data, run_dir, registry, console, show_progress)
    if resume:
        trainer.restore(run_dir / "checkpoints" / "last.pt")
        console.print(f"resuming {run_dir} at step {trainer.state.step}")
    trainer.logger.text("config", "```toml\n" + to_toml(resolved.to_dict()) + "\n```")
    ranks = trainer.ranks
    on = f"device {trainer.device}" + (f" x {ranks.world_size} ranks" if ranks.distributed else "")
    console.print(f"[bold]{spec.name}[/]: {sum(p.numel() for p in model.parameters()):,} parameters; "
                  f"{len(data.train):,} training / {len(data.test):,} held-out clouds; {on}")
    completed = trainer.fit()
    table = None
    if completed and final_eval and main:
        table = final_evaluation(trainer, console, show_progress)
    trainer.logger.close()
    return RunResult(run_dir=run_dir, completed=completed, step=trainer.state.step, table=table,
                     stop_signal=trainer.stop_signal)


GENERATION_BATCH = 256
"""Clouds per generation call in the final evaluation (also the progress bar's step)."""


@contextlib.contextmanager
def sampling_progress(console: Console, description: str, total: int, enabled: bool) -> Iterator[Any]:
    """A progress bar over generated clouds; yields ``advance(count)``."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not enabled) as bar:
        task = bar.add_task(description, total=total)
        yield lambda count: bar.advance(task, count)


def check_metric_names(registry: Any, kind: str, ev: Any) -> None:
    """Fail before training when ``eval.metrics`` or ``eval.during_training`` names a metric that does
    not exist for this kind of data."""
    from pcgen.metrics.evaluate import metrics_for_kind, select_specs, training_metrics

    try:
        training_metrics(registry, kind, ev.during_training)
        select_specs(metrics_for_kind(registry, kind), ev)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def row_name(spec_name: str, variants: tuple[str, ...], variant: str) -> str:
    """Table row of a sampling variant: the model's name, with the variant when it has several."""
    return spec_name if len(variants) == 1 else f"{spec_name} ({variant})"


def final_evaluation(trainer: Trainer, console: Console, show_progress: bool = True) -> Any:
    """Metrics of generated vs held-out clouds with the truth baseline (the JetNet protocol for jets, shower
    observables for showers); reports and figures in the run folder.

    A model with several sampling variants gets one row (and one samples file) per variant.
    """
    from pcgen.data.store import write_pointclouds
    from pcgen.metrics.evaluate import PHYSICS_DISTANCES, efp_normalisation, evaluate, metrics_for_kind, select_specs
    from pcgen.plots import figure_for_kind, multiplicity_figure

    run, data, spec = trainer.resolved.run, trainer.data, trainer.spec
    variants = trainer.recipe.model.variants
    n = min(run.eval.num_jets, len(data.test), len(data.train))
    real = data.test.subset(slice(0, n))
    reference = data.train.subset(slice(0, n))
    specs = metrics_for_kind(trainer.registry, data.info.kind)
    normalisation = None
    if run.eval.protocol == "pcgen" and any(s.name in PHYSICS_DISTANCES for s in select_specs(specs, run.eval)):
        # FPD/KPD features: one normalisation per data set, from the whole training split (kept in metrics.json).
        normalisation = efp_normalisation(data.train, f"training split ({len(data.train)} jets)")
    fakes, table = {}, None
    for i, variant in enumerate(variants):
        name = row_name(spec.name, variants, variant)
        with sampling_progress(console, f"sampling {name}", n, show_progress) as advance:
            fake = trainer.trained_model().generate(n, batch_size=GENERATION_BATCH, seed=run.train.seed + 1,
                                                    device=trainer.device, variant=variant, progress=advance)
        write_pointclouds(fake, trainer.run_dir / ("samples.h5" if i == 0 else f"samples-{variant}.h5"))
        part = evaluate(real, fake, reference if i == 0 else None, specs, run.eval, progress=show_progress,
                        model_name=name, normalisation=normalisation)
        table = part if table is None else table.add_rows(part)
        fakes[name] = fake
        trainer.log_observables(real, fake, trainer.state.step, "generated" if i == 0 else f"generated-{variant}")
    write_text(trainer.run_dir / "metrics.json", json.dumps(table.to_dict(), indent=2), "metrics file")
    write_text(trainer.run_dir / "metrics.md", table.to_markdown() + "\n", "metrics file")
    for name, figure in (("distributions", figure_for_kind(data.info.kind, real, fakes)),
                         ("multiplicity", multiplicity_figure(real, fakes))):
        save_figure(figure, trainer.run_dir / f"{name}.png", bbox_inches="tight")
        trainer.logger.figure(f"final/{name}", figure, trainer.state.step)
    flat = {metric: value for metric, (value, _err) in table.rows[row_name(spec.name, variants, variants[0])].items()}
    trainer.logger.hparams(trainer.resolved.to_dict(), flat)
    console.print(table.to_rich())
    console.print(f"run folder: {trainer.run_dir}")
    return table
