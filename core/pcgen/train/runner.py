"""A whole run: run folder, data, model, training, final evaluation and reports."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pcgen.config import ConfigError, ResolvedConfig, apply_overrides, read_toml, resolve, to_toml
from pcgen.data.pointclouds import PointClouds
from pcgen.safe_io import file_operation, make_new_dir, save_figure, write_text
from pcgen.sampling import TrainedModel
from pcgen.specs import KindSpec
from pcgen.threads import configure_threads
from pcgen.train.budget import FinalCost, check_total_budget, estimate_final_cost
from pcgen.train.data_prep import load_clouds, prepare, split
from pcgen.train.distributed import barrier, broadcast_object, init_distributed, is_distributed, rank_info
from pcgen.train.augment import Augmentation
from pcgen.train.init_weights import start_from
from pcgen.train.run_lock import run_folder_lock
from pcgen.train.trainer import Trainer, run_device


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


def run_split(run_dir: Path, registry: Any) -> tuple[Any, Any]:
    """The (training, held-out) clouds of a run folder's data, split exactly as the run split them (its
    config.toml's data set, ``data.train_fraction`` and ``data.split_seed``)."""
    resolved = resume_config(run_dir, [], registry)
    return split(load_clouds(resolved, registry, progress=False), resolved)


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
    Rank 0 holds the run folder's lock (:mod:`pcgen.train.run_lock`) from the start (``resume``) or from
    the folder's making to the end: another process on the same folder stops at once. With
    ``final_eval``, the final phase is estimated before training (:mod:`pcgen.train.budget`).
    """
    with init_distributed(resolved.run.train.device) as ranks:
        if not ranks.is_main:
            console, show_progress = Console(stderr=True, quiet=True), False
        return _execute(resolved, registry, run_dir, resume, console or Console(stderr=True), show_progress,
                        final_eval, ranks.is_main)


def _execute(resolved: ResolvedConfig, registry: Any, run_dir: Path | None, resume: bool, console: Console,
             show_progress: bool, final_eval: bool, main: bool) -> RunResult:
    """:func:`execute` on one rank. Every check that can refuse the run (a folder in use, data, batch size,
    the model's settings, the whole-run budget) comes before the run folder is made or written."""
    run = resolved.run
    spec = resolved.spec
    torch.manual_seed(run.train.seed)
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    configure_threads(run.train.num_threads, share=local_ranks)
    with contextlib.ExitStack() as held:
        if resume:  # an existing folder: stop at once when another process is training in it
            on_rank_zero(main, lambda: held.enter_context(run_folder_lock(Path(run_dir))))  # type: ignore[arg-type]
        if resolved.kind is not None:
            check_metric_names(registry, resolved.kind.name, run.eval)
        if not main:
            barrier()  # rank 0 makes (and caches) the data first
        clouds = load_clouds(resolved, registry, progress=show_progress)
        if main:
            barrier()
        kind = registry.kind_of(clouds)
        if resolved.kind is None:  # a file: its kind is known only now
            check_metric_names(registry, kind.name, run.eval)
        data = prepare(clouds, resolved, spec, kind)
        Augmentation(run.train, data.info.feature_names, data.scaler)  # bad names: refused before a run folder exists
        model = registry.build_model(spec, resolved.model, data.info)
        if run.train.init_weights and not resume:
            start_from(model, data.scaler, spec.name, run.train.init_weights, registry)
        recipe = resolved.recipe_spec.recipe_class(model, resolved.recipe)
        recipe.bind_data(data.info.feature_names, data.scaler)  # bad settings: refused before a run folder exists
        cost = on_rank_zero(main, lambda: final_cost(resolved, registry, spec, data, model)) if final_eval else None
        run_dir = Path(on_rank_zero(main, lambda: str(open_run_folder(resolved, run_dir, resume, held))))
        from pcgen.metrics.evaluate import metrics_for_kind

        metrics = metrics_for_kind(registry, kind.name)
        trainer = Trainer(resolved, spec, recipe, data, run_dir, metrics, registry.manager.hook, console, show_progress)
        trainer.final_seconds = cost.seconds if cost is not None else 0.0
        if resume:
            trainer.restore(run_dir / "checkpoints" / "last.pt")
            console.print(f"resuming {run_dir} at step {trainer.state.step}")
        trainer.logger.text("config", "```toml\n" + to_toml(resolved.to_dict()) + "\n```")
        ranks = trainer.ranks
        on = f"device {trainer.device}" + (f" x {ranks.world_size} ranks" if ranks.distributed else "")
        console.print(f"[bold]{spec.name}[/]: {sum(p.numel() for p in model.parameters()):,} parameters; "
                      f"{len(data.train):,} training / {len(data.test):,} held-out clouds; {on}")
        if cost is not None:
            console.print(cost.describe(), highlight=False)
        completed = trainer.fit()
        table = None
        if completed and final_eval and main:
            table = final_evaluation(trainer, console, show_progress)
        trainer.logger.close()
    return RunResult(run_dir=run_dir, completed=completed, step=trainer.state.step, table=table,
                     stop_signal=trainer.stop_signal)


T = TypeVar("T")


def on_rank_zero(main: bool, work: Callable[[], T]) -> T:
    """``work()`` on rank 0, its result shared with every rank; when it fails, every rank raises its
    error (no rank is left waiting for one that stopped). In a single process: ``work()``."""
    if not is_distributed():
        return work()
    outcome: tuple[bool, Any] = (True, None)
    if main:
        try:
            outcome = (True, work())
        except Exception as err:
            broadcast_object((False, err if _picklable(err) else RuntimeError(str(err))))
            raise
    ok, value = broadcast_object(outcome)
    if not ok:
        raise value
    return value


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:  # noqa: BLE001 - any failure to pickle
        return False
    return True


def open_run_folder(resolved: ResolvedConfig, run_dir: Path | None, resume: bool, held: contextlib.ExitStack) -> Path:
    """Make (or reuse, for ``--resume``) the run folder, lock it for this process (see
    :mod:`pcgen.train.run_lock`; a resumed folder is locked already) and write the run's config."""
    run_dir = Path(run_dir) if run_dir else new_run_dir(resolved)
    with file_operation("create the run folder", run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        held.enter_context(run_folder_lock(run_dir))
    write_text(run_dir / "config.toml", to_toml(resolved.to_dict()), "run's config")
    return run_dir


def final_cost(resolved: ResolvedConfig, registry: Any, spec: Any, data: Any, model: Any) -> FinalCost:
    """The final sampling and evaluation, estimated before training (:mod:`pcgen.train.budget`); a run
    whose final phase alone exceeds ``train.total_budget_minutes`` is refused."""
    device = run_device(resolved.run.train.device, rank_info())
    trained = TrainedModel(spec=spec, model=model, scaler=data.scaler, multiplicity=data.multiplicity,
                           data_info=data.info, config=resolved.to_dict(), kind=data.kind, conditions=data.conditions)
    cost = estimate_final_cost(trained, data, resolved, registry, device, GENERATION_BATCH,
                               figures=bool(resolved.run.train.total_budget_minutes))
    check_total_budget(resolved.run.train, cost)
    return cost


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
        specs = metrics_for_kind(registry, kind)
        training_metrics(specs, ev.during_training)
        select_specs(specs, ev)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def write_kind_reports(kind: KindSpec, real: PointClouds, fake: PointClouds, out_dir: Path) -> dict[str, Any]:
    """Write the kind's extra evaluation results of ``fake`` against ``real`` (e.g. showers per incident-energy
    bin) into ``out_dir`` as ``<name>.md`` / ``<name>.json``; returns their figures by name, to be saved."""
    if kind.reports is None:
        return {}
    reports = kind.reports(real, fake)
    for name, markdown in reports.get("tables", {}).items():
        write_text(out_dir / f"{name}.md", markdown + "\n", "report")
    for name, data in reports.get("json", {}).items():
        write_text(out_dir / f"{name}.json", json.dumps(data, indent=2) + "\n", "report")
    return dict(reports.get("figures", {}))


def row_name(spec_name: str, variants: tuple[str, ...], variant: str) -> str:
    """Table row of a sampling variant: the model's name, with the variant when it has several."""
    return spec_name if len(variants) == 1 else f"{spec_name} ({variant})"


def final_evaluation(trainer: Trainer, console: Console, show_progress: bool = True) -> Any:
    """Metrics of generated vs held-out clouds with the truth baseline (the JetNet protocol for jets, shower
    observables for showers); reports and figures in the run folder.

    A model with several sampling variants gets one row (and one samples file) per variant.
    """
    from pcgen.data.store import write_pointclouds
    from pcgen.metrics.evaluate import efp_normalisation, evaluate, needs_normalisation
    from pcgen.plots import multiplicity_figure

    run, data, spec = trainer.resolved.run, trainer.data, trainer.spec
    variants = trainer.recipe.model.variants
    real, reference = data.evaluation_clouds(run.eval.num_jets)
    n = len(real)
    specs = trainer.metrics
    normalisation = None
    if needs_normalisation(specs, run.eval):
        # FPD/KPD features: one normalisation per data set, from the whole training split (kept in metrics.json).
        normalisation = efp_normalisation(data.train, f"training split ({len(data.train)} jets)")
    fakes, table = {}, None
    for i, variant in enumerate(variants):
        name = row_name(spec.name, variants, variant)
        with sampling_progress(console, f"sampling {name}", n, show_progress) as advance:
            trained = trainer.trained_model()
            fake = trained.generate(n, batch_size=GENERATION_BATCH, seed=run.train.seed + 1, device=trainer.device,
                                    variant=variant, progress=advance, like=real if trained.conditional else None)
        write_pointclouds(fake, trainer.run_dir / ("samples.h5" if i == 0 else f"samples-{variant}.h5"))
        part = evaluate(real, fake, reference if i == 0 else None, specs, run.eval, progress=show_progress,
                        model_name=name, normalisation=normalisation, count_label=data.kind.noun)
        table = part if table is None else table.add_rows(part)
        fakes[name] = fake
        trainer.log_observables(real, fake, trainer.state.step, "generated" if i == 0 else f"generated-{variant}")
    write_text(trainer.run_dir / "metrics.json", json.dumps(table.to_dict(), indent=2), "metrics file")
    write_text(trainer.run_dir / "metrics.md", table.to_markdown() + "\n", "metrics file")
    figures = {"distributions": data.kind.figure(real, fakes, 50), "multiplicity": multiplicity_figure(real, fakes)}
    first = fakes[row_name(spec.name, variants, variants[0])]
    figures.update(write_kind_reports(data.kind, real, first, trainer.run_dir))
    for name, figure in figures.items():
        save_figure(figure, trainer.run_dir / f"{name}.png", bbox_inches="tight")
        trainer.logger.figure(f"final/{name}", figure, trainer.state.step)
    flat = {metric: value for metric, (value, _err) in table.rows[row_name(spec.name, variants, variants[0])].items()}
    trainer.logger.hparams(trainer.resolved.to_dict(), flat)
    console.print(table.to_rich())
    console.print(f"run folder: {trainer.run_dir}")
    from pcgen.pretrained import shipped_weights_hint

    hint = shipped_weights_hint(spec, run.data.model_dump())
    if hint:
        console.print(hint, highlight=False, markup=False)
    return table
