"""Issue 21, item 1: two processes on one run folder. The folder is locked (``flock`` on ``.pcgen.lock``)
for the whole run, new runs, ``--resume`` and ``pcgen compare``'s sub-runs alike; a second process stops
at once with one line naming the holder's pid and touches nothing; the lock dies with its process; in a
distributed run only rank 0 takes it."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch.multiprocessing as mp

from pcgen.train.run_lock import LOCK_NAME, RunFolderInUseError, run_folder_lock
from pcgen.train.trainer import Trainer

from .helpers import one_line, pcgen_process, run_args


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime in ns) of every file under ``folder``."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def wait_until(condition: Any, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"pcgen ended early: {proc.communicate()[1]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the condition never came true")
        time.sleep(0.1)


def is_locked(folder: Path) -> bool:
    """Whether some open file description holds the run folder's lock (also one of this process)."""
    fd = os.open(folder / LOCK_NAME, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_second_resume_stops_at_once_naming_the_holder_and_the_lock_dies_with_it(
        cli, jets_file: Path, tmp_path: Path) -> None:
    """The issue's `for i in 1 2; do pcgen run --resume runs/X ... & done`, made deterministic: the first
    process is paused while it holds the folder, the second one runs, then the first is killed (-9)."""
    assert cli(*run_args(jets_file, tmp_path, "x", 2)).exit_code == 0
    run = tmp_path / "x"
    first = pcgen_process("run", "--quiet", "--resume", run, "--set", "train.max_steps=100000",
                          "--set", "train.checkpoint_every=3")
    lock = run / LOCK_NAME
    wait_until(lambda: lock.is_file() and lock.read_text().startswith(f"{first.pid} "), first)
    first.send_signal(signal.SIGSTOP)
    try:
        before = snapshot(run)
        second = cli("run", "--quiet", "--resume", run, "--set", "train.max_steps=900")
        assert second.exit_code == 2
        assert one_line(second.stderr) == (f"error: the run folder {run} is in use by another pcgen process "
                                           f"(pid {first.pid}); wait for it to end, or stop it, then run again")
        assert snapshot(run) == before  # the second process touched nothing
    finally:
        first.send_signal(signal.SIGKILL)  # a kill -9: nothing runs to release the lock but the OS
        first.communicate(timeout=60)
    assert not is_locked(run)
    again = cli("run", "--quiet", "--resume", run, "--set", "train.max_steps=3")
    assert again.exit_code == 0, again.stderr


def test_a_new_run_into_a_folder_in_use_stops_before_writing(jets_file: Path, tmp_path: Path,
                                                            registry: Any) -> None:
    """`execute(run_dir=...)` as `pcgen compare` calls it for each model."""
    from pcgen.config import load_config
    from pcgen.train.runner import execute

    folder = tmp_path / "sub"
    folder.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(folder / LOCK_NAME)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.write(fd, f'{os.getpid()} host\\n'.encode())\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        resolved = load_config(None, run_args(jets_file, tmp_path, "sub", 2)[5::2], registry, plugin="igapt")
        with pytest.raises(RunFolderInUseError, match=rf"in use by another pcgen process \(pid {holder.pid} on host\)"):
            execute(resolved, registry, run_dir=folder, show_progress=False)
        assert sorted(p.name for p in folder.iterdir()) == [LOCK_NAME]  # no config.toml, no logs
    finally:
        holder.kill()
        holder.wait()


def test_compare_locks_each_sub_run_while_it_trains(cli, jets_file: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, bool] = {}
    original = Trainer.fit

    def fit(self: Trainer) -> bool:
        seen[self.run_dir.name] = is_locked(self.run_dir)
        return original(self)

    monkeypatch.setattr(Trainer, "fit", fit)
    sets = [value for value in run_args(jets_file, tmp_path, "unused", 2)[5::2]
            if not value.startswith(("name=", "run_dir="))]
    result = cli("compare", "--plugins", "igapt", "--out", tmp_path / "cmp", "--quiet",
                 *[arg for value in sets for arg in ("--set", value)])
    assert result.exit_code == 0, result.stderr
    assert seen == {"igapt": True}
    assert not is_locked(tmp_path / "cmp" / "igapt")  # released when the sub-run ended


def _rank(rank: int, port: int, out: str, sets: list[str]) -> None:
    """One rank of a 2-process CPU run (gloo); writes its pid and run folder to ``out``."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    from pcgen.config import load_config
    from pcgen.plugins import load_registry
    from pcgen.train.runner import execute

    registry = load_registry()
    result = execute(load_config(None, sets, registry, plugin="igapt"), registry, show_progress=False,
                     final_eval=False)
    Path(out, f"rank{rank}.json").write_text(json.dumps({"pid": os.getpid(), "run_dir": str(result.run_dir)}))


def test_in_a_distributed_run_only_rank_zero_takes_the_lock(jets_file: Path, tmp_path: Path) -> None:
    """Both ranks of a 2-process run finish (a second flock on the folder would have failed) and the
    lock file names rank 0."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    sets = run_args(jets_file, tmp_path, "ddp", 2, **{"model.embed_dim": 32, "model.generator_blocks": 1,
                                                     "model.discriminator_blocks": 1})[5::2]
    mp.start_processes(_rank, args=(port, str(tmp_path), sets), nprocs=2, start_method="spawn")
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    run = Path(ranks[0]["run_dir"])
    assert ranks[1]["run_dir"] == str(run)
    assert (run / LOCK_NAME).read_text().split()[0] == str(ranks[0]["pid"])


def _rank_resume(rank: int, port: int, run: str) -> None:
    """One rank of a 2-process ``--resume`` of ``run``; writes the error it ended with (or none)."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    from pcgen.plugins import load_registry
    from pcgen.train.runner import execute, resume_config

    registry = load_registry()
    try:
        execute(resume_config(Path(run), [], registry), registry, run_dir=Path(run), resume=True, show_progress=False)
        seen = "none"
    except Exception as err:  # noqa: BLE001 - reported to the test
        seen = f"{type(err).__name__}: {err}"
    Path(run, f"rank{rank}.txt").write_text(seen)


def test_a_distributed_resume_of_a_folder_in_use_stops_every_rank(cli, jets_file: Path, tmp_path: Path) -> None:
    """Rank 0 finds the folder in use; rank 1, which takes no lock, gets the same error instead of
    waiting forever for rank 0."""
    assert cli(*run_args(jets_file, tmp_path, "busy", 2)).exit_code == 0
    run = tmp_path / "busy"
    with run_folder_lock(run), socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        sock.close()
        mp.start_processes(_rank_resume, args=(port, str(run)), nprocs=2, start_method="spawn")
    seen = [(run / f"rank{r}.txt").read_text() for r in range(2)]
    assert seen[0] == seen[1] == (f"RunFolderInUseError: the run folder {run} is in use by another pcgen process "
                                  f"(pid {os.getpid()}); wait for it to end, or stop it, then run again")


def test_the_lock_is_refused_in_process_too(tmp_path: Path) -> None:
    with run_folder_lock(tmp_path):
        with pytest.raises(RunFolderInUseError, match=f"pid {os.getpid()}\\)"), run_folder_lock(tmp_path):
            pass
    with run_folder_lock(tmp_path):  # released
        pass
