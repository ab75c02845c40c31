"""Issue 11, item 5: messages in the command line's own words: flag names and allowed ranges (not a
config class's validation dump), "did you mean", and eval's file checks before any work."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
from .helpers import one_line
from toydata import toy_jets

from pcgen.data.pointclouds import PointClouds
from pcgen.data.store import write_pointclouds


@pytest.mark.parametrize(("args", "flag", "bound"), [
    (["data", "generate", "--jets", "-5"], "--jets", "20"),
    (["data", "generate", "--particles", "0"], "--particles", "1"),
    (["data", "generate", "--particles", "5000"], "--particles", "4096"),
    (["data", "generate", "--workers", "-1"], "--workers", "0"),
    (["sample", "--checkpoint", "x", "--n", "0"], "--n", "1"),
    (["eval", "--samples", "a", "--reference", "b", "--n", "3"], "--n", "20"),
])
def test_an_out_of_range_option_names_the_flag_and_its_range(cli, args: list[str], flag: str, bound: str) -> None:
    result = cli(*args)
    message = one_line(result.stderr)
    assert result.exit_code == 2
    assert f"'{flag}'" in message and bound in message, message
    assert "DataConfig" not in message and "num_jets" not in message and "pydantic" not in message


def test_a_mistyped_plugin_gets_a_did_you_mean(cli) -> None:
    result = cli("run", "--plugin", "igpat")
    assert result.exit_code == 2
    assert "unknown model plugin 'igpat'" in one_line(result.stderr)
    assert "Did you mean 'igapt'?" in one_line(result.stderr)


def test_a_mistyped_config_key_gets_a_did_you_mean(cli) -> None:
    result = cli("run", "--plugin", "igapt", "--set", "train.max_step=3")
    assert result.exit_code == 2 and "Did you mean 'max_steps'?" in one_line(result.stderr)


def test_eval_checks_feature_counts_before_any_work(cli, jets_file: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    evaluate = importlib.import_module("pcgen.metrics.evaluate")  # the module (pcgen.metrics.evaluate is a function)
    jets = toy_jets(100, 30, seed=2)
    four = np.concatenate([jets.points, np.ones_like(jets.points[..., :1]) * jets.mask[..., None]], axis=-1)
    samples = write_pointclouds(PointClouds(four, jets.mask, ("eta_rel", "phi_rel", "pt_rel", "charge"), jets.globals),
                                tmp_path / "four.h5")
    monkeypatch.setattr(evaluate, "evaluate", lambda *a, **k: pytest.fail("metrics started"))
    result = cli("eval", "--samples", samples, "--reference", jets_file, "--n", "50", "--no-efp")
    assert result.exit_code == 2
    assert one_line(result.stderr) == (
        f"error: {jets_file} has 3 features (eta_rel, phi_rel, pt_rel) but {samples} has 4 "
        "(eta_rel, phi_rel, pt_rel, charge); both files need the same features")


def test_eval_names_the_features_a_kind_of_data_needs(cli, jets_file: Path, tmp_path: Path) -> None:
    jets = toy_jets(100, 30, seed=2)
    samples = write_pointclouds(PointClouds(jets.points[..., :2].copy(), jets.mask, ("a", "b"), jets.globals),
                                tmp_path / "two.h5")
    result = cli("eval", "--samples", samples, "--reference", jets_file, "--n", "50", "--no-efp")
    assert result.exit_code == 2
    assert (f"{samples}: clouds with features (a, b) are of no registered kind (jets: (eta_rel, phi_rel, pt_rel); "
            "showers: (x, y, z, E)); name their kind in the file's meta" in one_line(result.stderr))
    declared = write_pointclouds(PointClouds(jets.points[..., :2].copy(), jets.mask, ("a", "b"), jets.globals,
                                             meta={"kind": "jets"}), tmp_path / "declared.h5")
    result = cli("eval", "--samples", declared, "--reference", jets_file, "--n", "50", "--no-efp")
    assert result.exit_code == 2
    assert (f"{declared} holds jets with 2 features (a, b); the jets metrics need (eta_rel, phi_rel, pt_rel) first"
            in one_line(result.stderr))
