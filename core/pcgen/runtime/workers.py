"""Independent pieces of CPU work in forked one-thread processes, results in order.

Generation splits into batches that share nothing, so on a CPU they need no threads that wait for
each other at every operation (torch's intra-op threads do, and on a busy machine a descheduled
thread stalls the rest: ``benchmarks/contention.py``). Forked processes inherit the model as it is,
run one torch thread each, and keep their share of the CPUs whatever else runs.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_job: Callable[[Any], Any] | None = None
"""The function of this worker process (set by :func:`_start_worker` after the fork)."""


def can_fork() -> bool:
    """Whether this platform forks processes (Linux; not Windows)."""
    return "fork" in multiprocessing.get_all_start_methods()


PR_SET_PDEATHSIG = 1
"""Linux ``prctl`` option: the signal a process receives when its parent ends."""


def _die_with_parent() -> None:
    """On Linux, end this worker when the process that forked it ends (killed, or stopped by a signal
    it does not catch), instead of finishing its batch for nobody."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _start_worker(job: Callable[[Any], Any]) -> None:
    """In a new worker: one torch thread, the default signal actions (the parent decides what a Ctrl-C or
    a stop signal means), death with the parent, and the job inherited through the fork (never pickled)."""
    import torch

    global _job
    for name in ("SIGINT", "SIGTERM", "SIGUSR1"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        _die_with_parent()
    torch.set_num_threads(1)
    _job = job


def _run(item: Any) -> Any:
    assert _job is not None, "a worker runs only after _start_worker"
    return _job(item)


def map_in_processes(job: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``job(item)`` for each item, in order, by ``workers`` forked processes of one torch thread each.

    ``job`` may be any callable (a closure over a model): the fork hands it over without pickling;
    the items and results are pickled. With fewer than two workers or items, or where the platform
    cannot fork, the items run here, one after the other. A worker that dies makes the iteration raise
    :class:`concurrent.futures.process.BrokenProcessPool`.
    """
    items = list(items)
    if workers < 2 or len(items) < 2 or not can_fork():
        yield from map(job, items)
        return
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(min(workers, len(items)), mp_context=context, initializer=_start_worker,
                             initargs=(job,)) as pool:
        try:
            yield from pool.map(_run, items)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            raise
