"""The torch EFPs against energyflow, and FPD/KPD (pcgen's protocol and jetnet's) against jetnet."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from pcgen.data.jet_config import JetDataConfig
from pcgen.data.pointclouds import PointClouds
from pcgen.metrics import distances
from pcgen.metrics.distances import EFPNormalisation, jetnet_fpd, jetnet_kpd, split_distance
from pcgen.metrics.efp import CONNECTED_GRAPHS, DISCONNECTED_PRODUCTS, NUM_EFPS, W1EFP_COLUMNS, efps
from pcgen.metrics.jet_metrics import FPD, KPD, prepare_jets

from toydata import toy_jets

pytestmark = pytest.mark.filterwarnings("ignore:Recommended number:RuntimeWarning")

RTOL = 1e-5  # the required agreement; the torch EFPs agree to about 1e-14


def energyflow_efps(clouds: PointClouds) -> np.ndarray:
    """jetnet's FPD/KPD features (energyflow, one process) of the jets."""
    from jetnet.evaluation import gen_metrics

    return gen_metrics.get_fpd_kpd_jet_features(prepare_jets(clouds.points, clouds.mask), efp_jobs=1)


def torch_efps(clouds: PointClouds, **options: object) -> np.ndarray:
    return efps(torch.from_numpy(np.asarray(clouds.points)), torch.from_numpy(clouds.mask), **options).numpy()


@pytest.fixture(scope="module")
def pythia_jets(tmp_path_factory: pytest.TempPathFactory) -> PointClouds:
    """40 real top jets from Pythia (about a second)."""
    from pcgen.data.pythia import generate_jets
    from pcgen.data.store import read_pointclouds

    tmp = tmp_path_factory.mktemp("pythia")
    config = JetDataConfig(jet_type="t", num_particles=30, num_jets=40, seed=11, workers=1, cache_dir=tmp)
    return read_pointclouds(generate_jets(config, tmp / "top.h5", progress=False, shard_size=20))


def generated_like(num: int, seed: int) -> PointClouds:
    """Jets as a poor generator makes them: few particles, negative pt_rel, garbage in the padding."""
    clouds = toy_jets(num, 30, seed=seed, min_particles=1)
    rng = np.random.default_rng(seed)
    points = np.array(clouds.points)
    points[..., 2] += rng.normal(0, 0.01, points[..., 2].shape).astype(np.float32)  # some pt_rel < 0
    points = np.where(clouds.mask[..., None], points, rng.normal(5, 10, points.shape)).astype(np.float32)
    return PointClouds(points, clouds.mask)


# ------------------------------------------------------------------------------------------------
# EFPs
# ------------------------------------------------------------------------------------------------


def test_graph_table_is_energyflows() -> None:
    from energyflow import EFPSet

    efpset = EFPSet(("d<=", 4), measure="hadr", beta=1, normed=None, coords="ptyphim")
    assert [tuple(map(tuple, g)) for g in efpset.graphs()[: len(CONNECTED_GRAPHS)]] == [g[1] for g in CONNECTED_GRAPHS]
    assert [efp.n for efp in efpset.efps] == [g[0] for g in CONNECTED_GRAPHS]
    assert [tuple(f) for f in efpset._disc_col_inds] == list(DISCONNECTED_PRODUCTS)
    assert len(efpset.specs) == NUM_EFPS == 36
    assert tuple(np.flatnonzero(efpset.sel(("n==", 4), ("d==", 4), ("p==", 1)))) == W1EFP_COLUMNS


def test_efps_equal_energyflow_on_real_jets(pythia_jets: PointClouds) -> None:
    np.testing.assert_allclose(torch_efps(pythia_jets), energyflow_efps(pythia_jets), rtol=RTOL, atol=0)


def test_efps_equal_energyflow_on_generated_jets() -> None:
    jets = generated_like(60, seed=3)
    assert (jets.mask.sum(1) == 1).any() and (jets.points[..., 2][jets.mask] < 0).any()
    np.testing.assert_allclose(torch_efps(jets, chunk_size=7), energyflow_efps(jets), rtol=RTOL, atol=1e-300)


def test_padding_and_particle_order_do_not_matter() -> None:
    jets = generated_like(50, seed=4)
    clean = PointClouds(np.where(jets.mask[..., None], jets.points, 0).astype(np.float32), jets.mask)
    base = torch_efps(clean)
    np.testing.assert_array_equal(torch_efps(jets), base)
    order = np.random.default_rng(0).permutation(30)
    shuffled = PointClouds(np.ascontiguousarray(jets.points[:, order]), np.ascontiguousarray(jets.mask[:, order]))
    np.testing.assert_allclose(torch_efps(shuffled), base, rtol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_efps_on_gpu_equal_energyflow(pythia_jets: PointClouds) -> None:
    np.testing.assert_allclose(torch_efps(pythia_jets, device="cuda"), energyflow_efps(pythia_jets), rtol=RTOL)


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="expected points"):
        efps(torch.zeros(2, 5, 3), torch.ones(2, 4, dtype=torch.bool))


# ------------------------------------------------------------------------------------------------
# Distances
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def features() -> tuple[np.ndarray, np.ndarray]:
    """EFPs of two different toy samples (300 and 250 jets)."""
    return torch_efps(toy_jets(300, 30, seed=1)), torch_efps(toy_jets(250, 30, seed=2, min_particles=3))


def test_frechet_and_mmd_equal_jetnets_formulas(features: tuple[np.ndarray, np.ndarray]) -> None:
    from jetnet.evaluation import gen_metrics

    x, y = gen_metrics._normalise_features(*features)
    expected = gen_metrics._calculate_frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0),
                                                       np.cov(y, rowvar=False))
    np.testing.assert_allclose(distances.frechet_distance(x, y), expected, rtol=1e-6)
    expected = gen_metrics._mmd_poly_quadratic_unbiased(x, y)
    np.testing.assert_allclose(distances.mmd_unbiased(torch.from_numpy(x), torch.from_numpy(y)), expected, rtol=1e-8)


def test_mmd_from_counts_equals_mmd_of_the_resampled_sets(features: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = (torch.from_numpy(f) for f in features)
    rng = np.random.default_rng(0)
    draws_x, draws_y = rng.choice(len(x), 400), rng.choice(len(y), 333)  # duplicates on purpose
    counts_x = torch.from_numpy(np.bincount(draws_x, minlength=len(x)).astype(float))[:, None]
    counts_y = torch.from_numpy(np.bincount(draws_y, minlength=len(y)).astype(float))[:, None]
    via_counts = distances._mmd_from_counts(x, y, counts_x, counts_y)
    np.testing.assert_allclose(float(via_counts[0]), distances.mmd_unbiased(x[draws_x], y[draws_y]), rtol=1e-9)


@pytest.mark.parametrize("name", ["fpd", "kpd"])
def test_jetnet_protocol_equals_jetnets_own_call(name: str, features: tuple[np.ndarray, np.ndarray]) -> None:
    """``--jetnet-protocol``: jetnet's function with its default arguments, on the same EFPs."""
    from jetnet.evaluation import gen_metrics

    ours, theirs = {"fpd": (jetnet_fpd, gen_metrics.fpd), "kpd": (jetnet_kpd, gen_metrics.kpd)}[name]
    defaults = {k: p.default for k, p in inspect.signature(theirs).parameters.items() if k in
                inspect.signature(ours).parameters and p.default is not inspect.Parameter.empty}
    assert defaults == {k: p.default for k, p in inspect.signature(ours).parameters.items() if k in defaults}
    (value, error), (expected_value, expected_error) = ours(*features), theirs(*features)
    assert value == pytest.approx(expected_value, rel=1e-6)
    # FPD's fit error comes from residuals of nearly equal means, which amplify jetnet's own round-off.
    assert error == pytest.approx(expected_error, rel=1e-4)


@pytest.mark.parametrize("metric_class", [FPD, KPD])
def test_metrics_with_jetnet_protocol_equal_jetnet_on_energyflow_features(metric_class: type) -> None:
    from jetnet.evaluation import gen_metrics

    real, fake = toy_jets(120, 30, seed=5), toy_jets(100, 30, seed=6)
    jetnet_call = gen_metrics.fpd if metric_class is FPD else gen_metrics.kpd
    expected = jetnet_call(energyflow_efps(real), energyflow_efps(fake))
    metric = metric_class(protocol="jetnet")
    metric.update(torch.from_numpy(real.points), torch.from_numpy(real.mask), torch.from_numpy(fake.points),
                  torch.from_numpy(fake.mask))
    value, error = metric.compute().numpy()
    assert value == pytest.approx(expected[0], rel=1e-6) and error == pytest.approx(expected[1], rel=1e-4)


def test_split_distance_uses_disjoint_batches_and_their_standard_error() -> None:
    x, y = torch.arange(23.0)[:, None], 100 + torch.arange(20.0)[:, None]
    seen: list[tuple[set, set]] = []

    def record(a: torch.Tensor, b: torch.Tensor) -> float:
        seen.append((set(a[:, 0].tolist()), set(b[:, 0].tolist())))
        return float(a.mean())

    result = split_distance(x, y, record, num_splits=4, seed=0)
    assert result.batch_size == 5 and len(seen) == 4
    for side in (0, 1):
        used = [s[side] for s in seen]
        assert all(len(u) == 5 for u in used) and len(set().union(*used)) == 20  # disjoint
    assert result.value == pytest.approx(np.mean(result.values))
    assert result.error == pytest.approx(np.std(result.values, ddof=1) / 2)
    with pytest.raises(ValueError, match="cannot make"):
        split_distance(x[:5], y, record, num_splits=4)


def test_normalisation_is_fixed_role_symmetric_and_round_trips(features: tuple[np.ndarray, np.ndarray]) -> None:
    norm = EFPNormalisation.from_features(np.concatenate(features), "toy")
    mapped = norm.apply(features[0]).numpy()
    assert np.isfinite(mapped).all() and abs(mapped.mean()) < 0.5 and 0.5 < mapped.std() < 1.5
    a, b = norm.apply(features[0]), norm.apply(features[1])
    assert distances.frechet_distance(a, b) == pytest.approx(distances.frechet_distance(b, a), rel=1e-9)
    back = EFPNormalisation.from_dict(norm.to_dict())
    np.testing.assert_array_equal(back.apply(features[1]).numpy(), b.numpy())
    with pytest.raises(ValueError, match="features"):
        norm.apply(features[0][:, :5])


@pytest.mark.parametrize("metric_class", [FPD, KPD])
def test_pcgen_protocol_swapping_roles_changes_nothing(metric_class: type) -> None:
    one, two = toy_jets(200, 30, seed=7), toy_jets(200, 30, seed=8, min_particles=3)
    norm = EFPNormalisation.from_features(torch_efps(toy_jets(400, 30, seed=9)), "toy training split")

    def value(a: PointClouds, b: PointClouds) -> np.ndarray:
        metric = metric_class(normalisation=norm, num_splits=4)
        metric.update(torch.from_numpy(a.points), torch.from_numpy(a.mask), torch.from_numpy(b.points),
                      torch.from_numpy(b.mask))
        result = metric.compute().numpy()
        assert metric.batch_size == 50 and len(metric.split_values) == 4
        return result

    forward, backward = value(one, two), value(two, one)
    assert np.isfinite(forward).all()
    np.testing.assert_allclose(forward[0], backward[0], rtol=1e-6, atol=1e-12)


def test_pcgen_fpd_separates_a_mismodelled_sample_from_the_truth(tmp_path: Path) -> None:
    train, real, same, other = (toy_jets(400, 30, seed=s) for s in (10, 11, 12, 13))
    wider = PointClouds(np.array(other.points) * np.array([1.5, 1.5, 1.0], np.float32), other.mask)
    norm = EFPNormalisation.from_features(torch_efps(train), "toy training split")

    def fpd(a: PointClouds, b: PointClouds) -> np.ndarray:
        metric = FPD(normalisation=norm)
        metric.update(torch.from_numpy(a.points), torch.from_numpy(a.mask), torch.from_numpy(b.points),
                      torch.from_numpy(b.mask))
        return metric.compute().numpy()

    truth, model = fpd(real, same), fpd(real, wider)
    assert model[0] > truth[0] + 3 * (model[1] + truth[1])
