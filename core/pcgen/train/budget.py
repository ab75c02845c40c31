"""Budgets that mean what they say: the final phase of a run (sampling and evaluation) estimated before
training, a whole-run budget (``train.total_budget_minutes``) that leaves room for it, and sizes that
cannot fit in memory refused up front, in one line.

The estimate times the model generating a few clouds (two sizes, after one warm-up call, so that the
cost per call and the cost per cloud are both measured: a GPU's call costs nearly the same for 4 or 16
clouds, a CPU's grows with them) and the evaluation of a few held-out clouds (two sizes likewise), then
extrapolates to the final phase's numbers. It takes a second or two, and it does not touch the RNG
streams of training. Under a whole-run budget the final figures are timed as well (drawn once for a
few clouds: a few more seconds, about what they cost at the end).
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pcgen.config import ConfigError, EvalConfig, ResolvedConfig, TrainConfig

SAMPLING_SIZES = (4, 16)
"""Clouds generated (one call each, after a warm-up call of one cloud) to time the generation."""
EVALUATION_SIZES = (20, 60)
"""Held-out clouds per side evaluated (after a warm-up of the smaller size) to time the evaluation."""


@dataclass(frozen=True)
class FinalCost:
    """The estimated seconds of a run's final phase: generating and evaluating ``clouds`` clouds for
    each of ``variants`` sampling variants."""

    clouds: int
    variants: int
    sampling: float
    evaluation: float | None
    """None when the evaluation could not be timed (too few held-out clouds)."""
    reports: float | None = None
    """The figures; timed only for a whole-run budget (None: not timed)."""

    @property
    def seconds(self) -> float:
        return self.sampling + (self.evaluation or 0.0) + (self.reports or 0.0)

    def describe(self) -> str:
        """One line for the console, e.g. ``final sampling and evaluation: about 3.1 min (...)``."""
        what = f"{self.clouds:,} clouds" + (f" x {self.variants} variants" if self.variants > 1 else "")
        parts = f"sampling {duration(self.sampling)}, " + (
            f"evaluation {duration(self.evaluation)}" if self.evaluation is not None else "evaluation not estimated")
        if self.reports is not None:
            parts += f", figures {duration(self.reports)}"
        return (f"final sampling and evaluation: about {duration(self.seconds)} ({what}: {parts}; "
                f"timed on {SAMPLING_SIZES[-1]} clouds before training)")


def duration(seconds: float) -> str:
    """``"0.4 s"``, ``"12 s"``, ``"3.2 min"``, ``"1.5 h"``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def linear_fit(sizes: tuple[int, int], seconds: tuple[float, float]) -> tuple[float, float]:
    """(seconds per call, seconds per cloud) through two timings, neither negative (timings are noisy)."""
    per_item = max(0.0, (seconds[1] - seconds[0]) / (sizes[1] - sizes[0]))
    return max(0.0, seconds[0] - per_item * sizes[0]), per_item


def _timed(work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def estimate_sampling(generate: Callable[[int, str | None], Any], variants: tuple[str, ...], clouds: int,
                      batch: int) -> float:
    """Seconds to generate ``clouds`` clouds of each variant in calls of ``batch``, from timing
    ``generate(k, variant)`` (one call of k clouds): the first variant at the sizes of
    :data:`SAMPLING_SIZES`, each further one (a cheaper or dearer solver, say) at the smaller size,
    relative to the first."""
    generate(1, variants[0])  # warm-up: lazy initialisation, caches
    seconds = tuple(_timed(lambda k=k: generate(k, variants[0])) for k in SAMPLING_SIZES)
    per_call, per_cloud = linear_fit(SAMPLING_SIZES, seconds)  # type: ignore[arg-type]
    first = max(seconds[-1], math.ceil(clouds / batch) * per_call + clouds * per_cloud)
    small = SAMPLING_SIZES[0]
    return first + sum(first * _timed(lambda v=v: generate(small, v)) / max(seconds[0], 1e-9) for v in variants[1:])


def estimate_evaluation(evaluate_k: Callable[[int], Any], clouds: int, available: int) -> float | None:
    """Seconds to evaluate ``clouds`` clouds per side, from timing ``evaluate_k(k)`` at the sizes of
    :data:`EVALUATION_SIZES` (None when fewer than the larger size are ``available``)."""
    if available < EVALUATION_SIZES[-1]:
        return None
    evaluate_k(EVALUATION_SIZES[0])  # warm-up: the metrics' first call compiles and caches
    seconds = tuple(_timed(lambda k=k: evaluate_k(k)) for k in EVALUATION_SIZES)
    per_call, per_cloud = linear_fit(EVALUATION_SIZES, seconds)  # type: ignore[arg-type]
    return per_call + clouds * per_cloud


def estimate_reports(kind: Any, clouds: Any, variants: int) -> float:
    """Seconds to draw the final figures (distributions and multiplicity, each saved as a PNG file and
    rendered for TensorBoard), timed by drawing them for ``clouds`` (their cost barely depends on how
    many clouds they show); ``kind`` is the clouds' :class:`~pcgen.specs.KindSpec`."""
    from pcgen.plots import multiplicity_figure

    fakes = {f"variant {i}": clouds for i in range(variants)}

    def draw() -> None:
        for figure in (kind.figure(clouds, fakes, 50), multiplicity_figure(clouds, fakes)):
            for _ in range(2):  # the PNG file and TensorBoard's image
                figure.savefig(io.BytesIO(), dpi=110, format="png", bbox_inches="tight")

    return _timed(draw)


def estimate_final_cost(trained: Any, data: Any, resolved: ResolvedConfig, registry: Any,
                        device: torch.device, batch: int, figures: bool = False) -> FinalCost:
    """The final phase of a run (see :func:`pcgen.train.runner.final_evaluation`), estimated by timing
    ``trained`` (a :class:`~pcgen.sampling.TrainedModel`) and the metrics on ``data``'s clouds; with
    ``figures``, also the figures (a few seconds, worth it for a whole-run budget)."""
    from pcgen.metrics.evaluate import evaluate, metrics_for_kind

    run = resolved.run
    clouds = len(data.evaluation_clouds(run.eval.num_jets)[0])
    variants = tuple(trained.model.variants)
    specs = metrics_for_kind(registry, data.kind.name)

    def evaluate_k(k: int) -> Any:
        real, fake = data.test.subset(slice(0, k)), data.test.subset(slice(k, 2 * k))
        config = EvalConfig(**{**run.eval.model_dump(), "num_jets": k})
        return evaluate(real, fake, data.train.subset(slice(0, k)), specs, config, progress=False)

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # training's RNG untouched
        sampling = estimate_sampling(lambda k, v: trained.generate(k, batch_size=k, seed=run.train.seed, device=device,
                                                                   variant=v), variants, clouds, batch)
        try:
            evaluation = estimate_evaluation(evaluate_k, clouds, min(len(data.test) // 2, len(data.train)))
        except Exception:  # noqa: BLE001 - an estimate never stops a run; the real evaluation reports its own errors
            evaluation = None
    reports = estimate_reports(data.kind, data.test.subset(slice(0, 20)), len(variants)) if figures else None
    return FinalCost(clouds, len(variants), sampling, None if evaluation is None else len(variants) * evaluation,
                     reports)


def check_total_budget(train: TrainConfig, cost: FinalCost) -> None:
    """Refuse a run whose final phase alone does not fit in ``train.total_budget_minutes``."""
    total = train.total_budget_minutes * 60
    if total and cost.seconds >= total:
        raise ConfigError(
            f"train.total_budget_minutes = {train.total_budget_minutes:g} leaves no time to train: the final "
            f"sampling and evaluation of {cost.clouds:,} clouds alone take about {duration(cost.seconds)}; "
            "raise the budget, or lower eval.num_jets"
        )


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (psutil if installed, else the kernel's
    MemAvailable, else free pages); None when unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def cloud_bytes(particles: int, features: int) -> int:
    """Host memory one generated cloud takes while it is sampled and written: its float32 points twice
    (the generated parts and the joined array), its mask and its multiplicity."""
    return particles * (features * 4 * 2 + 2) + 16


def readable_bytes(count: float) -> str:
    """``"1.2 GB"``, ``"3.4 TB"`` (decimal units)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if count < 1000 or unit == "PB":
            return f"{count:.3g} {unit}"
        count /= 1000
    return f"{count:.3g} PB"


def check_clouds_fit_in_memory(what: str, n: int, particles: int, features: int,
                               available: int | None = None) -> None:
    """Refuse to generate ``n`` clouds that cannot fit in the memory available (``what`` names the
    setting in the message, e.g. ``"--n"``)."""
    need = n * cloud_bytes(particles, features)
    available = available_memory() if available is None else available
    if available is not None and need > available:
        raise ConfigError(
            f"{what} {n:,}: that many clouds of {particles} particles x {features} features need about "
            f"{readable_bytes(need)} of memory, but {readable_bytes(available)} is available; generate fewer "
            "clouds per command (several commands with different --seed values make independent parts)"
        )
