"""Trained weights as safetensors with a model card: export, checksum, load, sampling settings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import quick_overrides

from pcgen.config import ConfigError, load_config
from pcgen.pretrained import (
    export_pretrained,
    find_pretrained,
    load_pretrained,
    load_weights_file,
    sha256_of,
    shipped_weights_hint,
)
from pcgen.sampling import load_trained
from pcgen.specs import PretrainedWeights
from pcgen.runtime.checkpoint import CheckpointError
from pcgen.train.runner import execute

pytest.importorskip("pcgen_epic_fm")
QUICK = ["model.hidden=16", "model.global_dim=4", "model.layers=1", "model.frequencies=2", "model.solver_steps=4"]


@pytest.fixture(scope="module")
def run_dir(registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("pretrained")
    cfg = load_config(None, quick_overrides(5) + QUICK + [f'run_dir="{tmp}"'], registry, plugin="epic-fm")
    return execute(cfg, registry, show_progress=False, final_eval=False).run_dir


def test_exported_weights_sample_exactly_as_the_checkpoint(registry, run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "tiny.safetensors"
    card = export_pretrained(run_dir, path, {"name": "tiny", "hardware": "test"})
    assert card["sha256"] == sha256_of(path) and card["config"]["plugin"] == "epic-fm"
    assert json.loads(path.with_suffix(".json").read_text())["name"] == "tiny"
    assert path.stat().st_mode & 0o777 == 0o644
    a = load_trained(run_dir, registry).generate(40, seed=5)
    b = load_weights_file(path, registry, sha256=card["sha256"]).generate(40, seed=5)
    assert np.array_equal(a.points, b.points) and np.array_equal(a.mask, b.mask)


def test_a_weights_file_that_does_not_match_its_checksum_is_refused(registry, run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "tiny.safetensors"
    export_pretrained(run_dir, path, {"name": "tiny"})
    with pytest.raises(CheckpointError, match="does not match its checksum"):
        load_weights_file(path, registry, sha256="0" * 64)


def test_sampling_settings_change_without_touching_the_weights(registry, run_dir: Path) -> None:
    few = load_trained(run_dir, registry, overrides=["model.solver_steps=1"])
    assert few.model.config.solver_steps == 1
    assert not np.array_equal(few.generate(20, seed=1).points, load_trained(run_dir, registry).generate(20, seed=1).points)
    with pytest.raises(ConfigError, match="only model"):
        load_trained(run_dir, registry, overrides=["train.seed=3"])
    with pytest.raises(ConfigError, match="do not fit"):
        load_trained(run_dir, registry, overrides=["model.hidden=8"])


def test_pretrained_weights_are_found_by_name_with_a_helpful_error(registry, run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "tiny.safetensors"
    card = export_pretrained(run_dir, path, {"name": "tiny"})
    spec = registry.models["epic-fm"]
    entry = PretrainedWeights(name="tiny-test", location=str(path), sha256=card["sha256"])
    registry.models["epic-fm"] = dataclasses.replace(spec, pretrained=(*spec.pretrained, entry))
    try:
        assert find_pretrained(registry, "tiny-test")[1] is entry
        assert load_pretrained("tiny-test", registry).spec.name == "epic-fm"
        with pytest.raises(CheckpointError, match="available: .*tiny-test"):
            find_pretrained(registry, "nope")
    finally:
        registry.models["epic-fm"] = spec


def test_exporting_the_same_weights_again_keeps_the_file_and_its_checksum(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "tiny.safetensors"
    first = export_pretrained(run_dir, path, {"name": "tiny"})
    written = path.stat().st_mtime_ns
    second = export_pretrained(run_dir, path, {"name": "tiny", "hardware": "a new card field"})
    assert second["sha256"] == first["sha256"] and path.stat().st_mtime_ns == written
    assert json.loads(path.with_suffix(".json").read_text())["hardware"] == "a new card field"


def test_the_end_of_a_run_names_the_shipped_weights_for_the_same_data(registry, run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "tiny.safetensors"
    recipe = {"dataset": "pythia", "jet_type": "t", "num_particles": 30, "num_jets": 50_000}
    card = export_pretrained(run_dir, path, {"name": "tiny", "data": {"recipe": recipe}, "training_minutes": 60,
                                             "metrics": {"w1m": {"model": [4.3, 0.2], "truth": [1.96, 0.05]}}})
    spec = dataclasses.replace(registry.models["epic-fm"],
                               pretrained=(PretrainedWeights(name="tiny-test", location=str(path), sha256=card["sha256"]),))
    hint = shipped_weights_hint(spec, {**recipe, "num_jets": 10_000})  # the data's size does not matter
    assert "tiny-test: trained 60 min; its card: W1M 4.30 vs truth 1.96 (×10⁻³)" in hint
    assert "pcgen sample --pretrained tiny-test" in hint and "pcgen leaderboard" in hint
    assert shipped_weights_hint(spec, {**recipe, "num_particles": 150}) == ""
    assert shipped_weights_hint(spec, {**recipe, "dataset": "calo-photons"}) == ""


def test_the_readme_main_job_ends_by_naming_igapts_trained_weights(registry) -> None:
    pytest.importorskip("pcgen_igapt")
    data = load_config(None, [], registry, plugin="igapt").run.data.model_dump()
    assert "pcgen sample --pretrained igapt-top30" in shipped_weights_hint(registry.models["igapt"], data)
