"""Tests of the shower metrics: bootstrapped W1s of shower observables, checked against scipy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pcgen.data import shower_observables as obs
from pcgen.data.pointclouds import PointClouds
from pcgen.data.shower_sim import simulate_showers
from pcgen.metrics import (
    SHOWER_LABELS,
    SHOWER_METRICS,
    ShowerValues,
    W1CentreOfGravity,
    W1EnergySum,
    W1HitEnergy,
    W1LayerEnergy,
    W1NumHits,
    W1RadialProfile,
    bootstrap_w1,
    infer_num_layers,
)
from scipy.stats import wasserstein_distance

NUM = 200
SEED = 42
BATCHES = 5


@pytest.fixture(scope="module")
def showers() -> PointClouds:
    return simulate_showers(NUM, seed=3, max_hits=1700)


@pytest.fixture(scope="module")
def other() -> PointClouds:
    return simulate_showers(150, seed=4, max_hits=1700)


def transformed(clouds: PointClouds, energy: float = 1.0, dz: float = 0.0) -> PointClouds:
    """Hits with energies scaled by ``energy`` and z shifted by ``dz`` (padding stays zero)."""
    points = clouds.points.astype(np.float64).copy()
    points[..., 3] *= energy
    points[..., 2] += dz
    points *= clouds.mask[..., None]
    return PointClouds(points.astype(np.float32), clouds.mask, clouds.feature_names)


def with_garbage(clouds: PointClouds, seed: int = 0) -> PointClouds:
    """Large random numbers, nan and inf in every padded slot."""
    rng = np.random.default_rng(seed)
    garbage = rng.normal(50.0, 1e4, clouds.points.shape)
    garbage[::3, ::7] = np.nan
    garbage[1::3, ::5] = np.inf
    points = np.where(clouds.mask[..., None], clouds.points, garbage).astype(np.float32)
    return PointClouds(points, clouds.mask, clouds.feature_names)


def compute(metric, real: PointClouds, fake: PointClouds) -> np.ndarray:  # noqa: ANN001
    metric.update(torch.from_numpy(real.points), torch.from_numpy(real.mask), torch.from_numpy(fake.points),
                  torch.from_numpy(fake.mask))
    return metric.compute().numpy()


def expected(real_obs: np.ndarray, fake_obs: np.ndarray, size: int | None = None) -> tuple[float, float]:
    """Mean and std of scipy W1s of per-shower observables over explicitly resampled subsets
    (``(showers, K)`` observables are compared column by column and averaged)."""
    size = size or min(len(real_obs), len(fake_obs))
    rng, w1s = np.random.default_rng(SEED), []
    real_obs, fake_obs = real_obs.reshape(len(real_obs), -1), fake_obs.reshape(len(fake_obs), -1)
    for _ in range(BATCHES):
        a, b = real_obs[rng.choice(len(real_obs), size)], fake_obs[rng.choice(len(fake_obs), size)]
        w1s.append(np.mean([wasserstein_distance(a[:, k], b[:, k]) for k in range(a.shape[1])]))
    return float(np.mean(w1s)), float(np.std(w1s))


def hit_energies(clouds: PointClouds) -> np.ndarray:
    return clouds.points[..., 3].astype(np.float64)


def esum(clouds: PointClouds) -> np.ndarray:
    return (hit_energies(clouds) * clouds.mask).sum(1)


def cog(clouds: PointClouds) -> np.ndarray:
    e = hit_energies(clouds) * clouds.mask
    return (clouds.points[..., :3].astype(np.float64) * e[..., None]).sum(1) / e.sum(1, keepdims=True)


# ------------------------------------------------------------------------------------------------


def test_identical_sets_give_about_zero(showers):
    for metric, observable in ((W1EnergySum(), esum(showers)), (W1NumHits(), showers.multiplicity)):
        value, error = compute(metric, showers, showers)
        assert 0 <= value < 0.15 * np.std(observable)  # only the bootstrap's sampling noise
        assert error >= 0
    value, _ = compute(W1CentreOfGravity(), showers, showers)
    assert value < 0.15 * np.std(cog(showers)[:, 2])


def test_energy_scale_matches_scipy(showers):
    fake = transformed(showers, energy=1.1)
    value, error = compute(W1EnergySum(), showers, fake)
    assert (value, error) == pytest.approx(expected(esum(showers), esum(fake)), rel=1e-9)
    assert esum(fake) == pytest.approx(1.1 * esum(showers), rel=1e-6)
    assert value == pytest.approx(0.1 * esum(showers).mean(), rel=0.3)
    # the number of hits does not change
    assert compute(W1NumHits(), showers, fake)[0] < 0.15 * np.std(showers.multiplicity)


def test_num_hits_matches_scipy(showers, other):
    value, error = compute(W1NumHits(), showers, other)
    assert (value, error) == pytest.approx(expected(showers.multiplicity, other.multiplicity), rel=1e-9)


def test_subsample_size_is_num_eval_samples(showers, other):
    value, error = compute(W1EnergySum(num_eval_samples=50, num_batches=BATCHES), showers, other)
    assert (value, error) == pytest.approx(expected(esum(showers), esum(other), size=50), rel=1e-9)


def test_z_shift_centre_of_gravity(showers):
    metric = W1CentreOfGravity()
    value, error = compute(metric, showers, transformed(showers, dz=1.0))
    assert set(metric.per_feature) == {"x", "y", "z"}
    assert metric.per_feature["z"] == (value, error)
    real_cog = cog(showers)
    for i, axis in enumerate("xyz"):
        shift = 1.0 if axis == "z" else 0.0
        assert metric.per_feature[axis] == pytest.approx(expected(real_cog[:, i], real_cog[:, i] + shift), rel=1e-6)
    assert value == pytest.approx(1.0, abs=0.15)
    assert metric.per_feature["x"][0] < 0.15
    metric.reset()
    assert metric.per_feature == {}


def test_layer_energy(showers, other):
    assert infer_num_layers(showers.points, showers.mask) == 30
    fake = transformed(other, energy=1.1)
    value, error = compute(W1LayerEnergy(), showers, fake)
    assert (value, error) == pytest.approx(compute(W1LayerEnergy(num_layers=30), showers, fake))
    layers = np.clip(np.floor(fake.points[..., 2]), 0, 29).astype(int)
    fake_layers = np.stack([(hit_energies(fake) * fake.mask * (layers == i)).sum(1) for i in range(30)], 1)
    want = expected(obs.layer_energy(showers.points, showers.mask, 30), fake_layers)
    assert (value, error) == pytest.approx(want, rel=1e-6)
    # an explicit num_layers changes the profile compared
    assert compute(W1LayerEnergy(num_layers=10), showers, fake)[0] != pytest.approx(value)


def test_num_layers_inferred_from_real_hits():
    points = np.zeros((2, 3, 4), np.float32)
    points[0, :2, 2] = [0.5, 4.2]
    points[1, 0, 2] = 2.9
    mask = np.array([[True, True, False], [True, False, False]])
    points[0, 2, 2] = 99.0  # padded
    assert infer_num_layers(points, mask) == 5
    assert infer_num_layers(points, np.zeros_like(mask)) == 1


def test_radial_profile_matches_scipy(showers, other):
    value, error = compute(W1RadialProfile(num_radial_bins=6), showers, other)
    real, fake = (obs.radial_profile(c.points, c.mask, 6) for c in (showers, other))
    assert (value, error) == pytest.approx(expected(real, fake), rel=1e-6)


def test_hit_energy_resamples_showers(showers, other):
    fake = transformed(other, energy=1.1)
    value, error = compute(W1HitEnergy(num_eval_samples=120), showers, fake)
    rng, w1s = np.random.default_rng(SEED), []
    real_hits = [hit_energies(showers)[i][showers.mask[i]] for i in range(len(showers))]
    fake_hits = [hit_energies(fake)[i][fake.mask[i]] for i in range(len(fake))]
    for _ in range(BATCHES):
        a = np.concatenate([real_hits[i] for i in rng.choice(len(real_hits), 120)])
        b = np.concatenate([fake_hits[i] for i in rng.choice(len(fake_hits), 120)])
        w1s.append(wasserstein_distance(a, b))
    assert (value, error) == pytest.approx((np.mean(w1s), np.std(w1s)), rel=1e-6)
    assert value > compute(W1HitEnergy(num_eval_samples=120), showers, other)[0]


@pytest.mark.parametrize("spec", SHOWER_METRICS, ids=lambda s: s.name)
def test_padded_garbage_changes_nothing(spec, showers, other):
    clean = compute(spec.factory(num_batches=2), showers, other)
    dirty = compute(spec.factory(num_batches=2), with_garbage(showers, 1), with_garbage(other, 2))
    np.testing.assert_array_equal(clean, dirty)
    assert np.isfinite(clean).all()


def test_batches_accumulate(showers, other):
    whole = compute(W1EnergySum(), showers, other)
    metric = W1EnergySum()
    for start in (0, 120):
        real, fake = showers.subset(slice(start, start + 120)), other.subset(slice(start, start + 120))
        metric.update(torch.from_numpy(real.points), torch.from_numpy(real.mask), torch.from_numpy(fake.points),
                      torch.from_numpy(fake.mask))
    np.testing.assert_array_equal(metric.compute().numpy(), whole)


def test_non_finite_hits_give_nan(showers):
    points = showers.points.copy()
    points[0, 0, 3] = np.nan
    metric = W1CentreOfGravity()
    with pytest.warns(UserWarning, match="non-finite"):
        result = compute(metric, PointClouds(points, showers.mask, showers.feature_names), showers)
    assert np.isnan(result).all()
    assert set(metric.per_feature) == {"x", "y", "z"}
    assert all(np.isnan(v) for v, _ in metric.per_feature.values())


def test_shapes_and_errors():
    metric = W1EnergySum()
    points, mask = torch.zeros(2, 5, 4), torch.ones(2, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"\(B, N, 4\)"):
        metric.update(torch.zeros(2, 5, 3), mask, points, mask)
    with pytest.raises(ValueError, match="fake"):
        metric.update(points, mask, points, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError):
        metric.update(torch.zeros(5, 4), mask, points, mask)
    with pytest.raises(RuntimeError, match="before any update"):
        metric.compute()
    with pytest.raises(ValueError, match="positive"):
        W1EnergySum(num_batches=0)
    with pytest.raises(ValueError):
        W1LayerEnergy(num_layers=0)
    with pytest.raises(ValueError):
        W1RadialProfile(num_radial_bins=0)
    # extra features beyond (x, y, z, E) are ignored; the result is float64 [value, error]
    metric.update(torch.rand(3, 5, 6), torch.ones(3, 5, dtype=torch.bool), torch.rand(2, 4, 4),
                  torch.ones(2, 4, dtype=torch.bool))
    result = metric.compute()
    assert result.shape == (2,) and result.dtype == torch.float64


def test_hand_made_showers():
    """Two one-hit showers against the same with energies doubled: every subsample's W1 is known."""
    points = np.zeros((2, 2, 4), np.float32)
    points[:, 0] = [[1.0, 2.0, 0.5, 10.0], [3.0, 1.0, 2.5, 30.0]]
    mask = np.array([[True, False], [True, False]])
    fake = points.copy()
    fake[..., 3] *= 2
    value, error = compute(W1EnergySum(num_batches=BATCHES), PointClouds(points, mask, ("x", "y", "z", "E")),
                           PointClouds(fake, mask, ("x", "y", "z", "E")))
    assert (value, error) == pytest.approx(expected(np.array([10.0, 30.0]), np.array([20.0, 60.0])), rel=1e-9)


def test_bootstrap_weights_equal_duplication():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(40, 3)), rng.normal(0.5, 2.0, size=(30, 3))
    w1s = bootstrap_w1(ShowerValues.per_shower(real), ShowerValues.per_shower(fake), num_batches=4, seed=SEED)
    assert w1s.shape == (4, 3)
    draws = np.random.default_rng(SEED)
    for batch in range(4):
        a, b = real[draws.choice(40, 30)], fake[draws.choice(30, 30)]
        np.testing.assert_allclose(w1s[batch], [wasserstein_distance(a[:, k], b[:, k]) for k in range(3)], rtol=1e-9)


def test_specs_and_labels():
    names = [s.name for s in SHOWER_METRICS]
    assert names == ["w1esum", "w1nhits", "w1cog", "w1layer", "w1radial", "w1ehit"]
    assert all(s.kind == "showers" and s.scale == 1.0 and s.description for s in SHOWER_METRICS)
    assert set(names) <= set(SHOWER_LABELS)
    assert SHOWER_LABELS["w1esum"] == "W1 E_sum (MeV)"
