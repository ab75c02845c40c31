"""Issue 11, item 6: reports that do not mislead: readable numbers of any size, ``nan`` explained,
and TensorBoard without the steps between a checkpoint and a stop shown twice after a resume."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest
from .helpers import run_args

from pcgen.metrics.evaluate import MetricTable
from pcgen.metrics.numbers import NAN_NOTE, format_entry, format_number


@pytest.mark.parametrize(("value", "error", "text"), [
    (3.2e58, 1e-3, "3.20e+58 ± 1e-03"),  # the KPD that printed as a 59-digit number
    (1000.0, 0.0, "1000 ± 0"),  # the FPD printed as "1e+03 ± 0"
    (1.234e-7, 2e-8, "1.23e-07 ± 2e-08"),
    (0.76, 0.07, "0.76 ± 0.07"),
    (1.8, 11.9, "2 ± 12"),
    (12.0, math.nan, "12.0 ± nan"),
    (math.inf, 1.0, "inf"),
])
def test_numbers_stay_readable_at_any_size(value: float, error: float, text: str) -> None:
    assert format_entry(value, error) == text
    assert len(format_entry(value, error)) <= 20


def test_format_number_switches_to_scientific_notation_past_its_range() -> None:
    assert [format_number(x) for x in (123456.0, 12345.0, 0.0123, 0.000123, 0.0, -2.5e9)] == [
        "1.23e+05", "12345", "0.0123", "1.23e-04", "0", "-2.50e+09"]


def test_a_table_with_nan_explains_it() -> None:
    table = MetricTable(rows={"truth": {"w1m": (0.001, 0.0001)}, "model": {"w1m": (math.nan, math.nan)}},
                        columns=["w1m"])
    assert table.to_markdown().endswith(NAN_NOTE)
    assert table.to_rich().caption == NAN_NOTE
    assert NAN_NOTE not in MetricTable(rows={"m": {"w1m": (1.0, 0.1)}}, columns=["w1m"]).to_markdown()


def scalar_steps(run: Path, tag: str) -> list[int]:
    accumulator = importlib.import_module("tensorboard.backend.event_processing.event_accumulator")
    events = accumulator.EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return [e.step for e in events.Scalars(tag)]


class Killed(BaseException):
    """Stands for kill -9: nothing after it is saved."""


def test_tensorboard_has_each_step_once_after_a_resume(cli, jets_file: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from pcgen.train import adversarial
    from pcgen.train.trainer import Trainer

    original, calls = adversarial.AdversarialRecipe.training_step, {"n": 0}
    save = Trainer.save

    def killed_at_step_8(self, batch, step, progress):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == 8:
            raise Killed
        return original(self, batch, step, progress)

    monkeypatch.setattr(adversarial.AdversarialRecipe, "training_step", killed_at_step_8)
    monkeypatch.setattr(Trainer, "save", lambda self, name="last.pt": save(self, name) if self.state.step % 4 == 0
                        else None)  # a killed process saves nothing at the end
    args = run_args(jets_file, tmp_path, "tb", 10, **{"train.checkpoint_every": 4, "train.log_every": 1})
    with pytest.raises(Killed):
        cli(*args)
    monkeypatch.undo()
    run = tmp_path / "tb"
    assert scalar_steps(run, "loss/critic") == list(range(1, 8))  # steps 5-7 come after the checkpoint at 4
    result = cli("run", "--quiet", "--resume", run)
    assert result.exit_code == 0, result.stderr
    assert scalar_steps(run, "loss/critic") == list(range(1, 11))  # 5-7 once, from the resumed run
