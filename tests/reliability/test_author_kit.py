"""Issue 21, item 8: author-kit papercuts. ``pcgen compare --set PLUGIN.model.KEY=VALUE`` gives a setting
to one model (a plain ``model.KEY`` goes to all, and the error names the model that refuses it);
``pcgen data split --run RUN --out FILE`` writes a run's held-out clouds for ``pcgen eval --reference``;
``pcgen check`` builds every model it samples or trains from the plugin's quick config."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pcgen.compare import overrides_per_plugin
from pcgen.config import ConfigError, load_config
from pcgen.data.store import read_pointclouds
from pcgen.testing.check import run_contract
from pcgen.train.data_prep import load_clouds, prepare

from conftest import installed_plugin
from .helpers import one_line, run_args


def shared_sets(jets_file: Path, tmp_path: Path) -> list[str]:
    """The `--set` arguments of a short run on ``jets_file``, without a run folder or name."""
    values = [v for v in run_args(jets_file, tmp_path, "x", 2)[5::2] if not v.startswith(("name=", "run_dir="))]
    return [arg for value in values for arg in ("--set", value)]


def test_compare_gives_a_plugin_prefixed_setting_to_that_model_only(cli, jets_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = cli("compare", "--plugins", "igapt,epic-gan", "--out", out, "--quiet", *shared_sets(jets_file, tmp_path),
                 "--set", "igapt.model.embed_dim=16", "--set", "igapt.model.generator_blocks=1",
                 "--set", "epic-gan.model.hidden=16", "--set", "epic-gan.recipe.lr_generator=0.0003")
    assert result.exit_code == 0, result.stderr
    igapt = tomllib.loads((out / "igapt" / "config.toml").read_text())
    epic = tomllib.loads((out / "epic-gan" / "config.toml").read_text())
    assert igapt["model"]["embed_dim"] == 16 and igapt["model"]["generator_blocks"] == 1
    assert epic["model"]["hidden"] == 16 and epic["recipe"]["lr_generator"] == 0.0003
    assert igapt["recipe"]["lr_generator"] != 0.0003
    assert igapt["train"] == epic["train"] and igapt["data"] == epic["data"]  # the rest is shared


def test_compare_names_the_model_that_refuses_a_shared_model_setting(cli) -> None:
    result = cli("compare", "--plugins", "igapt,epic-gan", "--set", "model.embed_dim=16")
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert message.startswith("error: epic-gan: invalid configuration: unknown key 'model.embed_dim'; "), message
    assert message.endswith("a --set applies to every model of the comparison, for one model only write "
                            "--set PLUGIN.model.KEY=VALUE (or PLUGIN.recipe.KEY=VALUE)")


@pytest.mark.parametrize(("setting", "words"), [
    ("mdma.model.noise_dim=4", "'mdma' is not one of the compared models (igapt, epic-gan)"),
    ("igapt.train.max_steps=4", "only igapt.model.KEY=VALUE and igapt.recipe.KEY=VALUE can be given to one model"),
])
def test_compare_refuses_a_prefix_it_cannot_honour(registry: Any, setting: str, words: str) -> None:
    with pytest.raises(ConfigError, match=f"--set {setting}: {words}".replace("(", r"\(").replace(")", r"\)")):
        overrides_per_plugin([setting], ["igapt", "epic-gan"], registry)


def test_data_split_writes_the_runs_held_out_clouds_exactly(cli, trained_run: Path, tmp_path: Path,
                                                           registry: Any) -> None:
    out = tmp_path / "heldout.h5"
    result = cli("data", "split", "--run", trained_run, "--out", out)
    assert result.exit_code == 0, result.stderr
    resolved = load_config(trained_run / "config.toml", [], registry)
    clouds = load_clouds(resolved, registry, progress=False)
    expected = prepare(clouds, resolved, resolved.spec, registry.kind_of(clouds)).test  # what the run evaluated against
    written = read_pointclouds(out)
    assert np.array_equal(written.points, expected.points) and np.array_equal(written.mask, expected.mask)
    again = cli("data", "split", "--run", trained_run, "--out", out)
    assert again.exit_code == 2 and "already exists; pass --force" in one_line(again.stderr)
    evaluated = cli("eval", "--samples", trained_run / "samples.h5", "--reference", out, "--n", "50", "--no-efp")
    assert evaluated.exit_code == 0, evaluated.stderr


def test_data_split_of_a_folder_that_is_no_run_is_one_line(cli, tmp_path: Path) -> None:
    result = cli("data", "split", "--run", tmp_path, "--out", tmp_path / "h.h5")
    assert result.exit_code == 2
    assert one_line(result.stderr) == (f"error: {tmp_path} is not a pcgen run folder (no config.toml); "
                                       "pass the folder `pcgen run` made")


SLOW_DEFAULT = '''
import torch
from torch import nn
from pcgen import ModelConfig, ModelSpec, ObjectiveModel, hookimpl

PCGEN_CONTRACT = "2.0"

class Cfg(ModelConfig):
    steps: int = 1_000_000

class Stepped(ObjectiveModel):
    """Independent particles refined by `steps` cheap steps; the paper default stands for hours of sampling."""
    def __init__(self, config, features):
        super().__init__()
        self.steps, self.b = config.steps, nn.Parameter(torch.zeros(features))
    def training_losses(self, batch, step):
        return {"fit": ((batch.x - self.b) ** 2).mean()}
    def _sample(self, mask, cond):
        if self.steps > 100:
            raise RuntimeError(f"SLOW-DEFAULT: sampled with the paper's {self.steps} steps")
        return torch.randn(*mask.shape, self.b.shape[0]) + self.b

@hookimpl
def pcgen_register_models():
    return [ModelSpec(name="slowdefault", config_class=Cfg, build=lambda config, info: Stepped(config, info.num_features),
                      recipe="objective", quick_config={"steps": 4})]
'''


def test_pcgen_check_samples_and_trains_only_the_quick_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin whose paper default samples for hours (here: refuses to) is checked through its quick config:
    no contract test meets the default's sampling (before: the contract built the paper config for its
    shape, padding, equivariance and slot tests, so `pcgen check` took as long as the default samples)."""
    with installed_plugin(tmp_path, monkeypatch, "plug_slowdefault", SLOW_DEFAULT, "slowdefault"):
        results = run_contract("slowdefault")
    ran = [r for r in results if r.outcome != "skipped"]
    assert len(ran) >= 7, [r.test for r in results]
    assert not [r for r in results if "SLOW-DEFAULT" in r.seen], [r for r in results if "SLOW-DEFAULT" in r.seen]
    assert "test_build_returns_a_generative_model" in {r.test.split("[")[0] for r in ran}
