"""Issue 11, item 7: SIGTERM (batch systems before SIGKILL) and SIGUSR1 (Slurm before a time limit)
save a checkpoint and stop a real `pcgen run`; `pcgen run --resume` then continues it."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from .helpers import one_line, pcgen_process, run_args

from pcgen.runtime.checkpoint import load_checkpoint


def wait_for(path: Path, proc, timeout: float = 240.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not path.is_file():
        if proc.poll() is not None:
            pytest.fail(f"pcgen run ended early: {proc.communicate()[1]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no checkpoint appeared")
        time.sleep(0.2)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_a_stop_signal_saves_a_checkpoint_that_resume_continues(cli, jets_file: Path, tmp_path: Path,
                                                                signum: signal.Signals) -> None:
    args = run_args(jets_file, tmp_path, "job", 100_000, **{"train.checkpoint_every": 3})
    proc = pcgen_process(*args)
    last = tmp_path / "job" / "checkpoints" / "last.pt"
    wait_for(last, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    message = one_line(err)
    assert f"{signum.name} received: stopped at step" in message
    assert f"resume with: pcgen run --resume {tmp_path / 'job'}" in message
    step = load_checkpoint(last)["loop"]["step"]
    assert step >= 3 and f"stopped at step {step};" in message  # the checkpoint is where it stopped

    result = cli("run", "--quiet", "--resume", tmp_path / "job", "--set", f"train.max_steps={step + 2}")
    assert result.exit_code == 0, result.stderr
    assert f"resuming {tmp_path / 'job'} at step {step}" in one_line(result.stderr)
    assert load_checkpoint(last)["loop"]["step"] == step + 2
    assert (tmp_path / "job" / "samples.h5").is_file()
