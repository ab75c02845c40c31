"""The training loop shared by every recipe: batching, run progress, logging, evaluation, checkpoints."""

from __future__ import annotations

import math

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pcgen.config import ResolvedConfig
from pcgen.sampling import TrainedModel, seeded
from pcgen.specs import MetricSpec, ModelSpec
from pcgen.threads import follow_load
from pcgen.train import distributed
from pcgen.train.augment import Augmentation
from pcgen.runtime.checkpoint import CheckpointSaveError, load_checkpoint, save_checkpoint
from pcgen.train.data_prep import PreparedData
from pcgen.runtime.nonfinite import (
    NonFiniteError,
    NonFiniteGuard,
    TooManyNonFiniteSteps,
    all_finite,
    nonfinite_tensors,
)
from pcgen.runtime.precision import Accelerator
from pcgen.train.recipe import Batch, Logs, Recipe, host_values
from pcgen.train.signals import StopSignals
from pcgen.train.tensorboard import RunLogger

NONFINITE_HINT = ("Lower the learning rate or clip gradients (recipe.grad_clip); to drop such steps instead, "
                  'set train.on_nonfinite="skip"')
"""What to do after a non-finite value stopped a run in the default mode (``train.on_nonfinite="stop"``)."""
SKIP_MODE_HINT = "Lower the learning rate or clip gradients (recipe.grad_clip)"
"""... in skip mode, where only a weight made non-finite or too many bad steps in a row stop it."""


def nonfinite_hint(mode: str, err: BaseException) -> str:
    """The advice after a non-finite value stopped training in ``train.on_nonfinite`` = ``mode``."""
    if mode != "skip":
        return NONFINITE_HINT
    if isinstance(err, TooManyNonFiniteSteps):
        return f"{SKIP_MODE_HINT}, or allow more such steps in a row (train.max_nonfinite_in_row)"
    return SKIP_MODE_HINT


@dataclass
class LoopState:
    """What a checkpoint must remember besides the weights."""

    step: int = 0
    elapsed: float = 0.0
    best_value: float = float("inf")
    nonfinite_skipped: int = 0
    """Steps whose updates were dropped for a non-finite value (``train.on_nonfinite = "skip"``)."""
    wall: float = 0.0
    """Wall time of the training loop: steps, in-training evaluations and checkpoints (``elapsed`` counts
    the steps alone); ``train.total_budget_minutes`` reads it."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device={name!r} but no CUDA device is available; use 'cpu' or 'auto'")
    return device


def run_device(name: str, ranks: distributed.RankInfo) -> torch.device:
    """The device this rank trains on: ``train.device``, or in a distributed run its rank's device."""
    return resolve_device(distributed.device_for_rank(name, ranks.local_rank) if ranks.distributed else name)


class Trainer:
    """Trains one model with its recipe and keeps the run folder up to date."""

    def __init__(
        self,
        resolved: ResolvedConfig,
        spec: ModelSpec,
        recipe: Recipe,
        data: PreparedData,
        run_dir: Path,
        metrics: list[MetricSpec],
        hooks: Any,
        console: Console | None = None,
        show_progress: bool = True,
    ) -> None:
        self.resolved, self.spec, self.recipe, self.data = resolved, spec, recipe, data
        self.run_dir = Path(run_dir)
        self.metrics = metrics
        """The metrics of the data's kind (the in-training ones are chosen from them)."""
        self.hooks = hooks
        """The plugins' lifecycle hooks (pluggy's hook relay: ``pcgen_on_train_start`` ...)."""
        self.cfg = resolved.run.train
        self.ranks = distributed.rank_info()
        self.device = run_device(self.cfg.device, self.ranks)
        self.console = console or Console(stderr=True)
        self.show_progress = show_progress and self.ranks.is_main
        self.state = LoopState()
        self.logger = RunLogger(self.run_dir / "tensorboard", enabled=self.ranks.is_main)
        self.steps_per_epoch = max(1, len(data.x) // self.cfg.batch_size)
        self._part = distributed.rank_slice(self.cfg.batch_size, self.ranks)
        self._epoch: int | None = None
        self._perm = torch.empty(0, dtype=torch.long)
        self._validation: Batch | None = None
        self._last_saved_step: int | None = None
        self.stop_signal: int | None = None
        """The signal (SIGTERM, SIGUSR1) that stopped training, if one did."""
        self.final_seconds = 0.0
        """The estimated final sampling and evaluation, which ``train.total_budget_minutes`` leaves room for."""
        self.recipe.model.to(self.device)
        # the training set stays on the device: a step only indexes it (no host-to-device copy per batch)
        self._resident = Batch(data.x, data.mask, data.cond).to(self.device)
        self._augmentation = Augmentation(self.cfg, data.info.feature_names, data.scaler)
        if self.ranks.distributed:
            distributed.broadcast_module(self.recipe.model)  # the same start on every rank, whatever happened
            torch.manual_seed(self.cfg.seed + 7919 * self.ranks.rank)  # ... and each rank's own noise
        self.accelerator = Accelerator.from_config(self.cfg, self.device)
        self.accelerator.prepare(self.recipe)

    # -- checkpoints ---------------------------------------------------------------------------

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def trained_model(self) -> TrainedModel:
        return TrainedModel(
            spec=self.spec,
            model=self.recipe.model,
            scaler=self.data.scaler,
            multiplicity=self.data.multiplicity,
            data_info=self.data.info,
            config=self.resolved.to_dict(),
            kind=self.data.kind,
            conditions=self.data.conditions,
        )

    def save(self, name: str = "last.pt", rng_ranks: list[torch.Tensor] | None = None) -> Path | None:
        """Checkpoint the run (atomically; rank 0 only, other ranks return None); weights with a NaN or an
        infinity are never written. ``rng_ranks``: every rank's RNG state, from :meth:`rank_rng_states`,
        so that a run of several ranks resumes exactly."""
        if not self.ranks.is_main:
            return None
        weights = self.recipe.model.state_dict()
        if not all_finite(v for v in weights.values() if isinstance(v, torch.Tensor)):
            bad = nonfinite_tensors(weights)
            raise NonFiniteError(
                f"step {self.state.step}: the weights hold non-finite values ({bad[0]}"
                f"{f' and {len(bad) - 1} more tensors' if len(bad) > 1 else ''}); not saved to {name}"
            )
        payload = {
            "loop": asdict(self.state),
            "model": weights,
            "recipe": self.recipe.state_dict(),
            "scaler": self.data.scaler.state_dict(),
            "multiplicity": self.data.multiplicity.state_dict(),
            "config": json.dumps(self.resolved.to_dict()),
            "data_info": json.dumps(asdict(self.data.info)),
            "rng_torch": torch.get_rng_state(),
        }
        if self.data.conditions is not None:
            payload["conditions"] = self.data.conditions.state_dict()
        if torch.cuda.is_available():
            payload["rng_cuda"] = torch.cuda.get_rng_state_all()
        if rng_ranks is not None and len(rng_ranks) > 1:
            payload["rng_ranks"] = rng_ranks
        path = save_checkpoint(payload, self.checkpoint_dir / name)
        if name == "last.pt":
            self._last_saved_step = self.state.step
        return path

    def kept_checkpoint(self) -> str:
        """Which checkpoint a failed run leaves, in words."""
        last = self.checkpoint_dir / "last.pt"
        if self._last_saved_step is not None and last.is_file():
            return f"the last good checkpoint {last} (step {self._last_saved_step}) is kept"
        return "no checkpoint had been saved yet"

    def rank_rng_states(self) -> list[torch.Tensor]:
        """Every rank's RNG state (CPU and this rank's GPU, concatenated as bytes), in rank order; every
        rank must call it (it gathers from all)."""
        own = [torch.get_rng_state()]
        if self.device.type == "cuda":
            own.append(torch.cuda.get_rng_state(self.device))
        return distributed.gather_objects(torch.cat(own))

    def save_all(self, name: str = "last.pt") -> None:
        """A checkpoint with every rank's RNG state; every rank must call it."""
        if self.ranks.distributed:
            self.save(name, self.rank_rng_states())
        else:
            self.save(name)

    def restore(self, path: Path) -> None:
        """Continue from a checkpoint: weights, optimiser state, RNG and loop position."""
        payload = load_checkpoint(path, map_location=self.device)
        self.recipe.model.load_state_dict(payload["model"])
        self.recipe.load_state_dict(payload["recipe"])
        self.state = LoopState(**payload["loop"])
        ranks = payload.get("rng_ranks")
        if ranks is not None and len(ranks) == self.ranks.world_size:
            self._set_rank_rng(ranks[self.ranks.rank].cpu())
        elif self.ranks.distributed:
            torch.manual_seed(self.cfg.seed + 7919 * self.ranks.rank + 104729 * self.state.step)
        else:  # a single process (also continuing a run of several ranks: rank 0's stream)
            torch.set_rng_state(payload["rng_torch"].cpu())
            if "rng_cuda" in payload and torch.cuda.is_available():
                torch.cuda.set_rng_state_all([s.cpu() for s in payload["rng_cuda"]])
        self._last_saved_step = self.state.step
        self.logger.purge_after(self.state.step)

    def _set_rank_rng(self, state: torch.Tensor) -> None:
        cpu = torch.get_rng_state()
        torch.set_rng_state(state[: cpu.numel()])
        if self.device.type == "cuda" and state.numel() > cpu.numel():
            torch.cuda.set_rng_state(state[cpu.numel():], self.device)

    # -- the loop --------------------------------------------------------------------------------

    def _batch(self, step: int) -> Batch:
        """This rank's part of the batch of a step: each epoch's permutation depends only on (seed, epoch),
        so resuming is exact, and every rank takes its own slice of the same global batch (with its random
        reflections and rotations, ``train.reflect`` and ``train.rotate``, drawn from ``(seed, step)`` for
        the whole batch)."""
        epoch, position = divmod(step, self.steps_per_epoch)
        if self._epoch != epoch:
            gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
            self._perm, self._epoch = torch.randperm(len(self.data.x), generator=gen).to(self.device), epoch
        whole = self._perm[position * self.cfg.batch_size : (position + 1) * self.cfg.batch_size]
        idx, data = whole[self._part], self._resident
        batch = Batch(data.x[idx], data.mask[idx], data.cond[idx])
        return self._augmentation.apply(batch, len(whole), step, self._part)

    def _max_steps(self) -> int | None:
        limits = [self.cfg.max_steps] if self.cfg.max_steps else []
        if self.cfg.epochs:
            limits.append(self.cfg.epochs * self.steps_per_epoch)
        return min(limits) if limits else None

    def _training_wall_budget(self) -> float | None:
        """Seconds of training loop ``train.total_budget_minutes`` allows once the final phase is set
        aside (None without that budget)."""
        total = self.cfg.total_budget_minutes
        return max(total * 60 - self.final_seconds, 1e-9) if total else None

    def _finished(self) -> bool:
        limit = self._max_steps()
        if limit is not None and self.state.step >= limit:
            return True
        budget, wall = self.cfg.time_budget_minutes, self._training_wall_budget()
        if wall is not None and self.state.wall >= wall:
            return True
        return bool(budget) and self.state.elapsed >= budget * 60

    def _progress(self) -> float:
        """Fraction of the run done, for schedules and stages: the largest of steps/limit, time/budget
        and (with ``train.total_budget_minutes``) loop wall time / the part of that budget left for training.

        With no time budget it depends on the step alone, so runs are reproducible; with one, a
        schedule spans the budget whatever each step costs (stages of unequal cost included).
        """
        limit, budget, wall = self._max_steps(), self.cfg.time_budget_minutes, self._training_wall_budget()
        parts = [self.state.step / limit] if limit else []
        if budget:
            parts.append(self.state.elapsed / (budget * 60))
        if wall is not None:
            parts.append(self.state.wall / wall)
        return min(1.0, max(parts)) if parts else 0.0

    def fit(self) -> bool:
        """Train until a limit is reached; returns False if stopped early (Ctrl-C, SIGTERM, SIGUSR1),
        after saving a checkpoint that ``--resume`` continues from.

        A non-finite loss, gradient or weight raises :class:`NonFiniteError` (see
        :mod:`pcgen.runtime.nonfinite`) and saves nothing: the last good checkpoint stays. A checkpoint
        that cannot be written raises :class:`CheckpointSaveError`, the previous one intact.
        """
        hook = self.hooks
        if self.ranks.is_main:  # plugins hear of the run once, from rank 0
            hook.pcgen_on_train_start(run_dir=str(self.run_dir), config=self.resolved.to_dict())
        self.recipe.model.train()
        interrupted, save_at_end = False, True
        guard = NonFiniteGuard(self.recipe.optimizers, self.cfg.on_nonfinite, self.cfg.max_nonfinite_in_row)
        progress = self._progress_bar()
        task = progress.add_task("training", total=self._max_steps(), completed=self.state.step, info="")
        with StopSignals() as stop:
            try:
                with progress:
                    while not self._finished() and stop.received is None:
                        guard.step = self.state.step + 1
                        start = time.perf_counter()
                        with self.accelerator.step_context():
                            logs = self.recipe.training_step(self._batch(self.state.step), self.state.step,
                                                             self._progress())
                        if guard.check_step(logs):
                            self.state.nonfinite_skipped += 1
                            logs = {**logs, "nonfinite/skipped_steps": float(self.state.nonfinite_skipped)}
                        self.state.elapsed += time.perf_counter() - start
                        if self.ranks.distributed and self.cfg.time_budget_minutes:
                            # schedules, stages and the stop read the time: every rank must see rank 0's
                            self.state.elapsed = distributed.broadcast_float(self.state.elapsed, self.device)
                        self.state.step += 1
                        follow_load()  # fewer threads while other work shares the CPUs, more when it ends
                        self._after_step(logs, progress, task)
                        self.state.wall += time.perf_counter() - start
                        self._sync_clocks()
                if stop.received is not None:
                    interrupted, self.stop_signal = True, stop.received
                    if self.ranks.is_main:
                        self.console.print(f"[yellow]{stop.name} received: stopped at step {self.state.step}; "
                                           "saving a checkpoint.")
            except KeyboardInterrupt:
                interrupted = True
                if self.ranks.is_main:
                    self.console.print(f"[yellow]interrupted at step {self.state.step}; checkpoint saved.")
            except FloatingPointError as err:  # NonFiniteError, or a recipe's own non-finite limit
                save_at_end = False
                raise NonFiniteError(f"{err}; training stopped, {self.kept_checkpoint()}. "
                                     f"{nonfinite_hint(self.cfg.on_nonfinite, err)}") from None
            except CheckpointSaveError:
                save_at_end = False
                raise
            finally:
                guard.close()
                try:
                    if save_at_end:
                        self.save_all()
                finally:
                    self.logger.flush()
                    if self.ranks.is_main:
                        hook.pcgen_on_train_end(run_dir=str(self.run_dir), step=self.state.step,
                                                interrupted=interrupted)
        return not interrupted

    def _sync_clocks(self) -> None:
        """In a distributed run with a whole-run budget, every rank takes rank 0's loop wall time (the
        stop and the schedules read it)."""
        if self.ranks.distributed and self.cfg.total_budget_minutes:
            self.state.wall = distributed.broadcast_float(self.state.wall, self.device)

    def _after_step(self, logs: Logs, progress: Progress, task: Any) -> None:
        """Log (reading the step's values to the host only here, every ``log_every`` steps), evaluate and
        checkpoint; only rank 0 writes anything."""
        step, main = self.state.step, self.ranks.is_main
        logged = step % self.cfg.log_every == 0 or step == 1
        values: dict[str, float] = {}
        if main and logged:
            values = host_values(logs)
            lrs = {f"lr/{k}": v for k, v in self.recipe.learning_rates().items()}
            self.logger.scalars({**values, **lrs, "time/steps_per_second": step / max(self.state.elapsed, 1e-9),
                                 "time/threads": float(torch.get_num_threads())}, step)
        if main and step % self.cfg.eval_every == 0:
            self.evaluate_during_training()
        if step % self.cfg.checkpoint_every == 0:
            self.save_all()
        if not main:
            return
        progress_done = self._progress()
        total = self._max_steps() or (int(step / progress_done) if progress_done > 0 else None)
        if logged:
            losses = "  ".join(f"{k.split('/')[-1]} {v:.3f}" for k, v in values.items() if k.startswith("loss/"))
            progress.update(task, completed=step, total=total, info=losses)
        else:
            progress.update(task, completed=step, total=total)

    def _progress_bar(self) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            disable=not self.show_progress,
            transient=False,
        )

    # -- evaluation --------------------------------------------------------------------------------

    def log_observables(self, real: Any, fake: Any, step: int, label: str = "generated") -> None:
        """TensorBoard histograms of the kind's per-cloud observables and profiles (showers: the layer and
        radial energy profiles) of held-out (``real/``) and generated (``<label>/``) clouds."""
        kind = self.data.kind
        self.logger.histograms("real", kind.observables(real), step)
        self.logger.histograms(label, kind.observables(fake), step)
        if kind.profiles is not None:
            self.logger.profiles("real", kind.profiles(real, real), step)
            self.logger.profiles(label, kind.profiles(fake, real), step)

    def validation_batch(self) -> Batch:
        """The first ``train.batch_size`` held-out clouds in model space (the same at every evaluation)."""
        if self._validation is None:
            test = self.data.test.subset(slice(0, min(self.cfg.batch_size, len(self.data.test))))
            self._validation = Batch(*self.data.model_space(test)).to(self.device)
        return self._validation

    def log_validation_losses(self, step: int) -> dict[str, float]:
        """The recipe's loss terms on held-out clouds, logged as ``validation/<name>``: a training loss
        that keeps falling while this rises means the model memorises its training set."""
        with seeded(self.cfg.seed + 54321):
            with self.accelerator.step_context():
                values = self.recipe.validation_losses(self.validation_batch(), step)
        self.logger.scalars({f"validation/{k}": v for k, v in values.items()}, step)
        return values

    def evaluate_during_training(self) -> dict[str, float]:
        """Cheap metrics on held-out clouds, distribution figures, and the best checkpoint by
        :func:`selection_score` (for a staged model, among evaluations in its last stage only: an earlier
        stage's samples are not the finished model's)."""
        from pcgen.metrics.evaluate import compute_metrics, training_metrics

        ev, kind = self.resolved.run.eval, self.data.kind
        real, _ = self.data.evaluation_clouds(ev.num_jets)
        trained = self.trained_model()
        fake = trained.generate(len(real), seed=self.cfg.seed + 12345, device=self.device,
                                like=real if trained.conditional else None)
        self.recipe.model.train()
        specs = training_metrics(self.metrics, ev.during_training)
        values = compute_metrics(real, fake, specs, ev)
        step = self.state.step
        self.log_validation_losses(step)
        self.logger.scalars({f"metrics/{k}": v for k, v in values.items()}, step)
        self.logger.figure("distributions", kind.figure(real, {self.spec.name: fake}, 50), step)
        self.log_observables(real, fake, step)
        self.hooks.pcgen_on_evaluation(run_dir=str(self.run_dir), step=step, metrics=values)
        score = selection_score(values, [spec.name for spec in specs])
        if specs and self.recipe.in_final_stage and score < self.state.best_value:
            self.state.best_value = score
            self.save("best.pt")
        return values


def selection_score(values: dict[str, float], names: list[str]) -> float:
    """How ``best.pt`` is chosen, lower is better: the sum of the logarithms of the in-training metrics
    ``names`` (the log of their product), so that halving W1P counts as much as halving W1M and a
    checkpoint cannot win on jet mass while its particles are far off. Infinite if one is missing or
    not finite."""
    score = 0.0
    for name in names:
        value = values.get(name, float("nan"))
        if not math.isfinite(value):
            return float("inf")
        score += math.log(max(value, 1e-12))
    return score
