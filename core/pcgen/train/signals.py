"""Stop requests from batch systems: SIGTERM (sent before SIGKILL at the end of a job or on
preemption) and SIGUSR1 (sent by Slurm's ``--signal`` before a time limit) end training cleanly
after the current step, with a checkpoint, so that ``pcgen run --resume`` continues the run."""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any, Self

STOP_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGUSR1", None)) if s is not None)
"""The signals that ask a run to save and stop."""


def exit_code(signum: int) -> int:
    """The shell's convention for a process ended by a signal: 128 + its number."""
    return 128 + int(signum)


class StopSignals:
    """While active (a ``with`` block), SIGTERM and SIGUSR1 are recorded instead of killing the
    process; :attr:`received` holds the first one's number. Outside the main thread it does nothing."""

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS) -> None:
        self.signals = signals
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def name(self) -> str:
        """The received signal's name, e.g. ``"SIGTERM"`` (empty when none)."""
        return signal.Signals(self.received).name if self.received is not None else ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
