"""Pythia 8 + FastJet jets: JetNet conventions, physics sanity, seeding, sharding, resumption.

Pythia runs only in the module fixtures and two tiny direct generations (about a second each);
the tests that use them are marked ``slow``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pcgen.config import DetectorConfig
from pcgen.data.jet_config import JetDataConfig
from pcgen.data import pythia
from pcgen.data.pointclouds import PointClouds
from pcgen.data.pythia import (
    GenSettings,
    cached_path,
    generate_jets,
    generate_shard,
    shard_folder,
    shard_path,
    shard_seed,
    wrap_phi,
)
from pcgen.data.store import DataError, read_pointclouds

SHARD = 20


def top_config(tmp: Path, **changes: object) -> JetDataConfig:
    settings = {"jet_type": "t", "num_particles": 30, "num_jets": 40, "seed": 7, "workers": 1, "cache_dir": tmp}
    return JetDataConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> tuple[JetDataConfig, Path]:
    """40 top jets in two shards, made in this process."""
    tmp = tmp_path_factory.mktemp("one")
    config = top_config(tmp)
    out = generate_jets(config, tmp / "top.h5", progress=False, shard_size=SHARD)
    return config, out


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same job over two spawned worker processes, with the progress bar on."""
    tmp = tmp_path_factory.mktemp("two")
    return generate_jets(top_config(tmp, workers=2), tmp / "top.h5", progress=True, shard_size=SHARD)


@pytest.fixture(scope="module")
def jets(one_worker: tuple[JetDataConfig, Path]) -> PointClouds:
    return read_pointclouds(one_worker[1])


@pytest.mark.slow
def test_shapes_and_meta(jets: PointClouds) -> None:
    assert jets.points.shape == (40, 30, 3) and jets.points.dtype == np.float32
    assert jets.mask.shape == (40, 30) and jets.mask.dtype == bool
    assert jets.globals.shape == (40, 4)
    assert jets.meta["source"] == "pythia" and jets.meta["jet_type"] == "t" and jets.meta["seed"] == 7


@pytest.mark.slow
def test_mask_is_a_prefix_and_padding_is_zero(jets: PointClouds) -> None:
    n = jets.multiplicity
    np.testing.assert_array_equal(jets.mask, np.arange(30)[None, :] < n[:, None])
    assert np.all(jets.points[~jets.mask] == 0.0)
    assert np.all(jets.points[..., 2][jets.mask] > 0.0)
    np.testing.assert_array_equal(jets.globals[:, 3], n)


@pytest.mark.slow
def test_particles_are_pt_ordered_relative_coordinates(jets: PointClouds) -> None:
    pt_rel = jets.points[..., 2]
    assert np.all(np.diff(pt_rel, axis=1)[jets.mask[:, 1:]] <= 0.0)
    # leading 30 of ~60-90 constituents: the pT fractions sum to at most ~1 (over all constituents the
    # scalar sum slightly exceeds the jet's vector pT, so JetNet's sums can pass 1 by a few per mille)
    assert np.all(pt_rel.sum(axis=1) <= 1.01)
    phi_rel = jets.points[..., 1]
    assert np.all((phi_rel >= -np.pi) & (phi_rel < np.pi))
    assert np.all(np.hypot(jets.points[..., 0], phi_rel) < 1.0)


@pytest.mark.slow
def test_jets_are_in_the_window_and_look_like_tops(jets: PointClouds) -> None:
    pt, eta, mass = jets.globals[:, 0], jets.globals[:, 1], jets.globals[:, 2]
    assert np.all((pt >= 800) & (pt <= 1600)) and np.all(np.abs(eta) < 2.5)
    assert 120 < np.median(mass) < 260
    assert 0.1 < np.median(mass / pt) < 0.3


@pytest.mark.slow
def test_same_seed_same_bits_regardless_of_workers(one_worker: tuple[JetDataConfig, Path], two_workers: Path) -> None:
    a, b = read_pointclouds(one_worker[1]), read_pointclouds(two_workers)
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.globals, b.globals)
    assert a.meta == b.meta


@pytest.mark.slow
def test_resume_from_shards_without_pythia(
    one_worker: tuple[JetDataConfig, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config, out = one_worker
    copy = tmp_path / "top.h5"
    shutil.copytree(shard_folder(out), shard_folder(copy))

    def no_pythia(*args: object, **kwargs: object) -> None:
        raise AssertionError("Pythia must not run when every shard is on disk")

    monkeypatch.setattr(pythia, "generate_shard", no_pythia)
    assert generate_jets(config, copy, progress=False, shard_size=SHARD) == copy
    np.testing.assert_array_equal(read_pointclouds(copy).points, read_pointclouds(out).points)
    assert generate_jets(config, copy, progress=False, shard_size=SHARD) == copy  # complete: no work


@pytest.mark.slow
def test_only_missing_or_broken_shards_are_redone(
    one_worker: tuple[JetDataConfig, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config, out = one_worker
    copy = tmp_path / "top.h5"
    shutil.copytree(shard_folder(out), shard_folder(copy))
    shard_path(shard_folder(copy), 1).write_bytes(b"half-written garbage")
    made: list[int] = []
    real = pythia.generate_shard

    def counting(settings: GenSettings, shard: int, report: object = None) -> PointClouds:
        made.append(shard)
        return real(settings, shard, report)

    monkeypatch.setattr(pythia, "generate_shard", counting)
    generate_jets(config, copy, progress=False, shard_size=SHARD)
    assert made == [1]
    np.testing.assert_array_equal(read_pointclouds(copy).globals, read_pointclouds(out).globals)


@pytest.mark.slow
def test_some_shards_give_the_folder_then_the_merged_file(
    one_worker: tuple[JetDataConfig, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config, out = one_worker
    copy = tmp_path / "top.h5"
    folder = shard_folder(copy)
    folder.mkdir()
    monkeypatch.setattr(pythia, "generate_shard", lambda *a, **k: pytest.fail("no Pythia expected"))
    shutil.copy(shard_path(shard_folder(out), 1), shard_path(folder, 1))
    assert generate_jets(config, copy, shards=[1], progress=False, shard_size=SHARD) == folder  # "machine B"
    assert not copy.exists()
    shutil.copy(shard_path(shard_folder(out), 0), shard_path(folder, 0))
    assert generate_jets(config, copy, shards=[0], progress=False, shard_size=SHARD) == copy  # "machine A"
    with pytest.raises(DataError, match="out of range"):
        generate_jets(config, copy, shards=[2], progress=False, shard_size=SHARD)


@pytest.mark.slow
def test_detector_step_reduces_multiplicity(tmp_path: Path) -> None:
    def mean_multiplicity(enabled: bool) -> float:
        config = top_config(tmp_path, num_particles=150, num_jets=20, detector=DetectorConfig(enabled=enabled))
        pc = generate_shard(GenSettings.from_config(config, shard_size=6), 0)
        assert len(pc) == 6
        return float(pc.multiplicity.mean())

    with_detector, without = mean_multiplicity(True), mean_multiplicity(False)
    assert with_detector < 0.9 * without
    assert 40 < without < 150


@pytest.mark.slow
def test_different_seed_different_jets(one_worker: tuple[JetDataConfig, Path], jets: PointClouds) -> None:
    config, _ = one_worker
    other = generate_shard(GenSettings.from_config(config.model_copy(update={"seed": 8}), shard_size=3), 0)
    assert not np.array_equal(other.globals, jets.globals[:3])


def test_shard_seeds_are_valid_and_distinct() -> None:
    seeds = {shard_seed(s, t, k) for s in range(3) for t in "gqtwz" for k in range(20)}
    assert len(seeds) == 300 and all(1 <= s <= 900_000_000 for s in seeds)


def test_cached_path_encodes_every_setting(tmp_path: Path) -> None:
    base = top_config(tmp_path)
    variants = [
        {"jet_type": "g"},
        {"num_particles": 150},
        {"num_jets": 41},
        {"seed": 8},
        {"min_jet_pt": 700.0},
        {"max_jet_pt": 1500.0},
        {"detector": DetectorConfig(enabled=False)},
        {"detector": DetectorConfig(min_pt=0.5)},
        {"detector": DetectorConfig(max_abs_eta=2.4)},
    ]
    names = {cached_path(base).name} | {cached_path(base.model_copy(update=v)).name for v in variants}
    assert len(names) == len(variants) + 1
    assert cached_path(base).parent == tmp_path
    # settings that do not change the data do not change the name
    assert cached_path(base.model_copy(update={"workers": 3})) == cached_path(base)
    off = {"detector": DetectorConfig(enabled=False)}
    off_other = {"detector": DetectorConfig(enabled=False, min_pt=5.0)}
    assert cached_path(base.model_copy(update=off)) == cached_path(base.model_copy(update=off_other))


def test_bad_pt_window_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="min_jet_pt"):
        top_config(tmp_path, min_jet_pt=1600.0, max_jet_pt=900.0)
    unchecked = top_config(tmp_path).model_copy(update={"min_jet_pt": 1600.0, "max_jet_pt": 900.0})
    with pytest.raises(DataError, match="min_jet_pt"):
        GenSettings.from_config(unchecked)


def test_wrap_phi() -> None:
    wrapped = wrap_phi(np.array([np.pi, -np.pi, 3 * np.pi / 2, -3 * np.pi / 2, 0.1]))
    np.testing.assert_allclose(wrapped, [-np.pi, -np.pi, -np.pi / 2, np.pi / 2, 0.1])
