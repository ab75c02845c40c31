"""Issue 11, items 3 and 4: every filesystem fault is one line naming the path and the operation; a
failed checkpoint save keeps the previous checkpoint intact, leaves no partial file and stops the
run cleanly; files get the umask's permissions; run folders are created atomically."""

from __future__ import annotations

import errno
import multiprocessing
import os
import resource
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from .helpers import one_line, pcgen_process, run_args, without_permission_override

from pcgen.safe_io import FileAccessError, atomic_path, make_new_dir
from pcgen.runtime.checkpoint import CheckpointSaveError, load_checkpoint, save_checkpoint
from pcgen.train.runner import new_run_dir

def test_a_run_folder_that_cannot_be_created_is_one_line(cli, jets_file: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = cli(*run_args(jets_file, blocker / "runs", "x", 2))
    assert result.exit_code == 2
    assert one_line(result.stderr) == (f"error: cannot create the folder {blocker / 'runs'}: "
                                       "a part of the path is a file, not a folder")


def test_a_samples_file_that_cannot_be_written_is_one_line(cli, trained_run: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "s.h5"
    result = cli("sample", "--checkpoint", trained_run, "--n", "10", "--out", out, "--device", "cpu")
    assert result.exit_code == 2
    assert one_line(result.stderr) == f"error: cannot write {out}: {blocker} is a file, not a folder"


@pytest.fixture
def unprivileged() -> tuple[str, ...]:
    """The command prefix under which file permissions apply, also for root (see helpers)."""
    prefix = without_permission_override()
    if prefix is None:
        pytest.skip("running as root without setpriv: permissions cannot be enforced")
    return prefix


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may write into."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


def test_permission_denied_on_the_run_folder_is_one_line(jets_file: Path, locked: Path,
                                                         unprivileged: tuple[str, ...]) -> None:
    proc = pcgen_process(*run_args(jets_file, locked, "x", 2), prefix=unprivileged)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    assert one_line(err) == f"error: cannot create the folder {locked / 'x'}: permission denied"


def test_permission_denied_on_the_samples_file_is_one_line(trained_run: Path, locked: Path,
                                                           unprivileged: tuple[str, ...]) -> None:
    out = locked / "s.h5"
    proc = pcgen_process("sample", "--checkpoint", trained_run, "--n", "10", "--out", out, "--device", "cpu",
                         prefix=unprivileged)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    assert one_line(err) == f"error: cannot write {out}: permission denied on the folder {locked}"


def test_permission_denied_on_checkpoints_stops_cleanly_and_keeps_the_last_checkpoint(
        cli, jets_file: Path, tmp_path: Path, unprivileged: tuple[str, ...]) -> None:
    assert cli(*run_args(jets_file, tmp_path, "ro", 2)).exit_code == 0
    folder = tmp_path / "ro" / "checkpoints"
    before = (folder / "last.pt").read_bytes()
    folder.chmod(0o555)
    try:
        proc = pcgen_process("run", "--quiet", "--resume", tmp_path / "ro", "--set", "train.max_steps=4",
                             prefix=unprivileged)
        _, err = proc.communicate(timeout=300)
    finally:
        folder.chmod(0o755)
    assert proc.returncode == 2, err
    assert one_line(err).endswith(f"error: cannot write the checkpoint {folder / 'last.pt'}: permission denied; "
                                  "the previous checkpoint there is kept")
    assert (folder / "last.pt").read_bytes() == before and sorted(os.listdir(folder)) == ["last.pt"]


@pytest.mark.parametrize(("code", "reason"), [
    (errno.ENOSPC, "no space left on the device"),
    (errno.EROFS, "read-only file system"),
    (errno.EACCES, "permission denied"),
    (errno.EDQUOT, "disk quota exceeded"),
])
def test_a_failed_checkpoint_save_is_retried_once_then_keeps_the_previous_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, reason: str) -> None:
    path = save_checkpoint({"w": torch.ones(3)}, tmp_path / "last.pt")
    before = path.read_bytes()
    calls = {"n": 0}

    def failing_write(obj: object, handle: object) -> None:
        calls["n"] += 1
        handle.write(b"partial")  # type: ignore[attr-defined]
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(torch, "save", failing_write)
    with pytest.raises(CheckpointSaveError) as err:
        save_checkpoint({"w": torch.zeros(3)}, path)
    assert calls["n"] == 2  # tried twice
    assert str(err.value) == f"cannot write the checkpoint {path}: {reason}; the previous checkpoint there is kept"
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["last.pt"]  # no partial file


def limit_file_size(limit: int):  # noqa: ANN201 - a preexec_fn
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_disk_full_during_training_stops_cleanly_and_keeps_the_last_checkpoint(jets_file: Path,
                                                                               tmp_path: Path) -> None:
    """A real `pcgen run` under a file-size limit (`ulimit -f`) that the checkpoint exceeds."""
    from typer.testing import CliRunner

    from pcgen.cli import app

    assert CliRunner().invoke(app, run_args(jets_file, tmp_path, "full", 2)).exit_code == 0
    last = tmp_path / "full" / "checkpoints" / "last.pt"
    before = last.read_bytes()
    proc = pcgen_process("run", "--quiet", "--resume", tmp_path / "full", "--set", "train.max_steps=8",
                         "--set", "train.checkpoint_every=4", preexec_fn=limit_file_size(len(before) // 2))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    message = one_line(err)
    assert f"error: cannot write the checkpoint {last}: file too large" in message
    assert "the previous checkpoint there is kept" in message
    assert "Traceback" not in err
    assert last.read_bytes() == before and load_checkpoint(last)["loop"]["step"] == 2
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.pt"]  # no partial file


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_output_files_get_the_umasks_permissions(cli, jets_file: Path, tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        result = cli(*run_args(jets_file, tmp_path, "modes", 2))
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.stderr
    run = tmp_path / "modes"
    for name in ("config.toml", "checkpoints/last.pt", "samples.h5", "metrics.md", "metrics.json",
                 "distributions.png"):
        assert stat.S_IMODE((run / name).stat().st_mode) == 0o666 & ~umask, name


def test_atomic_path_leaves_nothing_behind_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer crashed")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]


def _make_run_dirs(base: str, start: float, count: int, queue: multiprocessing.Queue) -> None:
    while time.time() < start:
        pass
    resolved = SimpleNamespace(run=SimpleNamespace(run_dir=Path(base), name="same", plugin="igapt"))
    try:
        queue.put([str(new_run_dir(resolved)) for _ in range(count)])  # type: ignore[arg-type]
    except Exception as err:  # noqa: BLE001 - reported to the test
        queue.put(repr(err))


@pytest.mark.parametrize("round_", range(3))  # the old check-then-create code failed in about 3 rounds of 5
def test_runs_started_in_the_same_instant_get_distinct_folders(tmp_path: Path, round_: int) -> None:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    start = time.time() + 0.5
    workers = [context.Process(target=_make_run_dirs, args=(str(tmp_path), start, 5, queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert all(isinstance(r, list) for r in results), results
    folders = [f for r in results for f in r]
    assert len(set(folders)) == 20 and all(Path(f).is_dir() for f in folders)


def test_make_new_dir_reports_a_blocked_parent_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(FileAccessError, match="cannot create the folder .*file: .*file is a file, not a folder"):
        make_new_dir(tmp_path / "file" / "run")
