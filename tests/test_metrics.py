"""Tests of the jet metrics (against jetnet's own functions), the evaluation protocol and the table."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from pcgen.config import EvalConfig
from pcgen.data.pointclouds import PointClouds
from pcgen.metrics import (
    FPD,
    JET_METRICS,
    KPD,
    TRUTH_ROW,
    W1EFP,
    W1M,
    W1P,
    MetricTable,
    evaluate,
    format_entry,
    jet_efps,
    prepare_jets,
    relative_jet_mass,
    split_reference,
    unit_label,
)

pytestmark = pytest.mark.filterwarnings("ignore:Recommended number:RuntimeWarning")

N = 30
SEED = 42
REAL_JETS, FAKE_JETS = 300, 250


def make_jets(num: int, seed: int, eta_scale: float = 1.0, pt_power: float = 1.0, garbage: bool = False) -> PointClouds:
    """Physical-looking jets: variable multiplicity, pt_rel positive, sorted and summing to one."""
    rng = np.random.default_rng(seed)
    mask = np.arange(N)[None] < rng.integers(8, N + 1, num)[:, None]
    pt = np.sort(rng.exponential(1.0, (num, N)) ** pt_power, axis=1)[:, ::-1]
    pt = np.where(mask, pt, 0.0)
    pt /= pt.sum(1, keepdims=True)
    eta, phi = rng.normal(0, 0.1 * eta_scale, (2, num, N))
    points = np.stack([eta, phi, pt], -1) * mask[..., None]
    if garbage:
        junk = rng.normal(3.0, 10.0, points.shape)
        junk[::7, -1] = [np.nan, np.inf, -1e6]
        points = np.where(mask[..., None], points, junk)
    return PointClouds(points.astype(np.float32), mask)


def tensors(clouds: PointClouds) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(clouds.points), torch.from_numpy(clouds.mask)


def value_of(metric_class: type, real: PointClouds, fake: PointClouds, **options: object) -> np.ndarray:
    metric = metric_class(**options)
    metric.update(*tensors(real), *tensors(fake))
    return metric.compute().numpy()


@pytest.fixture(scope="module")
def real() -> PointClouds:
    return make_jets(REAL_JETS, seed=1)


@pytest.fixture(scope="module")
def fake() -> PointClouds:
    return make_jets(FAKE_JETS, seed=2, eta_scale=1.1)


@pytest.fixture(scope="module")
def arrays(real: PointClouds, fake: PointClouds) -> tuple[np.ndarray, np.ndarray]:
    return prepare_jets(real.points, real.mask), prepare_jets(fake.points, fake.mask)


@pytest.fixture(scope="module")
def efps(arrays: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The d <= 4 EFPs (checked against jetnet's FPD/KPD features in test_jet_efps_equal_jetnet)."""
    return jet_efps(arrays[0]), jet_efps(arrays[1])


# ------------------------------------------------------------------------------------------------
# Equality with jetnet's functions
# ------------------------------------------------------------------------------------------------


def test_w1m_equals_jetnet(real, fake, arrays, monkeypatch):
    from jetnet.evaluation import gen_metrics

    monkeypatch.setattr(gen_metrics, "rng", np.random.default_rng(SEED))
    expected = gen_metrics.w1m(*arrays, num_eval_samples=FAKE_JETS, num_batches=4)
    np.testing.assert_allclose(value_of(W1M, real, fake, num_batches=4, seed=SEED), expected, rtol=1e-12)


def test_w1p_equals_jetnet_with_masks(real, fake, arrays, monkeypatch):
    from jetnet.evaluation import gen_metrics

    monkeypatch.setattr(gen_metrics, "rng", np.random.default_rng(SEED))
    means, stds = gen_metrics.w1p(*arrays, real.mask, fake.mask, exclude_zeros=False, num_eval_samples=FAKE_JETS)
    metric = W1P(seed=SEED)
    metric.update(*tensors(real), *tensors(fake))
    np.testing.assert_allclose(metric.compute().numpy(), [means[2], stds[2]], rtol=1e-12)
    np.testing.assert_allclose([metric.per_feature[f] for f in ("eta_rel", "phi_rel", "pt_rel")], np.c_[means, stds])
    # Real particles are never zero here, so jetnet's own zero-exclusion agrees with the mask.
    monkeypatch.setattr(gen_metrics, "rng", np.random.default_rng(SEED))
    np.testing.assert_allclose(gen_metrics.w1p(*arrays, num_eval_samples=FAKE_JETS)[0], means, rtol=1e-12)


def test_w1efp_equals_jetnet(real, fake, arrays, monkeypatch):
    from jetnet.evaluation import gen_metrics

    few = 120  # EFPs are slow: compare on a part of the sets
    monkeypatch.setattr(gen_metrics, "rng", np.random.default_rng(SEED))
    means, stds = gen_metrics.w1efp(arrays[0][:few], arrays[1][:few], num_eval_samples=few, num_batches=3, efp_jobs=1)
    metric = W1EFP(num_batches=3, seed=SEED)
    metric.update(*tensors(real.subset(slice(few))), *tensors(fake.subset(slice(few))))
    np.testing.assert_allclose(metric.compute().numpy(), [means.mean(), stds.mean()], rtol=1e-10)
    np.testing.assert_allclose(np.array(metric.per_efp), np.c_[means, stds], rtol=1e-10)


def test_jet_efps_equal_jetnet(arrays):
    from jetnet.evaluation import gen_metrics

    jets = arrays[0][:40]
    np.testing.assert_allclose(jet_efps(jets), gen_metrics.get_fpd_kpd_jet_features(jets, efp_jobs=1), rtol=1e-10)
    assert jet_efps(jets) is jet_efps(jets.copy())  # cached by content


def test_fpd_with_jetnet_options_equals_jetnet(real, fake, efps):
    from jetnet.evaluation import gen_metrics

    options = {"min_samples": 100, "max_samples": 250, "num_batches": 5, "num_points": 4, "seed": SEED}
    expected = gen_metrics.fpd(*efps, **options)
    value, error = value_of(FPD, real, fake, protocol="jetnet", **options)
    assert value == pytest.approx(expected[0], rel=1e-6) and error == pytest.approx(expected[1], rel=1e-4)


def test_kpd_with_jetnet_options_equals_jetnet(real, fake, efps):
    from jetnet.evaluation import gen_metrics

    expected = gen_metrics.kpd(*efps, num_batches=4, batch_size=FAKE_JETS, seed=SEED)
    value = value_of(KPD, real, fake, protocol="jetnet", num_batches=4, batch_size=FAKE_JETS, seed=SEED)
    np.testing.assert_allclose(value, expected, rtol=1e-6)


def test_relative_mass_equals_jetnet(real, arrays):
    from jetnet import utils

    expected = utils.jet_features(arrays[0])["mass"]
    np.testing.assert_allclose(relative_jet_mass(real.points, real.mask), expected, atol=1e-9)


# ------------------------------------------------------------------------------------------------
# Masks, accumulation, seeds
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric_class", [W1M, W1P, W1EFP, FPD, KPD])
def test_padded_garbage_changes_nothing(metric_class, real):
    clean, dirty = make_jets(200, seed=3), make_jets(200, seed=3, garbage=True)
    assert not np.array_equal(clean.points, dirty.points, equal_nan=True)
    options = {"num_batches": 3} if metric_class not in (FPD, KPD) else {}
    base = value_of(metric_class, real, clean, **options)
    np.testing.assert_array_equal(value_of(metric_class, real, dirty, **options), base)
    swapped = value_of(metric_class, dirty, real, **options)
    np.testing.assert_array_equal(swapped, value_of(metric_class, clean, real, **options))
    assert np.isfinite(base).all()


@pytest.mark.parametrize("metric_class", [W1M, W1P, FPD])
def test_several_updates_equal_one(metric_class, real, fake):
    once = value_of(metric_class, real, fake)
    metric = metric_class()
    real_cuts, fake_cuts = (0, 120, 200, REAL_JETS), (0, 100, 100, FAKE_JETS)  # uneven, one fake batch empty
    for i in range(3):
        metric.update(
            *tensors(real.subset(slice(real_cuts[i], real_cuts[i + 1]))),
            *tensors(fake.subset(slice(fake_cuts[i], fake_cuts[i + 1]))),
        )
    np.testing.assert_array_equal(metric.compute().numpy(), once)


def test_w1_metrics_are_seeded(real, fake):
    first, second = value_of(W1M, real, fake, seed=7), value_of(W1M, real, fake, seed=7)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, value_of(W1M, real, fake, seed=8))


def test_w1_metrics_do_not_import_jetnet():
    """The W1 metrics repeat jetnet's protocol without it (machines without coffea/awkward, such as a
    GPU image, can evaluate during training)."""
    code = (
        "import sys, torch\n"
        "from pcgen.metrics import W1M, W1P\n"
        "g = torch.Generator().manual_seed(0)\n"
        "points, mask = torch.rand(50, 10, 3, generator=g), torch.ones(50, 10, dtype=torch.bool)\n"
        "for metric in (W1M(), W1P()):\n"
        "    metric.update(points, mask, points.flip(0), mask)\n"
        "    assert torch.isfinite(metric.compute()).all()\n"
        "assert 'jetnet' not in sys.modules and 'coffea' not in sys.modules, 'jetnet was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_compute_before_update_and_bad_shapes():
    with pytest.raises(RuntimeError, match="before any update"):
        W1M().compute()
    with pytest.raises(ValueError, match="expected points"):
        W1M().update(torch.zeros(2, 5), torch.ones(2, 5, dtype=torch.bool), torch.zeros(2, 5, 3), torch.ones(2, 5))


def test_non_finite_real_particles_give_nan(real):
    bad = make_jets(50, seed=4)
    points = bad.points.copy()
    points[0, 0, 0] = np.nan
    with pytest.warns(UserWarning, match="non-finite"):
        result = value_of(W1M, real, PointClouds(points, bad.mask))
    assert np.isnan(result).all()


# ------------------------------------------------------------------------------------------------
# Known values and sensitivity
# ------------------------------------------------------------------------------------------------


def two_particle_jets(num: int, separation: float) -> PointClouds:
    """Identical jets: two particles with pt_rel 0.5 at eta_rel = ±separation/2 (padding after)."""
    points = np.zeros((num, N, 3), np.float32)
    points[:, 0] = [separation / 2, 0.0, 0.5]
    points[:, 1] = [-separation / 2, 0.0, 0.5]
    mask = np.zeros((num, N), bool)
    mask[:, :2] = True
    return PointClouds(points, mask)


def test_known_values_of_delta_distributions():
    narrow, wide = two_particle_jets(100, 0.2), two_particle_jets(100, 0.4)
    def mass(d: float) -> float:
        return math.sqrt(2 * 0.25 * (math.cosh(d) - 1))

    np.testing.assert_allclose(value_of(W1M, narrow, wide), [abs(mass(0.2) - mass(0.4)), 0.0], atol=1e-7)
    metric = W1P()
    metric.update(*tensors(narrow), *tensors(wide))
    np.testing.assert_allclose(metric.compute().numpy(), [0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(metric.per_feature["eta_rel"], [0.1, 0.0], atol=1e-7)


def test_identical_sets_are_close_to_zero(real):
    """W1 has a positive finite-sample bias (the papers' truth rows are not zero either): real vs
    itself is at the level of real vs independent real jets and far below a mismodelled sample."""
    same = value_of(W1M, real, real)
    independent = value_of(W1M, real, make_jets(REAL_JETS, seed=9))
    shifted = value_of(W1M, real, make_jets(REAL_JETS, seed=9, eta_scale=1.3))
    assert same[0] < independent[0] + 3 * independent[1]
    assert shifted[0] > 5 * same[0]
    kpd = value_of(KPD, real, real)  # unbiased: zero within its error
    assert abs(kpd[0]) < 3 * kpd[1]


def test_shifted_fake_gives_larger_w1(real):
    close, far = make_jets(REAL_JETS, seed=5), make_jets(REAL_JETS, seed=5, eta_scale=1.3, pt_power=2.0)
    for metric_class in (W1M, W1P):
        near, shifted = value_of(metric_class, real, close), value_of(metric_class, real, far)
        assert shifted[0] > near[0] + 3 * (near[1] + shifted[1]), metric_class.__name__


def test_tiny_sets_still_give_numbers():
    for metric_class in (FPD, KPD):
        assert np.isfinite(value_of(metric_class, make_jets(30, seed=6), make_jets(25, seed=7))).all()


# ------------------------------------------------------------------------------------------------
# The table and the protocol
# ------------------------------------------------------------------------------------------------


def sample_table() -> MetricTable:
    return MetricTable(
        rows={
            "truth": {"w1m": (4.6e-4, 8e-5), "kpd": (1.8e-6, 1.19e-5)},
            "iGAPT": {"w1m": (7.6e-4, 7e-5), "kpd": (math.nan, math.nan)},
        },
        scales={"w1m": 1e3, "kpd": 1e6},
        columns=["w1m", "kpd"],
        counts={"truth": (5000, 5000), "iGAPT": (5000, 4000)},
    )


def test_format_and_units():
    assert format_entry(0.76, 0.07) == "0.76 ± 0.07"
    assert format_entry(0.14, 0.06) == "0.14 ± 0.06"
    assert format_entry(1.8, 11.9) == "2 ± 12"
    assert format_entry(-16.2, 2.0) == "-16 ± 2"
    assert format_entry(math.nan, math.nan) == "nan"
    assert unit_label(1e3) == "×10⁻³" and unit_label(1e6) == "×10⁻⁶" and unit_label(1.0) == ""


def test_table_markdown_and_round_trip():
    table = sample_table()
    text = table.to_markdown()
    assert "W1M (×10⁻³)" in text and "KPD (×10⁻⁶)" in text
    assert "0.76 ± 0.07" in text and "0.46 ± 0.08" in text and "2 ± 12" in text
    data = json.loads(json.dumps(table.to_dict(), allow_nan=False))
    back = MetricTable.from_dict(data)
    assert back.to_markdown() == text
    assert back.rows["truth"] == table.rows["truth"] and math.isnan(back.rows["iGAPT"]["kpd"][0])
    assert "| Model | Jets |" in text and "| truth | 5000 |" in text and "| iGAPT | 5000 vs 4000 |" in text
    assert back.counts == table.counts
    assert len(table.to_rich().columns) == 4


def test_evaluate_without_efps(real, fake):
    config = EvalConfig(num_jets=200, efp=False)
    reference = make_jets(250, seed=8)
    table = evaluate(real, fake, reference, JET_METRICS, config, progress=False, model_name="gen")
    assert table.columns == ["w1m", "w1p"]
    assert list(table.rows) == [TRUTH_ROW, "gen"]
    assert {"w1p_eta_rel", "w1p_phi_rel", "w1p_pt_rel"} <= set(table.rows["gen"])
    assert table.rows["gen"]["w1p"] == table.rows["gen"]["w1p_pt_rel"]
    assert "W1P eta_rel" in table.to_markdown(table.all_columns)
    assert table.rows["gen"]["w1m"][0] > table.rows[TRUTH_ROW]["w1m"][0]


def test_evaluate_subset_and_unknown_metric(real, fake):
    table = evaluate(real, fake, None, JET_METRICS, EvalConfig(metrics=["w1m", "kpd"], efp=False), progress=False)
    assert table.columns == ["w1m"] and list(table.rows) == ["model"]
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(real, fake, None, JET_METRICS, EvalConfig(metrics=["nope"]), progress=False)


def test_evaluate_with_efps_and_progress(capsys):
    heldout = make_jets(300, seed=10)
    real, reference = split_reference(heldout, seed=0)
    config = EvalConfig(num_jets=120, num_batches=3)
    table = evaluate(real, make_jets(200, seed=11), reference, JET_METRICS, config, progress=True)
    assert table.columns == ["w1m", "w1p", "w1efp", "fpd", "kpd"]
    assert all(np.isfinite(table.rows[r][m]).all() for r in table.rows for m in table.columns)
    assert table.scales == {"w1m": 1e3, "w1p": 1e3, "w1efp": 1e5, "fpd": 1e3, "kpd": 1e3} | {
        f"w1p_{f}": 1e3 for f in ("eta_rel", "phi_rel", "pt_rel")
    }
    assert table.counts == {TRUTH_ROW: (120, 120), "model": (120, 120)}
    protocol = table.to_dict()["protocol"]
    assert protocol["fpd_kpd"] == "pcgen" and protocol["batch_size"] == 24 and protocol["jets_per_row"] == 120
    assert "120 real jets" in protocol["efp_normalisation"]["source"]


def test_evaluate_uses_one_size_and_one_normalisation_for_all_rows():
    from pcgen.metrics.evaluate import efp_normalisation

    real, fake, reference = make_jets(150, seed=12), make_jets(90, seed=13), make_jets(200, seed=14)
    norm = efp_normalisation(make_jets(300, seed=15), "toy training split")
    config = EvalConfig(num_jets=1000, num_batches=2, metrics=["fpd", "kpd"])
    table = evaluate(real, fake, reference, JET_METRICS, config, progress=False, normalisation=norm)
    assert table.counts == {TRUTH_ROW: (90, 90), "model": (90, 90)}  # the smallest set fixes every row
    assert table.protocol["efp_normalisation"]["source"] == "toy training split"
    alone = evaluate(real, fake, None, JET_METRICS, config, progress=False, normalisation=norm)
    assert alone.rows["model"] == table.rows["model"]  # the truth row does not change the model row
    jetnet = evaluate(real, fake, None, JET_METRICS, config.model_copy(update={"protocol": "jetnet"}), progress=False)
    assert jetnet.protocol["fpd_kpd"] == "jetnet" and jetnet.scales["fpd"] == 1e3 and jetnet.scales["kpd"] == 1e6


def test_add_rows_keeps_a_shared_truth_row_once_and_adds_the_others() -> None:
    from pcgen.metrics.evaluate import MetricTable

    first = MetricTable(rows={"truth": {"w1m": (1.0, 0.1)}, "a": {"w1m": (2.0, 0.2)}}, scales={"w1m": 1e3},
                        columns=["w1m"])
    second = MetricTable(rows={"truth": {"w1m": (9.0, 0.9)}, "b": {"w1m": (3.0, 0.3)}}, scales={"w1m": 1e3},
                         columns=["w1m"])
    merged = first.add_rows(second)
    assert list(merged.rows) == ["truth", "a", "b"]
    assert merged.rows["truth"]["w1m"] == (1.0, 0.1)
