"""Checkpoints: plain tensors and Python values, written atomically, loaded with ``weights_only=True``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from pcgen.safe_io import FileAccessError, atomic_path, os_error_reason

CHECKPOINT_FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, or not one of pcgen's."""


class CheckpointSaveError(FileAccessError):
    """A checkpoint could not be written (after a retry); the previous one is intact."""


def save_checkpoint(payload: dict[str, Any], path: Path, retries: int = 1) -> Path:
    """Write ``payload`` to ``path`` atomically (temporary file in the same folder, fsync, rename).

    A failed write is tried ``retries`` more times; if it still fails, :class:`CheckpointSaveError`
    names the path and the reason, the previous file at ``path`` is intact and no partial file is left.
    """
    path = Path(path)
    for attempt in range(retries + 1):
        try:
            with atomic_path(path, "write the checkpoint") as tmp:
                try:
                    with open(tmp, "wb") as handle:
                        torch.save({"pcgen_checkpoint_format": CHECKPOINT_FORMAT, **payload}, handle)
                except (OSError, RuntimeError) as err:  # torch reports a failed write as a RuntimeError
                    raise FileAccessError(f"cannot write the checkpoint {path}: {_reason(err)}") from err
            return path
        except FileAccessError as err:
            if attempt == retries:
                kept = "the previous checkpoint there is kept" if path.is_file() else "no checkpoint was kept there"
                raise CheckpointSaveError(f"{err}; {kept}") from err
            time.sleep(0.5)
    return path


def _reason(err: BaseException) -> str:
    """The OS reason behind a failed write, also when torch wrapped it in a RuntimeError."""
    while err.__context__ is not None and not isinstance(err, OSError):
        err = err.__context__
    if isinstance(err, OSError):
        return os_error_reason(err)
    return str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a pcgen checkpoint safely (no arbitrary code runs: ``weights_only=True``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / "last.pt" if (path / "checkpoints").is_dir() else path / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass a run folder or its checkpoints/last.pt")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(f"checkpoint {path} could not be read ({type(err).__name__}: {err})") from err
    if not isinstance(payload, dict) or payload.get("pcgen_checkpoint_format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a pcgen checkpoint (format {CHECKPOINT_FORMAT})")
    return payload
