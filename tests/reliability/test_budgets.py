"""Issue 21, item 6: budgets that mean what they say. A time budget is a finite number of minutes; the
final sampling and evaluation is estimated (by timing a few generated clouds) and printed before
training; ``train.total_budget_minutes`` stops training early enough that training and the final
phase fit; sizes that cannot fit (``pcgen sample --n 1e12``, ``train.batch_size=1e8``) are refused in
one line before anything is written."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from pcgen.sampling import TrainedModel
from pcgen.train import runner
from pcgen.train.budget import check_clouds_fit_in_memory, linear_fit
from pcgen.runtime.checkpoint import load_checkpoint

from .helpers import one_line, run_args

SECONDS_PER_CLOUD = 0.05
"""The generation made slow in these tests (a stand-in for a 200-step diffusion model)."""


@pytest.mark.parametrize("key", ["train.time_budget_minutes", "train.total_budget_minutes"])
@pytest.mark.parametrize("value", ["inf", "nan"])
def test_a_budget_must_be_a_finite_number_of_minutes(cli, key: str, value: str) -> None:
    result = cli("run", "--plugin", "igapt", "--set", f"{key}={value}")
    assert result.exit_code == 2
    assert one_line(result.stderr) == (f"error: invalid configuration: '{key}': Value error, must be a finite "
                                       f"number of minutes; 0 means no limit (got {value})")


@pytest.fixture
def slow_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every generated cloud costs :data:`SECONDS_PER_CLOUD` more."""
    original = TrainedModel.generate

    def generate(self: TrainedModel, num: int, *args: Any, **kwargs: Any) -> Any:
        time.sleep(SECONDS_PER_CLOUD * num)
        return original(self, num, *args, **kwargs)

    monkeypatch.setattr(TrainedModel, "generate", generate)


def printed_estimate(stderr: str) -> float:
    """The seconds of the final phase as printed before training."""
    found = re.search(r"final sampling and evaluation: about ([\d.]+) (s|min)", one_line(stderr))
    assert found, stderr
    return float(found[1]) * (60 if found[2] == "min" else 1)


def test_the_final_sampling_and_evaluation_is_estimated_before_training(
        cli, jets_file: Path, tmp_path: Path, slow_generation: None) -> None:
    result = cli(*run_args(jets_file, tmp_path, "est", 2))
    assert result.exit_code == 0, result.stderr
    text = one_line(result.stderr)
    assert text.index("final sampling and evaluation: about") < text.index("run folder:")
    assert "(100 clouds: sampling" in text and "timed on 16 clouds before training" in text
    assert 0.8 * 100 * SECONDS_PER_CLOUD <= printed_estimate(result.stderr) <= 100 * SECONDS_PER_CLOUD + 3


def test_a_total_budget_leaves_room_for_the_final_phase(cli, jets_file: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch, slow_generation: None) -> None:
    """Training stops when its wall time plus the estimated final phase (sampling, evaluation, figures)
    reaches the budget (15 s here); the final phase then runs in about what is left."""
    original, final = runner.final_evaluation, {}

    def timed_final(*args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return original(*args, **kwargs)
        finally:
            final["seconds"] = time.monotonic() - start

    monkeypatch.setattr(runner, "final_evaluation", timed_final)
    result = cli(*run_args(jets_file, tmp_path, "total", 1_000_000, **{"train.total_budget_minutes": 0.25}))
    assert result.exit_code == 0, result.stderr
    estimate = printed_estimate(result.stderr)
    loop = load_checkpoint(tmp_path / "total" / "checkpoints" / "last.pt")["loop"]
    assert 0 < loop["step"] < 1_000_000
    assert 15 - estimate - 0.2 < loop["wall"] < 15 - estimate + 1  # stopped where the final phase still fits
    assert final["seconds"] >= 100 * SECONDS_PER_CLOUD  # the final phase did run, and was not free
    assert loop["wall"] + final["seconds"] <= 1.5 * 15  # measured: 15.7 s (the estimate 7.3 s, the final 7.9 s)


def test_a_total_budget_the_final_phase_alone_exceeds_is_refused_before_anything_is_written(
        cli, jets_file: Path, tmp_path: Path, slow_generation: None) -> None:
    result = cli(*run_args(jets_file, tmp_path, "tight", 100, **{"train.total_budget_minutes": 0.05}))
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert message.startswith("error: train.total_budget_minutes = 0.05 leaves no time to train: the final "
                              "sampling and evaluation of 100 clouds alone take about "), message
    assert message.endswith("; raise the budget, or lower eval.num_jets")
    assert not (tmp_path / "tight").exists()


@pytest.mark.parametrize("n", ["1e12", "1000000000000"])
def test_sample_refuses_a_number_of_clouds_that_cannot_fit_in_memory(cli, trained_run: Path, tmp_path: Path,
                                                                     n: str) -> None:
    """Before: `--n 1e12` was not a number to the command line, and 10^12 a traceback from torch."""
    out = tmp_path / "s.h5"
    result = cli("sample", "--checkpoint", trained_run, "--n", n, "--out", out, "--device", "cpu")
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert re.fullmatch(r"error: --n 1,000,000,000,000: that many clouds of 30 particles x 3 features need about "
                        r"796 TB of memory, but [\d.]+ [kMGT]?B is available; generate fewer clouds per command "
                        r"\(several commands with different --seed values make independent parts\)", message), message
    assert not out.exists()


def test_sample_takes_a_count_in_scientific_notation(cli, trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.h5"
    result = cli("sample", "--checkpoint", trained_run, "--n", "2e1", "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    assert "wrote 20 clouds" in result.stdout


def test_the_memory_check_compares_with_what_is_available() -> None:
    check_clouds_fit_in_memory("--n", 1000, 30, 3, available=10**9)  # 0.8 MB: fits
    with pytest.raises(ValueError, match="need about 796 MB of memory, but 100 MB is available"):
        check_clouds_fit_in_memory("--n", 10**6, 30, 3, available=10**8)


def test_a_batch_larger_than_the_training_split_is_one_line_and_writes_nothing(cli, jets_file: Path,
                                                                                tmp_path: Path) -> None:
    """Before: a traceback, and a run folder holding only config.toml."""
    result = cli(*run_args(jets_file, tmp_path, "huge", 2, **{"train.batch_size": "1e8"}))
    assert result.exit_code == 2
    assert one_line(result.stderr) == ("error: the training split has 280 clouds, fewer than train.batch_size = "
                                       "100,000,000; generate more data (data.num_jets) or lower the batch size")
    assert not (tmp_path / "huge").exists()


def test_the_fit_of_two_timings_is_never_negative() -> None:
    assert linear_fit((4, 16), (1.0, 2.2)) == pytest.approx((0.6, 0.1))
    assert linear_fit((4, 16), (1.0, 0.9)) == (1.0, 0.0)  # noise: the larger call was faster
