"""CPU threads that hold up on a shared machine.

Two settings decide how torch's CPU kernels behave when the cores are shared (a second job, a test
suite, an oversubscribed cluster node):

- **OpenMP's wait policy.** By default an OpenMP thread that reaches a barrier spins, waiting for
  the others; when one of them has been descheduled, the spinning thread burns its time slice and
  the step stalls (measured here: the main job's training fell 10-40x next to other work with 2
  threads). ``OMP_WAIT_POLICY=PASSIVE`` makes waiting threads sleep. OpenMP reads it once, when the
  runtime loads with torch, so :func:`prefer_passive_waiting` runs when ``pcgen`` is imported, before
  it imports torch (set the variable yourself to override it, e.g. ``OMP_WAIT_POLICY=ACTIVE``).
- **How many threads.** :func:`available_cpus` counts the CPUs this process may run on: its
  affinity mask (``taskset``, Slurm's ``--cpus-per-task``), capped by a cgroup CPU quota
  (containers, Kubernetes limits), which torch's own default ignores. Of those, :func:`default_threads`
  takes only as many as are idle when the command starts (from ``/proc/stat``): next to two busy
  processes on two cores, two torch threads trained 4.3x slower than alone even with passive
  waiting, one thread only 1.6x slower (``benchmarks/contention.py``, docs/results.md).
- **Generation on a CPU** needs no threads that wait for each other: its batches are independent, so
  :func:`generation_workers` processes of one thread each generate them side by side
  (``pcgen.runtime.workers``). They never meet at a barrier, so they keep their share of a busy
  machine; their number is the CPUs the process may use, or what the user asked for.
- **Load that changes during a run.** A training that started on an idle machine keeps all its
  threads when other work starts later, and collapses as before. :func:`follow_load`, called by the
  training loop after every step, looks at the machine every :data:`FOLLOW_SECONDS` and sets the
  threads to the CPUs that the *other* processes leave free (the machine's busy time minus this
  process's own), unless the user chose a number.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

WAIT_POLICY = "OMP_WAIT_POLICY"
CGROUP_ROOT = Path("/sys/fs/cgroup")


def prefer_passive_waiting() -> None:
    """Let OpenMP threads sleep instead of spinning while they wait (unless the user chose a policy)."""
    os.environ.setdefault(WAIT_POLICY, "PASSIVE")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (e.g. 1.5), or None when it has none.

    Reads cgroup v2's ``cpu.max`` ("QUOTA PERIOD" or "max PERIOD"), else v1's ``cpu.cfs_quota_us`` /
    ``cpu.cfs_period_us``; an unreadable or malformed file counts as no limit.
    """
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """CPUs this process may use: its affinity mask, capped by its cgroup's CPU quota (at least 1)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        count = min(count, max(1, math.floor(limit)))
    return max(1, count)


PROC_STAT = Path("/proc/stat")
_requested: tuple[int, int] = (0, 1)
"""(threads the user asked for, 0 = none; processes sharing the CPUs) of the last :func:`configure_threads`."""
_idle_cache: tuple[float, float] | None = None


def _cpu_times(stat: Path) -> tuple[int, int] | None:
    """(idle, total) jiffies of all CPUs from ``/proc/stat``'s first line; None where it cannot be read."""
    try:
        fields = [int(v) for v in stat.read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return idle, sum(fields[:8])


def idle_cpus(seconds: float = 0.2, stat: Path = PROC_STAT) -> float | None:
    """How many of the machine's CPUs were idle over the next ``seconds`` (None where ``/proc/stat`` is
    missing). Cached for 30 s, so that several commands of one process measure once."""
    global _idle_cache
    if stat == PROC_STAT and _idle_cache is not None and time.monotonic() - _idle_cache[0] < 30:
        return _idle_cache[1]
    before = _cpu_times(stat)
    time.sleep(seconds)
    after = _cpu_times(stat)
    if before is None or after is None or after[1] <= before[1]:
        return None
    idle = (after[0] - before[0]) / (after[1] - before[1]) * (os.cpu_count() or 1)
    if stat == PROC_STAT:
        _idle_cache = (time.monotonic(), idle)
    return idle


def default_threads(share: int = 1) -> int:
    """Threads for one of ``share`` processes (ranks) when the user chose none: the CPUs this process may
    use (:func:`available_cpus`), but no more than are idle now (at least 1)."""
    allowed = available_cpus()
    idle = idle_cpus() if allowed > 1 else None  # one CPU: nothing to choose, no need to measure
    if idle is not None:
        allowed = min(allowed, max(1, math.floor(idle + 0.5)))
    return max(1, allowed // max(share, 1))


def configure_threads(requested: int = 0, share: int = 1) -> int:
    """Set torch's CPU threads to ``requested``, or (0) to :func:`default_threads`; returns the number set."""
    import torch

    if requested < 0:
        raise ValueError(f"the number of threads must be >= 0 (0 = the CPUs available), got {requested}")
    global _requested, _follower
    threads = requested or default_threads(share)
    torch.set_num_threads(threads)
    _requested = (requested, max(share, 1))
    allowed = available_cpus() // max(share, 1)
    _follower = LoadFollower(allowed, torch.set_num_threads, threads) if not requested and allowed > 1 else None
    return threads


FOLLOW_SECONDS = 10.0
"""How often :func:`follow_load` looks at the machine's load."""


def _own_cpu_seconds() -> float:
    """CPU seconds this process has used so far (all its threads)."""
    times = os.times()
    return times.user + times.system


class LoadFollower:
    """Sets torch's threads, between 1 and ``allowed``, to the CPUs the other processes leave free.

    Each look (at most every ``every`` seconds) compares ``/proc/stat`` with the previous look: the
    machine's busy CPUs minus this process's own CPU use is the others' load; the CPUs left, rounded,
    are the threads. Nothing changes where ``/proc/stat`` cannot be read.
    """

    def __init__(self, allowed: int, set_threads: Callable[[int], None], threads: int, every: float = FOLLOW_SECONDS,
                 stat: Path = PROC_STAT, clock: Callable[[], float] = time.monotonic,
                 own_cpu: Callable[[], float] = _own_cpu_seconds, cpus: int | None = None) -> None:
        self.allowed, self.set_threads, self.threads, self.every = allowed, set_threads, threads, every
        self.stat, self.clock, self.own_cpu = stat, clock, own_cpu
        self.cpus = cpus or os.cpu_count() or 1
        self._last = self._look()

    def _look(self) -> tuple[float, float, tuple[int, int] | None]:
        return self.clock(), self.own_cpu(), _cpu_times(self.stat)

    def others_busy(self) -> float | None:
        """CPUs the other processes kept busy since the last look (None: not measurable); starts a new look."""
        (t0, own0, cpu0), now = self._last, self._look()
        self._last = now
        (t1, own1, cpu1) = now
        if cpu0 is None or cpu1 is None or cpu1[1] <= cpu0[1] or t1 <= t0:
            return None
        busy = (1 - (cpu1[0] - cpu0[0]) / (cpu1[1] - cpu0[1])) * self.cpus
        return max(0.0, busy - (own1 - own0) / (t1 - t0))

    def __call__(self) -> int | None:
        """Look if it is time; returns the new number of threads when it changed, else None."""
        if self.clock() - self._last[0] < self.every:
            return None
        others = self.others_busy()
        if others is None:
            return None
        threads = min(self.allowed, max(1, math.floor(self.cpus - others + 0.5)))
        if threads == self.threads:
            return None
        self.threads = threads
        self.set_threads(threads)
        return threads


_follower: LoadFollower | None = None


def follow_load() -> int | None:
    """Re-choose torch's threads from the machine's current load (see :class:`LoadFollower`) when the
    user chose no number; cheap to call after every step. Returns the new number when it changed."""
    return _follower() if _follower is not None else None


def generation_workers() -> int:
    """Processes that generate batches side by side on a CPU: the threads the user asked for (``--threads``,
    ``train.num_threads``), else the CPUs this process may use, split between the ranks sharing them.
    Not reduced on a busy machine: one-thread processes lose no time waiting for each other."""
    requested, share = _requested
    return max(1, requested or available_cpus() // share)
