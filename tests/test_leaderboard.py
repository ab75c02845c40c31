"""`pcgen leaderboard` and `pcgen models --json`: which weights are ranked, the data they are ranked on,
and what the command writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pcgen.data.jet_config import JetDataConfig
from pcgen import leaderboard
from pcgen.cli import app
from pcgen.metrics.evaluate import MetricTable
from pcgen.plugins import Registry
from typer.testing import CliRunner


def card_with(recipe: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"recipe": recipe}}


def entries_with(registry: Registry, *recipes: dict[str, Any]) -> list[leaderboard.Entry]:
    [entry] = leaderboard.select_entries(registry, ["epic-fm-top30"])
    return [leaderboard.Entry(entry.spec, entry.weights, card_with(r)) for r in recipes]


def test_models_json_lists_models_and_shipped_weights() -> None:
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"igapt", "mdma", "gast", "tf-refiner", "omnijet", "epic-fm", "epic-gan"} <= set(data["models"])
    shipped = {w["name"]: w for w in data["weights"]}
    assert shipped["epic-fm-top30"]["model"] == "epic-fm"
    assert "w1m" in shipped["epic-fm-top30"]["metrics"]


def test_unknown_model_names_the_available_weights(registry: Registry) -> None:
    with pytest.raises(leaderboard.LeaderboardError, match="no shipped weights for nosuch; available: .*epic-fm-top30"):
        leaderboard.select_entries(registry, ["nosuch"])


def test_models_are_selected_by_weights_or_model_name(registry: Registry) -> None:
    by_model = leaderboard.select_entries(registry, ["epic-fm"])
    by_weights = leaderboard.select_entries(registry, ["epic-fm-top30"])
    assert [e.weights.name for e in by_weights] == ["epic-fm-top30"]
    assert {e.weights.name for e in by_model} == {"epic-fm-top30", "epic-fm-reflow-top30"}  # all of the model's


def test_real_jets_never_come_from_a_training_seed(registry: Registry) -> None:
    recipe = {"dataset": "pythia", "jet_type": "t", "num_particles": 30, "num_jets": 50000, "seed": 0}
    assert leaderboard.common_recipe(entries_with(registry, recipe), seed=1000)["jet_type"] == "t"
    with pytest.raises(leaderboard.LeaderboardError, match="trained on data of seed 0"):
        leaderboard.common_recipe(entries_with(registry, recipe), seed=0)


def test_models_of_different_data_are_not_ranked_together(registry: Registry) -> None:
    top = {"dataset": "pythia", "jet_type": "t", "num_particles": 30, "seed": 0}
    gluon = {**top, "jet_type": "g"}
    with pytest.raises(leaderboard.LeaderboardError, match="different data recipes"):
        leaderboard.common_recipe(entries_with(registry, top, gluon), seed=1000)
    # the size of the training set does not matter, only how the jets were made
    assert leaderboard.common_recipe(entries_with(registry, {**top, "num_jets": 10}, {**top, "num_jets": 20}), 1000)
    # nor how a model preprocessed them (a logarithm of pT_rel, another scaling): the jets are the same
    logged = {**top, "log_features": ["pt_rel"], "scaling": "standard", "feature_spread": 2.0}
    assert "log_features" not in leaderboard.common_recipe(entries_with(registry, top, logged), 1000)
    # a card written before a setting existed holds its default: the same recipe as a newer card's
    newer = {**top, "conditions": [], "min_jet_pt": JetDataConfig().min_jet_pt}
    assert leaderboard.common_recipe(entries_with(registry, top, newer), 1000)["conditions"] == []
    with pytest.raises(leaderboard.LeaderboardError, match="different data recipes"):
        leaderboard.common_recipe(entries_with(registry, top, {**top, "min_jet_pt": 500.0}), 1000)


def test_spread_is_mean_and_sample_std() -> None:
    values = leaderboard.spread([{"w1m": 1.0}, {"w1m": 3.0}])
    assert values["w1m"] == pytest.approx((2.0, 2**0.5))
    assert leaderboard.spread([{"w1m": 1.0}])["w1m"] == (1.0, 0.0)


def test_leaderboard_command_writes_table_json_and_figures(tmp_path: Path) -> None:
    out = tmp_path / "board"
    args = ["leaderboard", "--models", "epic-fm-top30", "--n", "100", "--seeds", "2", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "metrics.json").read_text())
    table = MetricTable.from_dict(data)  # the schema of `pcgen eval --json`
    assert list(table.rows) == ["truth", "epic-fm-top30"]
    assert table.counts["epic-fm-top30"] == (100, 100)
    assert {"w1m", "w1p", "fpd"} <= set(table.columns)
    model = data["models"]["epic-fm-top30"]
    assert len(model["per_seed"]) == 2 and model["sampling_us_per_jet"] > 0
    w1m, spread = table.rows["epic-fm-top30"]["w1m"]
    assert 0 < w1m < 0.1 and spread > 0
    assert "epic-fm-top30" in (out / "metrics.md").read_text()
    for figure in ("distributions.png", "speed.png"):
        assert (out / figure).stat().st_size > 10_000
    again = CliRunner().invoke(app, args)  # an earlier leaderboard is not overwritten silently
    assert again.exit_code != 0 and "--force" in again.output


def test_leaderboard_copies_checks_each_model_against_its_training_jets(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def cached_training_jets(recipe: dict[str, Any], card: dict[str, Any], progress: bool = True) -> Any:
        assert card["data"]["recipe"]["seed"] == 0  # the card's own data set is what it is compared with
        # stands in for the card's 50,000 jets: the fresh set's last slice, which neither the real jets
        # (first 100) nor the truth row's slice (next 100) holds
        return leaderboard.fresh_jets(recipe, 1000, 300, progress).subset(slice(200, 300))

    monkeypatch.setattr(leaderboard, "training_jets", cached_training_jets)
    out = tmp_path / "board"
    args = ["leaderboard", "--models", "epic-fm-top30", "--n", "100", "--seeds", "1", "--copies", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    copies = json.loads((out / "metrics.json").read_text())["copies"]
    assert set(copies) == {"truth", "epic-fm-top30"}
    assert 0.5 < copies["truth"]["median_ratio"] < 2  # fresh real jets: about 1
    assert {"median_ratio", "near_copies"} == set(copies["epic-fm-top30"])
    assert "near copies" in (out / "metrics.md").read_text()
