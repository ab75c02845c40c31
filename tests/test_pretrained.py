"""Trained weights as safetensors with a model card: export, checksum, load, sampling settings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import quick_overrides

from pcgen.config import ConfigError, load_config
from pcgen.pretrained import export_pretrained, find_pretrained, load_pretrained, load_weights_file, sha256_of
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
