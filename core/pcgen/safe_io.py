"""Safe file output: one-line messages for filesystem errors, atomic writes with normal permissions,
no silent overwrite, and race-free creation of new folders.

Every file pcgen writes for a user goes through :func:`atomic_path` (write a temporary file next to
the target, fsync, give it the permissions the user's umask asks for, rename it over the target),
so a failed write (permission denied, disk full, a file-size limit) leaves the previous file
intact and no partial file behind. :func:`file_operation` turns any ``OSError`` into a
:class:`FileAccessError` whose message names the operation and the path.
"""

from __future__ import annotations

import errno
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class FileAccessError(OSError):
    """A file or folder could not be read, written or created; the message names the path and the operation."""


class OverwriteError(FileExistsError):
    """A command would replace a file the user named; pass ``--force`` to allow it."""


_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (a file-size limit such as `ulimit -f`, or the file system's)",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENOENT: "no such file or folder",
    errno.EISDIR: "it is a folder",
    errno.EEXIST: "it already exists",
}


def os_error_reason(err: OSError) -> str:
    """Why an operation failed, in words: ``"permission denied"``, ``"no space left on the device"``, ..."""
    return _REASONS.get(err.errno or -1) or (err.strerror or str(err)).lower()


def describe_os_error(err: OSError, operation: str, path: Path | str) -> str:
    """``"cannot <operation> <path>: <reason>"`` in one line."""
    reason = os_error_reason(err)
    if err.errno == errno.EEXIST and err.filename and Path(err.filename).is_file():
        return f"cannot {operation} {path}: {err.filename} is a file, not a folder"
    shown = err.filename and str(err.filename) != str(path) and Path(err.filename).parent != Path(path).parent
    where = f" ({err.filename})" if shown else ""  # another file than the one named (not its temporary twin)
    return f"cannot {operation} {path}: {reason}{where}"


@contextmanager
def file_operation(operation: str, path: Path | str) -> Iterator[None]:
    """Run a block that reads or writes ``path``; an ``OSError`` becomes a :class:`FileAccessError`
    ("cannot <operation> <path>: <reason>"). Errors that already are one pass through unchanged."""
    try:
        yield
    except (FileAccessError, OverwriteError):
        raise
    except OSError as err:
        raise FileAccessError(describe_os_error(err, operation, path)) from err


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask (read without changing it where the OS allows, else set and restored)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file: ``0o666`` less the umask."""
    return 0o666 & ~current_umask()


@contextmanager
def atomic_path(path: Path | str, operation: str = "write") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block succeeds the file is flushed to disk,
    given the umask's permissions and renamed over ``path`` in one step.

    On any failure the temporary file is removed and ``path`` is left as it was; an ``OSError``
    becomes a :class:`FileAccessError` naming ``operation`` and ``path``.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        with file_operation(operation, path):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            tmp = Path(name)
        yield tmp
        with file_operation(operation, path):
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.chmod(tmp, default_file_mode())
            os.replace(tmp, path)
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def write_text(path: Path | str, text: str, what: str = "file") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`); ``what`` names it in errors."""
    path = Path(path)
    with atomic_path(path, f"write the {what}") as tmp, file_operation(f"write the {what}", path):
        tmp.write_text(text)
    return path


def refuse_overwrite(path: Path | str, force: bool, flag: str | None = "--force") -> None:
    """Raise :class:`OverwriteError` when ``path`` exists and ``force`` is False; the message names
    ``flag`` as the way to allow it (``None``: there is none, choose another name)."""
    path = Path(path)
    if force or not (path.exists() or path.is_symlink()):
        return
    what = "folder" if path.is_dir() else "file"
    allow = f"pass {flag} to replace it, or " if flag else ""
    raise OverwriteError(f"{path} already exists; {allow}choose another {what} name")


def check_output_path(path: Path | str, force: bool, flag: str | None = "--force") -> None:
    """Before any work: refuse to replace ``path`` (see :func:`refuse_overwrite`) and make sure its
    folder is, or can be made, a writable folder; raise :class:`FileAccessError` naming it if not."""
    path = Path(path)
    refuse_overwrite(path, force, flag)
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise FileAccessError(f"cannot write {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise FileAccessError(f"cannot write {path}: permission denied on the folder {ancestor}")


def make_new_dir(base: Path | str) -> Path:
    """Create and return a folder that did not exist: ``base``, else ``base-1``, ``base-2``, ...

    Creation is atomic (``mkdir`` without ``exist_ok``), so processes started in the same instant
    each get their own folder.
    """
    base = Path(base)
    with file_operation("create the folder", base.parent):
        base.parent.mkdir(parents=True, exist_ok=True)
    for i in range(10_000):
        path = base if i == 0 else base.with_name(f"{base.name}-{i}")
        try:
            with file_operation("create the folder", path):
                path.mkdir()
            return path
        except FileAccessError as err:
            if not isinstance(err.__cause__, FileExistsError):
                raise
    raise FileAccessError(f"cannot create the folder {base}: 10,000 folders of that name exist already")


def save_figure(figure: Any, path: Path | str, dpi: int = 110, **kwargs: Any) -> Path:
    """Save a matplotlib figure to ``path`` atomically; the format follows the suffix (default PNG)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    with atomic_path(path, "write the figure") as tmp, file_operation("write the figure", path):
        figure.savefig(tmp, dpi=dpi, format=fmt, **kwargs)
    return path
