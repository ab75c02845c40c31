"""Issue 21, item 3: a full disk (or a file-size limit) while `pcgen sample --out` writes its HDF5 file, or
while TensorBoard writes a run's logs, is one `error:` line naming the path and the reason; nothing
partial is left and an existing file is kept.

A real full disk is a tiny tmpfs, mounted when the tests may (root with `mount`; skipped otherwise); a
file-size limit (`RLIMIT_FSIZE`, as `ulimit -f`) gives the same fault without privileges.
"""

from __future__ import annotations

import errno
import os
import resource
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tensorboard.compat.tensorflow_stub.io.gfile import LocalFileSystem
from .helpers import one_line, pcgen_process, run_args

from pcgen.safe_io import FileAccessError
from pcgen.runtime.checkpoint import load_checkpoint
from pcgen.train.tensorboard import RunLogger

SAMPLED = "3000"
"""Clouds sampled: a file of about 300 KB, far above the limits below."""


def limit_file_size(limit: int) -> Callable[[], None]:
    """A ``preexec_fn`` that limits the size of every file the process writes to ``limit`` bytes."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Callable[[Path], Path]]:
    """Mounts a 64 KiB tmpfs on a folder (skips where mounting is not allowed); unmounted afterwards."""
    mounted: list[Path] = []

    def mount(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=False)


def fill(folder: Path) -> None:
    """Write into ``folder`` until its file system is full."""
    with open(folder / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC


def sample(trained_run: Path, out: Path, *extra: str, **popen: object) -> tuple[int, str]:
    proc = pcgen_process("sample", "--checkpoint", trained_run, "--n", SAMPLED, "--out", out, "--device", "cpu",
                         *extra, **popen)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def test_sample_on_a_full_tmpfs_is_one_line_and_leaves_nothing(trained_run: Path, tmp_path: Path,
                                                                tiny_tmpfs: Callable[[Path], Path]) -> None:
    """Before: a segfault (exit 139) after HDF5 tracebacks; no `error:` line."""
    folder = tiny_tmpfs(tmp_path / "full")
    out = folder / "s.h5"
    code, err = sample(trained_run, out)
    assert code == 2, err
    assert one_line(err).endswith(f"error: cannot write point clouds to {out}: no space left on the device")
    assert "Traceback" not in err
    assert os.listdir(folder) == []  # no partial or temporary file


def test_sample_under_a_file_size_limit_keeps_the_file_it_would_replace(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.h5"
    out.write_bytes(b"previous samples")
    code, err = sample(trained_run, out, "--force", preexec_fn=limit_file_size(64 * 1024))
    assert code == 2, err
    assert one_line(err).endswith(f"error: cannot write point clouds to {out}: file too large (a file-size limit "
                                  "such as `ulimit -f`, or the file system's)")
    assert "Traceback" not in err
    assert out.read_bytes() == b"previous samples" and os.listdir(tmp_path) == ["s.h5"]


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_tensorboard_write_failure_names_the_log_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    """The disk fills while a run logs. Before: `[Errno 28] No space left on device` with no path, and
    the traceback of TensorBoard's writer thread."""

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    logs = tmp_path / "run" / "tensorboard"
    logger = RunLogger(logs)
    logger.flush()
    monkeypatch.setattr(LocalFileSystem, "write", full)
    monkeypatch.setattr(LocalFileSystem, "append", full)
    with pytest.raises(FileAccessError) as err:
        logger.scalars({"loss": 1.0}, 1)
        logger.flush()
    assert str(err.value) == f"cannot write TensorBoard logs to {logs}: no space left on the device"
    assert "Traceback" not in capfd.readouterr().err


def test_a_run_whose_tensorboard_folder_is_full_stops_in_one_line(cli, jets_file: Path, tmp_path: Path,
                                                                  tiny_tmpfs: Callable[[Path], Path]) -> None:
    """A real `pcgen run --resume` whose `tensorboard/` is a full tmpfs."""
    assert cli(*run_args(jets_file, tmp_path, "tb", 2)).exit_code == 0
    run = tmp_path / "tb"
    fill(tiny_tmpfs(run / "tensorboard"))
    proc = pcgen_process("run", "--quiet", "--resume", run, "--set", "train.max_steps=4")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    assert one_line(err).endswith(f"error: cannot write TensorBoard logs to {run / 'tensorboard'}: "
                                  "no space left on the device")
    assert "Traceback" not in err
    assert load_checkpoint(run / "checkpoints" / "last.pt")["loop"]["step"] >= 2
