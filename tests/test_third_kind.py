"""A kind of point cloud the core has never heard of ("tracker hits"), registered by a test plugin exactly
as a third party would: it trains, samples (conditioned on its beam energy) and evaluates with no core change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torchmetrics import Metric

from pcgen import hookimpl
from pcgen.config import load_config
from pcgen.data.pointclouds import PointClouds
from pcgen.data.store import read_pointclouds
from pcgen.plugins import load_registry
from pcgen.specs import ConditionSpec, DatasetSpec, KindSpec, MetricSpec
from pcgen.train.runner import execute

HIT_FEATURES = ("radius", "charge")
HIT_GLOBALS = ("beam_energy", "num_hits")


def tracker_hits(num: int, max_hits: int, seed: int) -> PointClouds:
    """Hits whose count and radius grow with a beam energy log-uniform in [1, 10] (made-up physics)."""
    rng = np.random.default_rng(seed)
    energy = np.exp(rng.uniform(0.0, np.log(10.0), num))
    count = np.clip(np.round(energy * max_hits / 10.0 + rng.normal(0, 1, num)), 2, max_hits).astype(int)
    mask = np.arange(max_hits)[None] < count[:, None]
    radius = rng.exponential(1.0, (num, max_hits)) * energy[:, None]
    charge = rng.normal(0.0, 1.0, (num, max_hits))
    points = np.where(mask[..., None], np.stack([radius, charge], -1), 0.0).astype(np.float32)
    globs = np.stack([energy, count], 1).astype(np.float32)
    return PointClouds(points, mask, HIT_FEATURES, globs, HIT_GLOBALS, {"kind": "tracker-hits"})


class W1Radius(Metric):
    """W1 of the hit radii (value, 0)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.add_state("real", default=[], dist_reduce_fx="cat")
        self.add_state("fake", default=[], dist_reduce_fx="cat")

    def update(self, real: torch.Tensor, real_mask: torch.Tensor, fake: torch.Tensor, fake_mask: torch.Tensor) -> None:
        self.real.append(real[..., 0][real_mask])
        self.fake.append(fake[..., 0][fake_mask])

    def compute(self) -> tuple[float, float]:
        from scipy.stats import wasserstein_distance

        real, fake = (torch.cat(x).numpy() if isinstance(x, list) else x.numpy() for x in (self.real, self.fake))
        return float(wasserstein_distance(real, fake)), 0.0


def hit_figure(real: PointClouds, fakes: dict[str, PointClouds], bins: int) -> Figure:
    figure = Figure()
    axes = figure.subplots()
    axes.hist(real.points[..., 0][real.mask], bins=bins, histtype="step", label="real")
    for name, fake in fakes.items():
        axes.hist(fake.points[..., 0][fake.mask], bins=bins, histtype="step", label=name)
    return figure


def hit_globals(points: np.ndarray, mask: np.ndarray, conditions: dict[str, np.ndarray]):  # noqa: ANN201
    hits = mask.sum(1).astype(np.float32)
    energy = np.asarray(conditions.get("beam_energy", np.full_like(hits, np.nan)), np.float32)
    return np.stack([energy, hits], 1), HIT_GLOBALS


def column(name: str):  # noqa: ANN201
    return lambda clouds: clouds.globals[:, clouds.global_names.index(name)].astype(np.float64)


TRACKER_HITS = KindSpec(
    name="tracker-hits", noun="events", feature_names=HIT_FEATURES,
    observables=lambda clouds: {"num_hits": clouds.multiplicity.astype(float)},
    figure=hit_figure, generated_globals=hit_globals, sort_feature="radius",
    conditions=(ConditionSpec("beam_energy", "GeV", column("beam_energy"), "beam energy", log=True),
                ConditionSpec("num_hits", "", lambda c: c.multiplicity.astype(float), "hits", multiplicity=True)),
)


class TrackerPlugin:
    """What a third party's plugin module holds: a kind, its data set and its metric."""

    __name__ = "tracker-plugin"

    @hookimpl
    def pcgen_register_kinds(self) -> list[KindSpec]:
        return [TRACKER_HITS]

    @hookimpl
    def pcgen_register_datasets(self) -> list[DatasetSpec]:
        load = lambda config, progress=True: tracker_hits(config.num_jets, config.num_particles, config.seed)  # noqa: E731
        return [DatasetSpec("tracker-toy", load, "made-up tracker hits", kind="tracker-hits")]

    @hookimpl
    def pcgen_register_metrics(self) -> list[MetricSpec]:
        return [MetricSpec("w1r", W1Radius, "tracker-hits", "W1 of the hit radius", during_training=True)]


@pytest.fixture(scope="module")
def registry():  # noqa: ANN201
    return load_registry(extra_plugins=[TrackerPlugin()])


def test_the_registry_recognises_the_new_kind_by_its_declaration_or_features(registry) -> None:
    clouds = tracker_hits(5, 8, 0)
    assert registry.kind_of(clouds) is TRACKER_HITS
    undeclared = PointClouds(clouds.points, clouds.mask, HIT_FEATURES)
    assert registry.kind_of(undeclared) is TRACKER_HITS
    strange = PointClouds(clouds.points, clouds.mask, ("a", "b"))
    with pytest.raises(Exception, match="no registered kind"):
        registry.kind_of(strange)


def test_a_third_kind_trains_samples_on_a_condition_and_evaluates(registry, tmp_path: Path) -> None:
    quick = [f"model.{k}={json.dumps(v)}" for k, v in registry.model("mdma").quick_config.items()]
    sets = ['data.dataset="tracker-toy"', "data.num_jets=300", "data.num_particles=12", 'data.conditions=["beam_energy"]',
            "train.max_steps=8", "train.batch_size=16", "train.time_budget_minutes=0", "train.eval_every=4",
            "eval.num_jets=60", "recipe.warmup_steps=2", f'run_dir="{tmp_path}"', *quick]
    result = execute(load_config(None, sets, registry, plugin="mdma"), registry, show_progress=False)
    assert result.table.count_label == "events" and np.isfinite(result.table.rows["mdma"]["w1r"][0])
    samples = read_pointclouds(result.run_dir / "samples.h5")
    assert samples.kind == "tracker-hits" and samples.global_names == HIT_GLOBALS
    test = tracker_hits(300, 12, 0).split(0.7, 42)[1].subset(slice(0, 60))
    np.testing.assert_allclose(samples.globals[:, 0], test.globals[:, 0], rtol=1e-6)  # the held-out events' energies
    np.testing.assert_array_equal(samples.multiplicity, test.multiplicity)

    from pcgen.sampling import load_trained

    trained = load_trained(result.run_dir, registry)
    low = trained.generate(200, seed=1, conditions={"beam_energy": 1.5})
    high = trained.generate(200, seed=1, conditions={"beam_energy": 9.0})
    assert (low.globals[:, 0] == 1.5).all() and (high.globals[:, 0] == 9.0).all()
    assert low.multiplicity.mean() < high.multiplicity.mean()  # multiplicities of training events with that energy
    with pytest.raises(ValueError, match="beam_energy"):
        trained.generate(10, conditions={"num_hits": 4})
