"""Thread settings for shared machines: OpenMP's passive wait policy before torch loads, and a thread
count from the CPUs the process may use (affinity mask, cgroup quota)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from pcgen import threads
from pcgen.cli import app
from typer.testing import CliRunner


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(("text", "limit"), [("max 100000\n", None), ("150000 100000\n", 1.5), ("50000 100000", 0.5)])
def test_cgroup_v2_quota(tmp_path: Path, text: str, limit: float | None) -> None:
    write(tmp_path / "cpu.max", text)
    assert threads.cgroup_cpu_limit(tmp_path) == limit


def test_cgroup_v1_quota_and_no_cgroup(tmp_path: Path) -> None:
    assert threads.cgroup_cpu_limit(tmp_path) is None
    write(tmp_path / "cpu" / "cpu.cfs_quota_us", "300000\n")
    write(tmp_path / "cpu" / "cpu.cfs_period_us", "100000\n")
    assert threads.cgroup_cpu_limit(tmp_path) == 3.0
    write(tmp_path / "cpu" / "cpu.cfs_quota_us", "-1\n")
    assert threads.cgroup_cpu_limit(tmp_path) is None


def test_available_cpus_is_the_affinity_capped_by_the_quota(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert threads.available_cpus(tmp_path) == 4  # no quota file
    write(tmp_path / "cpu.max", "250000 100000")
    assert threads.available_cpus(tmp_path) == 2
    write(tmp_path / "cpu.max", "20000 100000")
    assert threads.available_cpus(tmp_path) == 1  # a fraction of a CPU still gets one thread


def run_python(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != threads.WAIT_POLICY}
    return subprocess.run([sys.executable, "-c", code], env={**environ, **env}, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_importing_pcgen_makes_openmp_wait_passively_unless_the_user_chose() -> None:
    code = "import os, pcgen; print(os.environ['OMP_WAIT_POLICY'])"
    assert run_python(code) == "PASSIVE"
    assert run_python(code, OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"


def test_threads_option_sets_torchs_threads() -> None:
    before, requested, follower = torch.get_num_threads(), threads._requested, threads._follower
    try:
        torch.set_num_threads(2)  # so that the option must change it (whatever an earlier test left)
        # `sample --help` goes through the thread setting (listing commands such as `models` skip it)
        result = CliRunner().invoke(app, ["--threads", "1", "sample", "--help"])
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 1
        assert threads.configure_threads(0) == threads.default_threads() <= threads.available_cpus()
        assert torch.get_num_threads() == threads.default_threads()
    finally:
        torch.set_num_threads(before)
        threads._requested, threads._follower = requested, follower
    with pytest.raises(ValueError, match=">= 0"):
        threads.configure_threads(-1)


def test_idle_cpus_reads_proc_stat_and_the_default_takes_no_more_than_are_idle(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stat = tmp_path / "stat"
    readings = iter(["cpu  100 0 100 800 0 0 0 0 0 0\n", "cpu  200 0 200 900 0 0 0 0 0 0\n"])
    monkeypatch.setattr(time, "sleep", lambda seconds: stat.write_text(next(readings)))
    stat.write_text(next(readings))
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 4)
    assert threads.idle_cpus(0.0, stat) == pytest.approx(4 * 100 / 300)  # a third idle: 1.33 of 4 CPUs
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    assert threads.idle_cpus(0.0, tmp_path / "missing") is None
    monkeypatch.setattr(threads, "available_cpus", lambda: 4)
    monkeypatch.setattr(threads, "idle_cpus", lambda: 1.3)
    assert threads.default_threads() == 1
    monkeypatch.setattr(threads, "idle_cpus", lambda: 3.6)
    assert threads.default_threads() == 4 and threads.default_threads(share=2) == 2
    monkeypatch.setattr(threads, "idle_cpus", lambda: None)  # no /proc/stat: the CPUs this process may use
    assert threads.default_threads() == 4


def test_a_run_follows_the_load_others_put_on_the_machine(tmp_path: Path) -> None:
    """2 CPUs: when other processes keep one busy the run drops to one thread, and takes two again when
    they stop; its own use never counts as load; nothing changes between looks or without /proc/stat."""
    stat, now, own, busy, idle = tmp_path / "stat", [0.0], [0.0], [0], [0]
    set_to: list[int] = []

    def advance(seconds: float, others: float, mine: float) -> None:
        """``seconds`` pass with ``others`` CPUs busy with other work and ``mine`` with this process."""
        now[0] += seconds
        own[0] += mine * seconds
        used = round((others + mine) * seconds * 100)
        busy[0] += used
        idle[0] += round(2 * seconds * 100) - used
        stat.write_text(f"cpu  {busy[0]} 0 0 {idle[0]} 0 0 0 0\n")

    advance(0, 0, 0)
    follow = threads.LoadFollower(2, set_to.append, 2, every=10, stat=stat, clock=lambda: now[0],
                                  own_cpu=lambda: own[0], cpus=2)
    advance(10, 0.0, 2.0)  # alone, using both CPUs itself
    assert follow() is None and set_to == []
    advance(10, 1.0, 1.0)  # another job takes a CPU
    assert follow() == 1 and set_to == [1]
    advance(5, 0.0, 1.0)
    assert follow() is None  # not time to look yet
    advance(10, 1.9, 0.1)
    assert follow() is None and set_to == [1]  # still busy: stays at 1
    advance(10, 0.0, 1.0)  # the other job ended
    assert follow() == 2 and set_to == [1, 2]
    blind = threads.LoadFollower(2, set_to.append, 2, stat=tmp_path / "missing", clock=lambda: now[0], cpus=2)
    now[0] += 60
    assert blind() is None and set_to == [1, 2]


def test_only_a_run_without_a_chosen_number_of_threads_follows_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    monkeypatch.setattr(threads, "idle_cpus", lambda: 2.0)
    before, requested, follower = torch.get_num_threads(), threads._requested, threads._follower
    try:
        threads.configure_threads(0)
        assert isinstance(threads._follower, threads.LoadFollower) and threads._follower.allowed == 2
        threads.configure_threads(2)
        assert threads._follower is None and threads.follow_load() is None
        threads.configure_threads(0, share=2)  # one CPU per rank: nothing to follow
        assert threads._follower is None
    finally:
        torch.set_num_threads(before)
        threads._requested, threads._follower = requested, follower
