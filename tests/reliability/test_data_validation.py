"""Issue 21, item 2: a data file is checked when it is opened (layout, mask, finite values, plausible jet
coordinates); each fault is one `error:` line naming the file, the dataset, what is wrong (a count and
the first index) and how to fix it, before any training or metric."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from .helpers import one_line, run_args
from toydata import toy_jets

from pcgen.data.jetnet_files import read_jetnet
from pcgen.data.store import DataError, read_pointclouds

NONFINITE_EXIT = 3


def jetnet_rows(jets: int = 100, seed: int = 3) -> np.ndarray:
    """``(jets, 30, 4)`` float32 rows of toy jets in JetNet's layout: eta_rel, phi_rel, pt_rel, mask."""
    pc = toy_jets(jets, 30, seed=seed)
    return np.concatenate([pc.points, pc.mask[..., None]], axis=-1).astype(np.float32)


def write_jetnet_like(path: Path, particles: np.ndarray) -> Path:
    """A file as JetNet ships them (no pcgen attributes) with ``particles`` as its particle_features."""
    with h5py.File(path, "w") as f:
        f.create_dataset("particle_features", data=particles)
        f.create_dataset("jet_features", data=np.ones((len(particles), 4), np.float32))
    return path


def test_the_issues_three_column_file_stops_a_run_before_training(cli, tmp_path: Path) -> None:
    """Before: the run trained with pt_rel as the mask and crashed after training (exit 1, traceback)."""
    data = write_jetnet_like(tmp_path / "three.h5", jetnet_rows(400)[..., :3])
    result = cli(*run_args(data, tmp_path / "runs", "three", 4))
    assert result.exit_code == 2, result.stderr
    assert one_line(result.stderr) == (
        f"error: data file {data}: 'particle_features' has 3 columns per particle, but a file without pcgen's "
        "'feature_names' attribute is read in JetNet's layout of 4 columns (eta_rel, phi_rel, pt_rel, mask), and "
        "its last column would be taken as the mask; add the mask as the last column (1 for a real particle, 0 "
        "for padding)")
    assert not (tmp_path / "runs" / "three" / "checkpoints").exists()  # nothing trained


def test_a_nan_in_the_training_data_stops_a_run_with_exit_3(cli, tmp_path: Path) -> None:
    """Before: accepted (exit 0, NaN metrics)."""
    rows = jetnet_rows(400)
    rows[7, 2, 0] = np.nan
    data = write_jetnet_like(tmp_path / "nan.h5", rows)
    result = cli(*run_args(data, tmp_path / "runs", "nan", 4))
    assert result.exit_code == NONFINITE_EXIT, result.stderr
    assert one_line(result.stderr) == (
        f"error: data file {data}: 1 of 400 clouds hold non-finite values (NaN or infinity) in 'particle_features' "
        "(first: cloud index 7, particle index 2, eta_rel = nan); drop or fix those clouds, or regenerate the file")


def _mask_seven(rows: np.ndarray) -> None:
    rows[4, 0, 3] = 7.0


def _mask_gap(rows: np.ndarray) -> None:
    n = int(rows[9, :, 3].sum())
    rows[9, 1, 3] = 0.0  # 1,0,1,1,...
    rows[9, n, :] = rows[9, 1, :]
    rows[9, n, 3] = 1.0


def _pt_in_gev(rows: np.ndarray) -> None:
    rows[..., 2] *= 1000.0 * rows[..., 3]


def _absolute_eta(rows: np.ndarray) -> None:
    rows[..., 0] += 2.2 * rows[..., 3]


def _infinite_phi(rows: np.ndarray) -> None:
    rows[11, 0, 1] = np.inf


@pytest.mark.parametrize(("fault", "code", "expected"), [
    (_mask_seven, 2, "the mask of 'particle_features' (its last column) holds 1 value other than 0 and 1 (first: "
                     "cloud index 4, particle index 0, value 7); the last column must be 1 for a real particle and 0 "
                     "for padding, as in JetNet's layout (eta_rel, phi_rel, pt_rel, mask): add or fix the mask column"),
    (_mask_gap, 2, "in 'particle_features', 1 of 100 clouds have padding before a real particle (first: cloud index "
                   "9, mask 1,0,1,"),
    (_pt_in_gev, 2, "particles in 'particle_features' have pt_rel outside [0, 1.01] (first: cloud index 0, particle "
                    "index 0, pt_rel = "),
    (_absolute_eta, 2, "particles in 'particle_features' have eta_rel outside [-2, 2] (first: cloud index 0, "),
    (_infinite_phi, NONFINITE_EXIT, "1 of 100 clouds hold non-finite values (NaN or infinity) in 'particle_features' "
                                    "(first: cloud index 11, particle index 0, phi_rel = inf)"),
], ids=["mask-7", "mask-gap", "pt-in-GeV", "absolute-eta", "infinite-phi"])
def test_eval_refuses_a_bad_reference_file_in_one_line(cli, jets_file: Path, tmp_path: Path, fault,
                                                       code: int, expected: str) -> None:
    """Before: mask 7 and NaN were accepted by `pcgen eval` (exit 0, NaN metrics, truth row included)."""
    rows = jetnet_rows()
    fault(rows)
    bad = write_jetnet_like(tmp_path / "bad.h5", rows)
    result = cli("eval", "--samples", jets_file, "--reference", bad, "--n", "40", "--no-efp")
    assert result.exit_code == code, result.stderr
    message = one_line(result.stderr)
    assert message.startswith(f"error: data file {bad}: ") and expected in message, message
    assert result.stdout == ""  # no metric table


def test_every_message_says_how_to_fix_it(tmp_path: Path) -> None:
    hints = {_mask_gap: "sort each cloud's particles, e.g. by pt_rel descending, padding last",
             _pt_in_gev: "pT in GeV instead of pT / pT_jet?",
             _absolute_eta: "absolute eta, or not relative to the jet axis?"}
    for fault, hint in hints.items():
        rows = jetnet_rows()
        fault(rows)
        with pytest.raises(DataError) as err:
            read_pointclouds(write_jetnet_like(tmp_path / f"{fault.__name__}.h5", rows))
        assert hint in str(err.value) and "\n" not in str(err.value)


def test_jetnet_data_set_refuses_a_file_without_a_mask_column(tmp_path: Path) -> None:
    write_jetnet_like(tmp_path / "t.hdf5", jetnet_rows()[..., :3])
    with pytest.raises(DataError, match=r"'particle_features' has 3 columns per particle"):
        read_jetnet(tmp_path, "t", 30)


def test_valid_files_pass(jets_file: Path, tmp_path: Path) -> None:
    """JetNet-layout files, pcgen's files and files read with fewer particles than they hold."""
    rows = jetnet_rows()
    np.testing.assert_array_equal(read_pointclouds(write_jetnet_like(tmp_path / "ok.h5", rows)).mask, rows[..., 3] == 1)
    assert len(read_pointclouds(jets_file, max_particles=10)) == 400
