"""The plugin author's kit: pcgen new-plugin -> pip install -> pcgen plugins -> pcgen check -> its own
tests -> pcgen run, in a folder outside the repository; pcgen check explains a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pcgen.plugins
import pytest
from conftest import write_plugin_distribution
from pcgen.cli import app
from pcgen.data.store import write_pointclouds
from pcgen.plugin_template import TemplateError, write_plugin
from pcgen.testing import toy_jets
from pcgen.testing.check import explain
from typer.testing import CliRunner

BIN = Path(sys.executable).parent


def sh(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a command of this environment in ``cwd``; fail the test with its output if it fails."""
    env = {**os.environ, "PCGEN_STRICT_PLUGINS": "1"}
    done = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_a_new_plugin_installs_is_listed_passes_the_contract_and_its_tests_and_trains(tmp_path: Path) -> None:
    outside = tmp_path / "empty"
    outside.mkdir()
    sh(str(BIN / "pcgen"), "new-plugin", "kitmodel", cwd=outside)
    folder = outside / "pcgen-kitmodel"
    assert {p.name for p in folder.iterdir()} == {"pyproject.toml", "README.md", "pcgen_kitmodel", "tests"}
    sh(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(folder),
       cwd=outside)
    try:
        listed = sh(str(BIN / "pcgen"), "plugins", cwd=outside).stdout
        assert "kitmodel" in listed and "broken" not in listed
        checked = sh(str(BIN / "pcgen"), "check", "kitmodel", cwd=outside).stdout
        assert "0 failed" in checked and "FAIL" not in checked
        own = sh(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", cwd=folder).stdout
        assert "2 passed" in own
        data = outside / "jets.h5"
        write_pointclouds(toy_jets(400, 30, seed=2), data)
        sh(str(BIN / "pcgen"), "run", "--plugin", "kitmodel", "--quiet", "--set", "data.dataset=file",
           "--set", f'data.path="{data}"', "--set", 'run_dir="runs"', "--set", 'name="kit"',
           "--set", "train.max_steps=20", "--set", "eval.num_jets=60", "--set", "eval.efp=false", cwd=outside)
        assert (outside / "runs" / "kit" / "metrics.md").is_file()
        assert not list(folder.glob("*.egg-info")) and not (folder / "build").exists()  # the source tree stays clean
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "--quiet", "-y", "pcgen-kitmodel"], check=False)


def test_new_plugin_refuses_a_bad_name_and_a_folder_in_use(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="must start with a lower-case letter"):
        write_plugin("My Model", tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("mine")
    with pytest.raises(TemplateError, match="not empty"):
        write_plugin("ok", tmp_path / "b")


LEAKY = '''
import torch
from torch import nn
from pydantic import BaseModel
from pcgen import AdversarialModel, ModelSpec, hookimpl

PCGEN_CONTRACT = "2.0"

class Cfg(BaseModel):
    width: int = 8

class Gen(nn.Module):
    def __init__(self, f):
        super().__init__(); self.lin = nn.Linear(4, f)
    def forward(self, mask, cond):
        return self.lin(torch.randn(*mask.shape, 4))

class LeakyCritic(nn.Module):
    """Sums over all slots, padded ones included: the contract must catch it."""
    def __init__(self, f):
        super().__init__(); self.lin = nn.Linear(f, 1)
    def forward(self, x, mask, cond):
        return self.lin(x).sum(1).squeeze(-1)

@hookimpl
def pcgen_register_models():
    build = lambda cfg, info: AdversarialModel(Gen(info.num_features), LeakyCritic(info.num_features))
    return [ModelSpec(name="leaky", config_class=Cfg, build=build)]
'''


def test_pcgen_check_explains_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_plugin_distribution(tmp_path, "plug_leaky", LEAKY, "pcgen-leaky", "0.1.0", "leaky")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(pcgen.plugins, "_REGISTRY", None)
    try:
        result = CliRunner().invoke(app, ["check", "leaky", "-k", "padded_particles_do_not_influence_the_critic"])
    finally:
        sys.modules.pop("plug_leaky", None)
        pcgen.plugins._REGISTRY = None
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "checked: Changing the values of padded particles leaves the critic's scores unchanged." in text
    assert "seen: scores changed by up to" in text
    assert "fix: exclude padded particles from attention" in text
    assert "leaky: 0 passed, 2 failed, 0 skipped" in text


def test_every_contract_test_says_what_it_checks_and_how_to_fix_it() -> None:
    from pcgen.testing import contract

    tests = [f for name, f in vars(contract).items() if name.startswith("test_") and callable(f)]
    assert len(tests) >= 9
    for test in tests:
        what, fix = explain(test.__doc__)
        assert what.endswith(".") and len(fix) > 20, test.__name__


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pcgen-particle-mixture"


@pytest.mark.slow
def test_the_example_plugin_passes_the_contract_from_its_own_folder() -> None:
    """examples/pcgen-particle-mixture, installed like a third-party plugin, checked from its own folder."""
    sh(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(EXAMPLE),
       cwd=EXAMPLE)
    try:
        tested = sh(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--pcgen-model", "particle-mixture",
                    cwd=EXAMPLE).stdout
        assert "failed" not in tested and "passed" in tested
        assert "0 failed" in sh(str(BIN / "pcgen"), "check", "particle-mixture", cwd=EXAMPLE).stdout
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "--quiet", "-y", "pcgen-particle-mixture"], check=False)


def test_the_example_plugin_imports_only_the_public_api() -> None:
    public = {"pcgen", "pcgen.nn", "pcgen.testing"}
    for source in EXAMPLE.rglob("*.py"):
        for line in source.read_text().splitlines():
            words = line.split()
            if words[:1] == ["from"] and words[1].startswith("pcgen") and not words[1].startswith("pcgen_"):
                assert words[1] in public, f"{source.name}: {line.strip()}"
            if words[:1] == ["import"] and words[1].startswith("pcgen."):
                assert words[1] in public, f"{source.name}: {line.strip()}"
