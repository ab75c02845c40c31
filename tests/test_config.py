"""Config: TOML + --set overrides, plugin defaults, and error messages naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import quick_overrides

from pcgen.config import ConfigError, apply_overrides, load_config, parse_override, read_toml, resolve, to_toml


def test_defaults_resolve_with_the_plugins_paper_values(registry) -> None:
    cfg = load_config(None, [], registry, plugin="igapt")
    assert cfg.run.plugin == "igapt"
    assert cfg.recipe.optimizer == "rmsprop"
    assert cfg.recipe.lr_generator == pytest.approx(0.5e-4)
    assert cfg.recipe.lr_critic == pytest.approx(1.5e-4)
    assert cfg.run.data.train_fraction == pytest.approx(0.7)


def test_set_overrides_typed_values_and_user_beats_plugin_defaults(registry) -> None:
    cfg = load_config(None, ["train.epochs=3", "recipe.lr_critic=2e-4", "data.jet_type=g"], registry, plugin="igapt")
    assert cfg.run.train.epochs == 3
    assert cfg.recipe.lr_critic == pytest.approx(2e-4)
    assert cfg.run.data.jet_type == "g"


def test_toml_file_and_overrides_combine(tmp_path: Path, registry) -> None:
    path = tmp_path / "my.toml"
    path.write_text('plugin = "igapt"\n[train]\nbatch_size = 64\nepochs = 2\n')
    cfg = load_config(path, ["train.epochs=3"], registry)
    assert (cfg.run.train.batch_size, cfg.run.train.epochs) == (64, 3)


def test_unknown_key_names_the_key_and_the_allowed_ones(registry) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ["train.epoch=3"], registry, plugin="igapt")
    text = str(err.value)
    assert "train.epoch" in text and "epochs" in text and "batch_size" in text


def test_unknown_model_key_is_reported_with_its_section(registry) -> None:
    with pytest.raises(ConfigError, match=r"model\.not_a_setting"):
        load_config(None, ["model.not_a_setting=1"], registry, plugin="igapt")


def test_wrong_type_and_impossible_value_fail_before_any_work(registry) -> None:
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        load_config(None, ["train.epochs=abc"], registry, plugin="igapt")
    with pytest.raises(ConfigError, match=r"train\.batch_size"):
        load_config(None, ["train.batch_size=-4"], registry, plugin="igapt")
    with pytest.raises(ConfigError, match=r"recipe\.loss"):
        load_config(None, ["recipe.loss=hinge2"], registry, plugin="igapt")
    with pytest.raises(ConfigError, match="data.dataset"):
        load_config(None, ["data.dataset=nope"], registry, plugin="igapt")


def test_a_run_names_its_model_and_the_core_picks_none(registry) -> None:
    with pytest.raises(ConfigError, match="no model chosen: pass --plugin NAME.*igapt"):
        load_config(None, ["train.max_steps=3"], registry)


def test_jet_settings_belong_to_jet_data_only(registry) -> None:
    jets = load_config(None, ["data.jet_type=w", "data.min_jet_pt=500"], registry, plugin="igapt").run.data
    assert (jets.jet_type, jets.min_jet_pt) == ("w", 500.0)
    assert load_config(None, [], registry, plugin="igapt").to_dict()["data"]["jet_type"] == "t"  # saved with the run
    with pytest.raises(ConfigError, match="unknown key 'data.jet_type'"):
        load_config(None, ['data.dataset="calo-photons"', "data.jet_type=w"], registry, plugin="mdma")
    with pytest.raises(ConfigError, match="min_jet_pt"):
        load_config(None, ["data.min_jet_pt=2000"], registry, plugin="igapt")


def test_a_run_needs_some_limit(registry) -> None:
    with pytest.raises(ConfigError, match="max_steps"):
        load_config(None, ["train.time_budget_minutes=0"], registry, plugin="igapt")


def test_missing_and_malformed_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_toml(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_toml(bad)


def test_parse_override_reads_toml_values_and_falls_back_to_strings() -> None:
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("x=1e-4") == (["x"], 1e-4)
    assert parse_override("x=true") == (["x"], True)
    assert parse_override("x=hello") == (["x"], "hello")
    with pytest.raises(ConfigError):
        parse_override("novalue")
    with pytest.raises(ConfigError):
        apply_overrides({"a": 1}, ["a.b=2"])


def test_saved_toml_round_trips_to_the_same_config(registry) -> None:
    cfg = load_config(None, quick_overrides(), registry, plugin="igapt")
    again = resolve(__import__("tomllib").loads(to_toml(cfg.to_dict())), registry)
    assert again.to_dict() == cfg.to_dict()
