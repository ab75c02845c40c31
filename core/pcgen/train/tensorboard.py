"""TensorBoard logging of one run into one event-file folder (hparams included, no stray sub-runs).

TensorBoard writes its event files from a background thread, which keeps a write error (a full disk,
a file-size limit) and raises it, without a file name, at the next call of the writer. Every call
of :class:`RunLogger` turns such an error into one :class:`~pcgen.safe_io.FileAccessError` naming the
log folder ("cannot write TensorBoard logs to <run>/tensorboard: no space left on the device"), and
the thread's own traceback is not printed (:func:`quiet_writer_threads`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from pcgen.safe_io import file_operation

WRITER_THREAD_MODULE = "tensorboard.summary.writer"
"""Where TensorBoard's event-file writer thread class lives (``_AsyncWriterThread``)."""
_HOOK_LOCK = threading.Lock()


def quiet_writer_threads() -> None:
    """Let an error in TensorBoard's writer thread end that thread without printing a traceback: the
    writer raises it again in the thread that logs next, where :class:`RunLogger` reports it in one
    line. Errors of other threads go to the hook installed before. Installed again if replaced."""
    with _HOOK_LOCK:
        previous = threading.excepthook
        if getattr(previous, "pcgen_quiet_writer", False):
            return

        def hook(args: threading.ExceptHookArgs) -> None:
            if not type(args.thread).__module__.startswith(WRITER_THREAD_MODULE):
                previous(args)

        hook.pcgen_quiet_writer = True  # type: ignore[attr-defined]
        threading.excepthook = hook


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; values TensorBoard's hparams can't hold become strings."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


class RunLogger:
    """Writes scalars, figures, text and hparams for one run under ``<run>/tensorboard``."""

    def __init__(self, log_dir: Path, enabled: bool = True, purge_step: int | None = None) -> None:
        self.enabled, self.log_dir = enabled, Path(log_dir)
        quiet_writer_threads()
        with self.writing():
            self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step) if enabled else None

    @contextmanager
    def writing(self) -> Iterator[None]:
        """A block that calls the writer: an ``OSError`` (also one from the writer's thread) becomes a
        :class:`~pcgen.safe_io.FileAccessError` naming the log folder."""
        with file_operation("write TensorBoard logs to", self.log_dir):
            yield

    def purge_after(self, step: int) -> None:
        """Start a new event file that hides every event logged after ``step`` (TensorBoard's
        ``purge_step``): a resumed run does not show the steps between its checkpoint and the stop twice."""
        if self.writer:
            with self.writing():
                self.writer.close()
                self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=step + 1)

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer:
            with self.writing():
                for tag, value in values.items():
                    self.writer.add_scalar(tag, value, step)

    def figure(self, tag: str, figure: Any, step: int) -> None:
        if self.writer:
            with self.writing():
                self.writer.add_figure(tag, figure, step, close=True)

    def histograms(self, prefix: str, values: dict[str, Any], step: int) -> None:
        """One histogram per entry, tagged ``<prefix>/<name>``; non-finite values are left out."""
        if self.writer is None:
            return
        for name, array in values.items():
            array = np.asarray(array, dtype=np.float64)
            array = array[np.isfinite(array)]
            if array.size:
                with self.writing():
                    self.writer.add_histogram(f"{prefix}/{name}", array, step)

    def profiles(self, prefix: str, profiles: dict[str, Any], step: int) -> None:
        """Weighted histograms (:class:`pcgen.data.observables.Profile`), tagged ``<prefix>/<name>``."""
        if self.writer is None:
            return
        for name, profile in profiles.items():
            centres = 0.5 * (profile.edges[1:] + profile.edges[:-1])
            total = float(profile.counts.sum())
            if total <= 0 or not np.isfinite(total):
                continue
            with self.writing():
                self.writer.add_histogram_raw(
                    f"{prefix}/{name}", min=float(profile.edges[0]), max=float(profile.edges[-1]), num=total,
                    sum=float((centres * profile.counts).sum()), sum_squares=float((centres**2 * profile.counts).sum()),
                    bucket_limits=profile.edges[1:].tolist(), bucket_counts=profile.counts.tolist(), global_step=step)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        if self.writer:
            with self.writing():
                self.writer.add_text(tag, text, step)

    def hparams(self, config: dict[str, Any], metrics: dict[str, float]) -> None:
        """Write the hparams summary into this run's own event file (``add_hparams`` would make a sub-run).

        Metric tags are prefixed with ``hparam/`` so they never collide with ``add_scalar`` tags.
        """
        if not self.writer:
            return
        tagged = {f"hparam/{k}": v for k, v in metrics.items()}
        exp, ssi, sei = hparams(flatten(config), tagged)
        with self.writing():
            file_writer = self.writer._get_file_writer()
            for summary in (exp, ssi, sei):
                file_writer.add_summary(summary)
            for tag, value in tagged.items():
                self.writer.add_scalar(tag, value, 0)

    def flush(self) -> None:
        if self.writer:
            with self.writing():
                self.writer.flush()

    def close(self) -> None:
        if self.writer:
            with self.writing():
                self.writer.close()
