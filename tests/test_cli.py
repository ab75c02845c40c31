"""The `pcgen` command line, end to end on a small data file."""

from __future__ import annotations

import json

from pathlib import Path

import pytest
from toydata import toy_jets
from typer.testing import CliRunner

from pcgen.cli import app
from pcgen.data.store import read_pointclouds, write_pointclouds

runner = CliRunner()


def invoke(*args: str):  # noqa: ANN201
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_plugins_lists_catalogue_and_installed_plugins() -> None:
    result = invoke("plugins")
    assert result.exit_code == 0
    for name in ("igapt", "gast", "mdma", "tf-refiner", "omnijet"):  # the catalogue, all bundled and installed
        assert name in result.stdout
    assert "installed" in result.stdout and "not installed" not in result.stdout
    assert "pythia" in result.stdout and "adversarial" in result.stdout


def test_help_of_every_command() -> None:
    for command in (["--help"], ["run", "--help"], ["data", "generate", "--help"], ["sample", "--help"], ["eval", "--help"]):
        result = invoke(*command)
        assert result.exit_code == 0 and "Usage" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--plugin", "nope"], "unknown model plugin 'nope'"),
        (["run", "--plugin", "igapt", "--set", "train.epochs=abc"], "train.epochs"),
        (["run", "--plugin", "igapt", "--set", "train.epoch=3"], "unknown key 'train.epoch'"),
        (["run", "--config", "/nonexistent/my.toml"], "does not exist"),
        (["sample", "--checkpoint", "/nonexistent/run"], "does not exist"),
        (["data", "generate", "--jet-type", "bottom"], "unknown jet type"),
        (["eval", "--samples", "/nonexistent/s.h5", "--reference", "/nonexistent/r.h5"], "/nonexistent/s.h5"),
    ],
)
def test_bad_input_fails_with_a_message_naming_the_problem(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.stderr.replace("\n", " ")


def test_run_sample_eval_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "jets.h5"
    write_pointclouds(toy_jets(400, 30, seed=1), data)
    result = invoke(
        "run", "--plugin", "igapt", "--quiet",
        "--set", "data.dataset=file", "--set", f'data.path="{data}"', "--set", f'run_dir="{tmp_path}"',
        "--set", 'name="cli"', "--set", "train.max_steps=12", "--set", "train.batch_size=32",
        "--set", "train.eval_every=6", "--set", "eval.num_jets=100", "--set", "eval.efp=false",
    )
    assert result.exit_code == 0, result.stderr
    run_dir = tmp_path / "cli"
    for name in ("config.toml", "checkpoints/last.pt", "checkpoints/best.pt", "metrics.md", "metrics.json",
                 "samples.h5", "distributions.png"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert "truth" in (run_dir / "metrics.md").read_text().lower()

    samples = tmp_path / "s.h5"
    result = invoke("sample", "--checkpoint", str(run_dir), "--n", "120", "--out", str(samples), "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    assert len(read_pointclouds(samples)) == 120
    result = invoke("sample", "--checkpoint", str(run_dir), "--n", "5", "--out", str(samples), "--variant", "nope",
                    "--force")
    assert result.exit_code == 2 and "no sampling variant 'nope'" in result.stderr.replace("\n", " ")

    result = invoke("eval", "--samples", str(samples), "--reference", str(data), "--n", "100", "--no-efp",
                    "--markdown", str(tmp_path / "table.md"), "--json", str(tmp_path / "table.json"))
    assert result.exit_code == 0, result.stderr
    assert "W1M" in (tmp_path / "table.md").read_text() and "| truth | 100 |" in (tmp_path / "table.md").read_text()
    written = json.loads((tmp_path / "table.json").read_text())
    assert written["counts"] == {"truth": [100, 100], "s": [100, 100]} and "w1m" in written["rows"]["s"]
    said = " ".join(result.stderr.split())
    assert "model row: 100 generated (s.h5 [0:100]) vs 100 real (jets.h5 [0:100])" in said
    assert "truth row: 100 real (jets.h5 [100:200]) vs the same 100 real" in said

    # More asked for than the samples hold: said, not silently halved; FPD/KPD by both protocols.
    for extra in ([], ["--jetnet-protocol"]):
        result = invoke("eval", "--samples", str(samples), "--reference", str(data), "--n", "150",
                        "--json", str(tmp_path / f"efp{len(extra)}.json"), *extra)
        assert result.exit_code == 0, result.stderr
        said = " ".join(result.stderr.split())
        assert "120 clouds per row, not the 150 asked for (s.h5: 120, jets.h5: 400)" in said
        written = json.loads((tmp_path / f"efp{len(extra)}.json").read_text())
        assert written["counts"]["truth"] == [120, 120] and set(written["rows"]["s"]) >= {"fpd", "kpd"}
        assert written["protocol"]["fpd_kpd"] == ("jetnet" if extra else "pcgen")
        if not extra:
            assert "measured on all 400 jets of jets.h5" in said
            assert written["protocol"]["efp_normalisation"]["num_jets"] == 400
    # A run's (here: the last table's) stored normalisation is reused; a file without one is refused.
    stored = {"quantiles": [[0.0] * 36, [1.0] * 36], "source": "stored training split", "num_jets": 7}
    (tmp_path / "pcgen.json").write_text(json.dumps({"protocol": {"efp_normalisation": stored}}))
    result = invoke("eval", "--samples", str(samples), "--reference", str(data), "--n", "100", "--efp-normalisation",
                    str(tmp_path / "pcgen.json"))
    assert result.exit_code == 0, result.stderr
    assert "FPD/KPD EFP normalisation: stored training split" in " ".join(result.stderr.split())
    result = invoke("eval", "--samples", str(samples), "--reference", str(data), "--efp-normalisation",
                    str(tmp_path / "table.md"))
    assert result.exit_code == 2 and "no EFP normalisation in it" in " ".join(result.stderr.split())


def test_compare_trains_each_model_alike_and_writes_one_table(tmp_path: Path) -> None:
    data = tmp_path / "jets.h5"
    write_pointclouds(toy_jets(300, 30, seed=2), data)
    result = invoke(
        "compare", "--plugins", "igapt", "--quiet", "--out", str(tmp_path / "cmp"),
        "--set", "data.dataset=file", "--set", f'data.path="{data}"', "--set", "train.max_steps=3",
        "--set", "train.batch_size=32", "--set", "eval.num_jets=60", "--set", "eval.efp=false",
    )
    assert result.exit_code == 0, result.stderr
    table = (tmp_path / "cmp" / "metrics.md").read_text()
    assert "truth" in table and "igapt" in table
    assert (tmp_path / "cmp" / "distributions.png").is_file()
    result = invoke("compare", "--plugins", "igapt,nope", "--quiet")
    assert result.exit_code == 2 and "unknown model plugin 'nope'" in result.stderr
    result = invoke("compare", "--plugins", "igapt,igapt", "--quiet")
    assert result.exit_code == 2 and "twice" in result.stderr
