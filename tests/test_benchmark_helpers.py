"""The benchmarks' shared measuring code still fits the core's API (benchmarks are not run in CI, so a
change of a core signature would otherwise break them silently, as it did for ``prepare``)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest
from toydata import toy_jets

from pcgen.metrics.evaluate import efp_normalisation

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(p.stem for p in BENCHMARKS.glob("*.py")))
def test_every_benchmark_imports(name: str) -> None:
    benchmark(name)


def test_the_trained_model_table_measures_every_metric_against_a_truth_slice(registry) -> None:
    trained_models = benchmark("trained_models")
    clouds = toy_jets(600, 30, seed=3)
    real, truth = trained_models.real_and_truth(clouds, 0, 200, pairs=2)
    norm = efp_normalisation(clouds.subset(slice(200, None)), "toy truth slices")
    values = trained_models.measure(real, truth[0], registry, norm)
    assert set(values) == set(trained_models.METRICS) and all(math.isfinite(v) for v in values.values())
    assert min(values["w1m"], values["w1p"], values["w1efp"]) > 0  # FPD and KPD are unbiased: may dip below 0
    assert len(truth) == 2 and all(len(t) == len(real) == 200 for t in truth)


def test_the_few_step_reference_measures_w1m_w1p_fpd_on_jets_that_declare_no_kind(registry, monkeypatch) -> None:
    few_step = benchmark("few_step_sampling")
    clouds = toy_jets(600, 30, seed=4)
    clouds.meta.pop("kind", None)  # fresh Pythia jets do not declare their kind: the registry must recognise them
    monkeypatch.setattr(few_step, "select_entries", lambda registry, names: [])
    monkeypatch.setattr(few_step, "common_recipe", lambda entries, seed: {"dataset": "pythia"})
    monkeypatch.setattr(few_step, "fresh_jets", lambda recipe, seed, num: clouds.subset(slice(0, num)))
    reference = few_step.ReferenceJets.of(registry, ["any"], 150, spare=1)
    assert {"w1m", "w1p", "fpd"} <= set(reference.truth)
    assert len(reference.spare) == 150 and reference.spare.fingerprint() == clouds.subset(slice(450, 600)).fingerprint()
    values = reference.measure(toy_jets(200, 30, seed=5))
    assert all(math.isfinite(values[m]) and values[m] != 0 for m in ("w1m", "w1p", "fpd"))


def test_the_source_tree_environment_exposes_each_plugins_entry_point(tmp_path: Path) -> None:
    """What gpu_train.sh relies on where the project's venv is missing: the dist-info it writes make
    pluggy's entry-point discovery find every plugin of the source tree."""
    from importlib.metadata import distributions

    source_tree_env = benchmark("source_tree_env")
    root = BENCHMARKS.parent
    for pyproject in [root / "core" / "pyproject.toml", *sorted(root.glob("plugins/*/pyproject.toml"))]:
        source_tree_env.write_dist_info(pyproject, tmp_path)
    found = {ep.name: ep.value for dist in distributions(path=[str(tmp_path)])
             for ep in dist.entry_points if ep.group == "pcgen.plugins"}
    assert found["igapt"] == "pcgen_igapt.plugin" and found["omnijet"] == "pcgen_omnijet.plugin"
    assert len(found) == len(list(root.glob("plugins/*/pyproject.toml")))


def test_gpu_runs_come_back_as_slim_float16_checkpoints_in_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from pcgen.runtime.checkpoint import load_checkpoint, save_checkpoint

    gpu_train = benchmark("gpu_train")
    run = tmp_path / "work" / "igapt-gpu"
    save_checkpoint({"loop": {"step": 7}, "model": {"w": torch.randn(64, 64), "n": torch.arange(3)},
                     "recipe": {"optimiser": torch.zeros(64, 64)}, "rng_torch": torch.zeros(8, dtype=torch.uint8)},
                    run / "checkpoints" / "best.pt")
    stage = tmp_path / "stage"
    assert gpu_train.slim_checkpoint(run / "checkpoints" / "best.pt", stage / "igapt-gpu" / "best.pt") == {"step": 7}
    monkeypatch.setattr(gpu_train, "PART_BYTES", 4096)  # several parts, joined in order on the way back
    parts = gpu_train.pack(stage, tmp_path / "out")
    assert len(parts) > 1
    gpu_train.unpack(tmp_path / "out", tmp_path / "runs")
    slim = load_checkpoint(tmp_path / "runs" / "igapt-gpu" / "best.pt")
    assert "recipe" not in slim and "rng_torch" not in slim
    assert slim["model"]["w"].dtype == torch.float16 and slim["model"]["n"].dtype == torch.int64


@pytest.mark.parametrize("weights", ["epic-fm-top30", "epic-fm-reflow-top30"])
def test_pythia_timing_accepts_the_data_recipe_of_a_shipped_card(weights: str, registry, tmp_path: Path) -> None:
    from pcgen.pretrained import read_card

    few_step_sampling = benchmark("few_step_sampling")
    card = read_card(next(w for w in registry.model("epic-fm").pretrained if w.name == weights))
    config = few_step_sampling.pythia_config(card["data"]["recipe"], 25, 1007, str(tmp_path))
    assert (config.num_jets, config.seed, config.jet_type) == (25, 1007, card["data"]["recipe"]["jet_type"])
