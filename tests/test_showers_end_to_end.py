"""Calorimeter showers through the whole pipeline: data set defaults, training, shower metrics, figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pcgen.cli import app
from pcgen.config import ConfigError, load_config
from pcgen.data.store import read_pointclouds
from pcgen.train.runner import execute

SMALL_SHOWERS = [
    "data.num_jets=160", "data.num_particles=256", "train.max_steps=6", "train.batch_size=8",
    "train.time_budget_minutes=0", "train.eval_every=4", "eval.num_jets=40", "recipe.warmup_steps=2",
]


def quick(registry, name: str) -> list[str]:
    return [f"model.{k}={json.dumps(v)}" for k, v in registry.model(name).quick_config.items()]


def test_shower_data_sets_are_registered_with_their_defaults(registry) -> None:
    assert registry.dataset("calo-photons").kind == "showers"
    assert registry.dataset("calochallenge-2").kind == "showers"
    cfg = load_config(None, ['data.dataset="calo-photons"'], registry, plugin="igapt")
    assert cfg.run.data.num_particles == 1700 and cfg.run.train.batch_size == 16  # the data set's defaults
    mine = load_config(None, ['data.dataset="calo-photons"', "train.batch_size=4"], registry, plugin="igapt")
    assert mine.run.train.batch_size == 4  # the user wins


@pytest.mark.parametrize("plugin", ["omnijet", "mdma"])
def test_a_model_trains_on_showers_and_is_evaluated_with_shower_metrics(registry, plugin: str, tmp_path: Path) -> None:
    sets = ['data.dataset="calo-photons"', *SMALL_SHOWERS, *quick(registry, plugin), f'run_dir="{tmp_path}"']
    result = execute(load_config(None, sets, registry, plugin=plugin), registry, show_progress=False)
    row = result.table.rows[plugin]
    assert {"w1esum", "w1nhits", "w1cog", "w1layer", "w1radial", "w1ehit", "w1cog_x"} <= set(row)
    assert "w1m" not in row and all(np.isfinite(v) for v, _ in row.values())
    samples = read_pointclouds(result.run_dir / "samples.h5")
    assert samples.feature_names == ("x", "y", "z", "E") and samples.kind == "showers"
    assert (samples.points[..., 3][samples.mask] > 0).all()
    assert (result.run_dir / "distributions.png").is_file() and (result.run_dir / "multiplicity.png").is_file()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(result.run_dir / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    assert {"generated/energy_sum", "real/num_hits", "generated/cog_z", "real/layer_energy",
            "generated/radial_energy"} <= set(tags["histograms"])
    assert {"metrics/w1esum", "metrics/w1nhits", "metrics/w1cog"} <= set(tags["scalars"])  # in-training eval
    assert {"final/distributions", "distributions"} <= set(tags["images"])


def test_metrics_of_the_wrong_kind_are_refused_before_training(registry, tmp_path: Path) -> None:
    sets = ['data.dataset="calo-photons"', *SMALL_SHOWERS, 'eval.during_training=["w1m"]', f'run_dir="{tmp_path}"']
    with pytest.raises(ConfigError, match="w1m"):
        execute(load_config(None, sets, registry, plugin="igapt"), registry, show_progress=False)


def test_the_cli_data_option_selects_the_data_set(tmp_path: Path) -> None:
    args = ["run", "--plugin", "omnijet", "--data", "calo-photons", "--quiet"]
    for item in [*SMALL_SHOWERS, 'model.codebook_size=64', "model.embed_dim=32", "model.num_heads=2",
                 "model.num_blocks=1", f'run_dir="{tmp_path}"', 'name="cli"', f'data.cache_dir="{tmp_path}"']:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    saved = (tmp_path / "cli" / "config.toml").read_text()
    assert 'dataset = "calo-photons"' in saved and "num_particles = 256" in saved
    bad = CliRunner().invoke(app, ["run", "--plugin", "omnijet", "--data", "no-such-data"])
    assert bad.exit_code == 2 and "no-such-data" in bad.stderr


def test_pcgen_eval_compares_shower_files_with_shower_metrics(tmp_path: Path) -> None:
    from pcgen.data.shower_sim import simulate_showers
    from pcgen.data.store import write_pointclouds

    real, fake = tmp_path / "real.h5", tmp_path / "fake.h5"
    write_pointclouds(simulate_showers(120, seed=1, max_hits=1700), real)
    write_pointclouds(simulate_showers(60, seed=2, max_hits=1700), fake)
    result = CliRunner().invoke(app, ["eval", "--samples", str(fake), "--reference", str(real), "--n", "60",
                                      "--markdown", str(tmp_path / "table.md"), "--plot", str(tmp_path / "d.png")])
    assert result.exit_code == 0, result.stderr
    table = (tmp_path / "table.md").read_text()
    assert "W1 E_sum (MeV)" in table and "truth" in table and "W1M" not in table
    assert (tmp_path / "d.png").stat().st_size > 10_000
    jets = tmp_path / "jets.h5"
    from toydata import toy_jets

    write_pointclouds(toy_jets(60, 30, seed=0), jets)
    mixed = CliRunner().invoke(app, ["eval", "--samples", str(jets), "--reference", str(real)])
    assert mixed.exit_code == 2 and "compare like with like" in mixed.stderr
