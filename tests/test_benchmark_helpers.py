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
