"""Issue 11, item 2: no user-named file is replaced without --force; a run never reuses a run folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from .helpers import one_line, run_args

from pcgen.data.store import read_pointclouds


def test_data_generate_does_not_replace_an_existing_out_file(cli, tmp_path: Path) -> None:
    mine = tmp_path / "existing.h5"
    mine.write_bytes(b"my own data")
    result = cli("data", "generate", "--jets", "20", "--out", mine, "--quiet")
    assert result.exit_code == 2
    assert f"{mine} already exists; pass --force to replace it" in one_line(result.stderr)
    assert mine.read_bytes() == b"my own data"


def test_sample_does_not_replace_an_existing_out_file_unless_forced(cli, trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "samples.h5"
    out.write_bytes(b"precious")
    result = cli("sample", "--checkpoint", trained_run, "--n", "20", "--out", out, "--device", "cpu")
    assert result.exit_code == 2 and "already exists; pass --force" in one_line(result.stderr)
    assert out.read_bytes() == b"precious"
    result = cli("sample", "--checkpoint", trained_run, "--n", "20", "--out", out, "--device", "cpu", "--force")
    assert result.exit_code == 0, result.stderr
    assert len(read_pointclouds(out)) == 20


@pytest.mark.parametrize("option", ["--markdown", "--plot"])
def test_eval_does_not_replace_its_markdown_or_plot_file(cli, jets_file: Path, tmp_path: Path, option: str) -> None:
    target = tmp_path / "table.out"
    target.write_text("keep me")
    result = cli("eval", "--samples", jets_file, "--reference", jets_file, "--n", "50", "--no-efp", option, target)
    assert result.exit_code == 2 and "already exists; pass --force" in one_line(result.stderr)
    assert target.read_text() == "keep me"


def test_a_new_run_never_reuses_an_existing_run_folder(cli, jets_file: Path, trained_run: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in trained_run.rglob("*")}
    result = cli(*run_args(jets_file, trained_run.parent, trained_run.name, 2))
    assert result.exit_code == 0, result.stderr
    assert (trained_run.parent / f"{trained_run.name}-1" / "checkpoints" / "last.pt").is_file()
    assert {p.name: p.stat().st_mtime_ns for p in trained_run.rglob("*")} == before


def test_compare_refuses_an_existing_out_folder(cli, tmp_path: Path) -> None:
    (tmp_path / "cmp").mkdir()
    result = cli("compare", "--plugins", "igapt", "--out", tmp_path / "cmp", "--set", "train.max_steps=2")
    assert result.exit_code == 2 and "already exists" in one_line(result.stderr)


@pytest.mark.parametrize("existing", [".safetensors", ".json"])
def test_export_does_not_replace_weights_or_card_unless_forced(cli, trained_run: Path, tmp_path: Path,
                                                              existing: str) -> None:
    out = tmp_path / "w.safetensors"
    out.with_suffix(existing).write_text("mine")
    result = cli("export", "--checkpoint", trained_run, "--out", out, "--name", "w")
    assert result.exit_code == 2 and "already exists; pass --force" in one_line(result.stderr)
    assert out.with_suffix(existing).read_text() == "mine"
    result = cli("export", "--checkpoint", trained_run, "--out", out, "--name", "w", "--force")
    assert result.exit_code == 0, result.stderr
    assert out.stat().st_size > 1000 and out.with_suffix(".json").read_text() != "mine"
