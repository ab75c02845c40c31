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
