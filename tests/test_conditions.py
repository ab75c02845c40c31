"""Conditions end to end: a kind declares them, a model accepts them, training feeds them preprocessed,
`pcgen sample` takes them from a file or the command line, and samples record them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from pcgen.cli import app
from pcgen.config import ConfigError, load_config
from pcgen.data.conditions import ConditionError, ConditionModel, parse_condition
from pcgen.data.pointclouds import PointClouds
from pcgen.data.store import read_pointclouds, write_pointclouds
from pcgen.kinds.jets import JETS
from pcgen.kinds.showers import SHOWERS
from pcgen.train.runner import execute

SHOWER_RUN = [
    'data.dataset="calo-photons"', "data.num_jets=240", "data.num_particles=128", 'data.conditions=["incident_energy"]',
    "train.max_steps=6", "train.batch_size=16", "train.time_budget_minutes=0", "train.eval_every=3",
    "eval.num_jets=60", "recipe.warmup_steps=2",
]


@pytest.mark.parametrize(("text", "name", "value"), [
    ("incident_energy=50GeV", "incident_energy", 50_000.0), ("incident_energy = 2.5e4", "incident_energy", 25_000.0),
    ("incident_energy=0.1TeV", "incident_energy", 100_000.0), ("num_hits=20", "num_hits", 20.0),
])
def test_condition_values_are_read_in_the_conditions_unit(text: str, name: str, value: float) -> None:
    spec, number = parse_condition(text, SHOWERS)
    assert spec.name == name and number == pytest.approx(value)
    assert parse_condition("pt=1.2TeV", JETS)[1] == pytest.approx(1200.0)


@pytest.mark.parametrize(("text", "message"), [
    ("incident_energy", "NAME=VALUE"), ("energy=5GeV", "no condition 'energy'.*incident_energy"),
    ("incident_energy=5m", "unit 'm'"), ("incident_energy=-5GeV", "positive"), ("num_hits=2GeV", "unit 'GeV'"),
    ("incident_energy=lots", "not a number"),
])
def test_bad_conditions_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConditionError, match=message):
        parse_condition(text, SHOWERS)


def showers_with_energy(energy: np.ndarray, hits: np.ndarray, n: int = 16) -> PointClouds:
    mask = np.arange(n)[None] < hits[:, None]
    points = np.where(mask[..., None], 1.0, 0.0).astype(np.float32) * np.ones((len(hits), n, 4), np.float32)
    globs = np.stack([energy, hits], 1).astype(np.float32)
    return PointClouds(points, mask, ("x", "y", "z", "E"), globs, ("incident_energy", "num_hits"), {"kind": "showers"})


def test_the_condition_model_standardises_logs_and_draws_multiplicities_of_similar_clouds() -> None:
    energy = np.geomspace(1e4, 1e5, 400)
    clouds = showers_with_energy(energy, np.where(energy < 3e4, 3, 14))
    model = ConditionModel.fit(clouds, SHOWERS, ["incident_energy"])
    scaled = model.transform(energy[:, None])
    assert abs(float(scaled.mean())) < 1e-5 and float(scaled.std()) == pytest.approx(1.0, rel=1e-2)
    assert torch.allclose(scaled[:, 0].double(), torch.from_numpy((np.log(energy) - np.log(energy).mean())
                                                                    / np.log(energy).std(ddof=1)), atol=1e-5)
    generator = torch.Generator().manual_seed(0)
    assert set(model.multiplicities_for(np.full((50, 1), 1.2e4), generator).tolist()) == {3}
    assert set(model.multiplicities_for(np.full((50, 1), 9e4), generator).tolist()) == {14}
    again = ConditionModel.from_state_dict(model.state_dict())
    assert again.names == ("incident_energy",) and torch.equal(again.transform(energy[:, None]), scaled)
    with pytest.raises(ConditionError, match="incident_energy"):
        ConditionModel.fit(showers_with_energy(np.full(4, np.nan), np.full(4, 3)), SHOWERS, ["incident_energy"])


def test_configs_refuse_conditions_the_data_or_the_model_do_not_have(registry) -> None:
    with pytest.raises(ConfigError, match="not a condition of jets.*pt, mass"):
        load_config(None, ['data.conditions=["incident_energy"]'], registry, plugin="mdma")
    with pytest.raises(ConfigError, match="igapt cannot be conditioned on pt.*unconditional"):
        load_config(None, ['data.conditions=["pt"]'], registry, plugin="igapt")
    assert load_config(None, ['data.conditions=["pt", "mass"]'], registry, plugin="epic-fm").run.data.conditions == ["pt", "mass"]


@pytest.fixture(scope="module")
def conditional_showers(registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("cond")
    quick = [f"model.{k}={json.dumps(v)}" for k, v in registry.model("mdma").quick_config.items()]
    sets = [*SHOWER_RUN, *quick, f'run_dir="{tmp}"', 'name="mdma-cond"', f'data.cache_dir="{tmp}"']
    result = execute(load_config(None, sets, registry, plugin="mdma"), registry, show_progress=False)
    return result.run_dir


def test_a_shower_model_conditioned_on_energy_is_evaluated_per_energy_bin(conditional_showers: Path) -> None:
    run = conditional_showers
    samples = read_pointclouds(run / "samples.h5")
    energy = samples.globals[:, samples.global_names.index("incident_energy")]
    assert np.isfinite(energy).all() and 1e4 <= energy.min() and energy.max() <= 1e5  # the held-out showers' energies
    assert samples.meta["conditions"] == ["incident_energy"]
    table = (run / "energy_bins.md").read_text()
    assert table.count("\n|") >= 6 and "E_inc" in table  # header, rule and at least 5 bins
    rows = json.loads((run / "energy_bins.json").read_text())
    assert len(rows) >= 5 and all(r["real_count"] > 0 for r in rows)
    assert (run / "response.png").stat().st_size > 5_000


def test_pcgen_sample_takes_conditions_from_the_command_line_and_from_a_file(conditional_showers: Path,
                                                                             tmp_path: Path) -> None:
    out = tmp_path / "fixed.h5"
    result = CliRunner().invoke(app, ["sample", "--checkpoint", str(conditional_showers), "--n", "30", "--out", str(out),
                                      "--condition", "incident_energy=50GeV", "--condition", "num_hits=40"])
    assert result.exit_code == 0, result.stderr
    fixed = read_pointclouds(out)
    assert (fixed.globals[:, 0] == 50_000.0).all() and (fixed.multiplicity == 40).all()

    reference = read_pointclouds(conditional_showers / "samples.h5").subset(slice(0, 25))
    write_pointclouds(reference, tmp_path / "conditions.h5")
    out = tmp_path / "like.h5"
    result = CliRunner().invoke(app, ["sample", "--checkpoint", str(conditional_showers), "--out", str(out),
                                      "--conditions", str(tmp_path / "conditions.h5")])
    assert result.exit_code == 0, result.stderr
    like = read_pointclouds(out)
    assert len(like) == 25
    np.testing.assert_array_equal(like.globals[:, 0], reference.globals[:, 0])
    np.testing.assert_array_equal(like.multiplicity, reference.multiplicity)

    bad = CliRunner().invoke(app, ["sample", "--checkpoint", str(conditional_showers), "--n", "5", "--out",
                                   str(tmp_path / "bad.h5"), "--condition", "pt=1TeV"])
    assert bad.exit_code != 0 and "no condition 'pt'" in bad.stderr


def test_a_conditional_models_samples_follow_its_condition(conditional_showers: Path, registry) -> None:
    from pcgen.sampling import load_trained

    trained = load_trained(conditional_showers, registry)
    low = trained.generate(64, seed=3, conditions={"incident_energy": 1.1e4, "num_hits": 30})
    high = trained.generate(64, seed=3, conditions={"incident_energy": 9e4, "num_hits": 30})
    assert not np.allclose(low.points, high.points)  # same noise and masks: only the condition differs


def test_exported_weights_keep_the_conditions(conditional_showers: Path, registry, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    import pcgen.cli
    from pcgen.pretrained import export_pretrained, load_weights_file
    from pcgen.sampling import load_trained
    from pcgen.specs import PretrainedWeights

    card = export_pretrained(conditional_showers / "checkpoints" / "last.pt", tmp_path / "cond.safetensors",
                             {"name": "cond"})
    shipped = load_weights_file(tmp_path / "cond.safetensors", registry)
    original = load_trained(conditional_showers, registry)
    assert shipped.conditions is not None and shipped.conditions.names == ("incident_energy",)
    request = {"incident_energy": 3e4, "num_hits": 50}
    a, b = (m.generate(8, seed=2, conditions=request) for m in (shipped, original))
    np.testing.assert_array_equal(a.points, b.points)
    assert (a.globals[:, 0] == 3e4).all()

    entry = PretrainedWeights(name="mdma-cond-test", location=str(tmp_path / "cond.safetensors"), sha256=card["sha256"])
    spec = registry.models["mdma"]
    monkeypatch.setitem(registry.models, "mdma", dataclasses.replace(spec, pretrained=(*spec.pretrained, entry)))
    monkeypatch.setattr(pcgen.cli, "_registry", lambda: registry)
    out = tmp_path / "pretrained.h5"
    result = CliRunner().invoke(app, ["sample", "--pretrained", "mdma-cond-test", "--n", "12", "--out", str(out),
                                      "--condition", "incident_energy=20GeV"])
    assert result.exit_code == 0, result.stderr
    assert (read_pointclouds(out).globals[:, 0] == 20_000.0).all()


def test_a_calochallenge_file_is_compared_per_incident_energy_bin(registry, tmp_path: Path) -> None:
    from pcgen.data.calo import DATASET2, VoxelShowers, write_calochallenge

    rng = np.random.default_rng(5)
    incident = np.exp(rng.uniform(np.log(1e3), np.log(1e6), 300)).astype(np.float32)  # 1 GeV - 1 TeV, MeV
    voxels = rng.exponential(1.0, (300, DATASET2.num_voxels)) * (rng.random((300, DATASET2.num_voxels)) < 0.05)
    voxels *= (incident / voxels.sum(1))[:, None] * 0.3  # a response of 0.3 at every energy
    path = write_calochallenge(VoxelShowers(voxels.astype(np.float32), incident, DATASET2), tmp_path / "ds2.h5")
    config = load_config(None, ['data.dataset="calochallenge-2"', f'data.path="{path}"', "data.num_particles=400",
                                "data.num_jets=300", "train.max_steps=1"], registry, plugin="mdma")
    showers = config.dataset.load(config.run.data, progress=False)
    kind = registry.kind_of(showers)
    reports = kind.reports(showers, showers)
    rows = reports["json"]["energy_bins"]
    assert len(rows) == 5 and sum(r["real_count"] for r in rows) == 300
    assert all(abs(r["real_response"] - 0.3) < 0.01 and r["w1_response"] == 0 for r in rows)
    assert len(reports["figures"]["response"].axes) == 2
