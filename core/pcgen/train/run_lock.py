"""One process per run folder: an OS lock on ``<run>/.pcgen.lock`` while a run trains, evaluates and reports.

The lock is ``flock`` on a file inside the run folder, held by the process for the whole run (new runs,
``--resume`` and ``pcgen compare``'s sub-runs alike). The operating system releases it when the process
ends, however it ends (``kill -9`` included), so a lock never outlives its holder and never needs to be
removed by hand. The file holds the holder's pid and host name, for the message another process gets:
it stops at once, before it touches the folder. In a distributed run only rank 0, the rank that writes
the run folder, takes the lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from pcgen.safe_io import FileAccessError, file_operation

LOCK_NAME = ".pcgen.lock"
"""The lock file's name inside a run folder."""


class RunFolderInUseError(FileAccessError):
    """Another process holds the run folder's lock; the message names its pid."""


def holder(path: Path) -> str:
    """Who holds a lock file, in words, from what it holds: ``"pid 1234"`` (``"pid 1234 on host"`` for
    another host); ``"pid unknown"`` while the holder has not written it yet."""
    try:
        pid, _, host = path.read_text().strip().partition(" ")
    except OSError:
        pid, host = "", ""
    if not pid.isdigit():
        return "pid unknown"
    return f"pid {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")


@contextlib.contextmanager
def run_folder_lock(run_dir: Path | str) -> Iterator[Path]:
    """Hold ``run_dir``'s lock for the block; raise :class:`RunFolderInUseError` at once if another
    process holds it. A file system without locks (``ENOLCK``, ``EOPNOTSUPP``) runs unlocked."""
    path = Path(run_dir) / LOCK_NAME
    with file_operation("lock the run folder with", path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderInUseError(
                f"the run folder {run_dir} is in use by another pcgen process ({holder(path)}); "
                "wait for it to end, or stop it, then run again"
            ) from None
        except OSError as err:
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
        with file_operation("lock the run folder with", path):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the last descriptor releases the lock
