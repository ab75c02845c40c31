"""The plugin author's kit: pcgen new-plugin -> pip install -> pcgen plugins -> pcgen check -> its own
tests -> pcgen run, in a folder outside the repository; pcgen check explains a failure."""

from __future__ import annotations

from collections.abc import Iterator

import os
import subprocess
import sys
from pathlib import Path

import pcgen
import pcgen.plugin_template
import pcgen.plugins
import pytest
import torch
from conftest import installed_plugin
from pcgen.cli import app
from pcgen.data.store import write_pointclouds
from pcgen.plugin_template import FILES, TemplateError, write_plugin
from pcgen.testing import toy_jets
from pcgen.testing.check import explain, run_contract
from pydantic import ValidationError
from typer.testing import CliRunner

BIN = Path(sys.executable).parent


def sh(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a command of this environment in ``cwd``; fail the test with its output if it fails."""
    env = {**os.environ, "PCGEN_STRICT_PLUGINS": "1"}
    done = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed_kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A plugin written by `pcgen new-plugin` outside the repository and pip-installed (editable):
    (the folder it was written from, the plugin's folder); uninstalled afterwards."""
    outside = tmp_path_factory.mktemp("empty")
    sh(str(BIN / "pcgen"), "new-plugin", "kitmodel", cwd=outside)
    folder = outside / "pcgen-kitmodel"
    assert {p.name for p in folder.iterdir()} == {"pyproject.toml", "README.md", "pcgen_kitmodel", "tests"}
    sh(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(folder),
       cwd=outside)
    try:
        yield outside, folder
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "--quiet", "-y", "pcgen-kitmodel"], check=False)


@pytest.mark.slow
def test_a_new_plugin_installs_is_listed_and_passes_the_contract(installed_kit: tuple[Path, Path]) -> None:
    outside, folder = installed_kit
    listed = sh(str(BIN / "pcgen"), "plugins", cwd=outside).stdout
    assert "kitmodel" in listed and "broken" not in listed
    checked = sh(str(BIN / "pcgen"), "check", "kitmodel", cwd=outside).stdout
    assert "0 failed" in checked and "FAIL" not in checked
    assert not list(folder.glob("*.egg-info")) and not (folder / "build").exists()  # the source tree stays clean


@pytest.mark.slow
def test_a_new_plugin_passes_its_own_tests_and_trains(installed_kit: tuple[Path, Path]) -> None:
    outside, folder = installed_kit
    own = sh(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", cwd=folder).stdout
    assert "2 passed" in own
    data = outside / "jets.h5"
    write_pointclouds(toy_jets(400, 30, seed=2), data)
    sh(str(BIN / "pcgen"), "run", "--plugin", "kitmodel", "--quiet", "--set", "data.dataset=file",
       "--set", f'data.path="{data}"', "--set", 'run_dir="runs"', "--set", 'name="kit"',
       "--set", "train.max_steps=20", "--set", "eval.num_jets=60", "--set", "eval.efp=false", cwd=outside)
    assert (outside / "runs" / "kit" / "metrics.md").is_file()
    assert not list(folder.glob("*.egg-info")) and not (folder / "build").exists()


def test_new_plugin_refuses_a_bad_name_and_a_folder_in_use(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="must start with a lower-case letter"):
        write_plugin("My Model", tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("mine")
    with pytest.raises(TemplateError, match="not empty"):
        write_plugin("ok", tmp_path / "b")


TEMPLATE = Path(pcgen.plugin_template.__file__).with_name("plugin_template_files")


def test_the_template_files_are_shipped_and_ruff_checks_the_python_ones() -> None:
    for path in FILES:
        assert (TEMPLATE / path).is_file(), path
    python = sorted(str(p.relative_to(TEMPLATE)) for p in TEMPLATE.rglob("*.py") if "__pycache__" not in p.parts)
    assert python == sorted(p for p in FILES if p.endswith(".py"))
    root = Path(__file__).resolve().parents[1]
    listed = sh(str(BIN / "ruff"), "check", "--show-files", str(TEMPLATE), cwd=root).stdout
    assert all(str(TEMPLATE / p) in listed for p in python), listed  # the repository's config does not exclude them
    sh(str(BIN / "ruff"), "check", str(TEMPLATE), cwd=root)


def test_new_plugin_writes_a_model_config_and_a_noise_driven_generator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_plugin("tpl-check", tmp_path / "pcgen-tpl-check")
    written = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert written == ["README.md", "pcgen_tpl_check/__init__.py", "pcgen_tpl_check/config.py",
                       "pcgen_tpl_check/networks.py", "pcgen_tpl_check/plugin.py", "pyproject.toml",
                       "tests/test_pcgen_tpl_check.py"]
    for path in written:
        text = (folder / path).read_text()
        assert "plugin_name" not in text and "PluginName" not in text and "$" not in text, path
    assert 'PCGEN_CONTRACT = "' + pcgen.CONTRACT_VERSION + '"' in (folder / "pcgen_tpl_check/plugin.py").read_text()
    assert 'tpl-check = "pcgen_tpl_check.plugin"' in (folder / "pyproject.toml").read_text()
    root = Path(__file__).resolve().parents[1]
    sh(str(BIN / "ruff"), "check", "--config", str(root / "pyproject.toml"), str(folder), cwd=folder)
    monkeypatch.syspath_prepend(str(folder))
    try:
        from pcgen_tpl_check.config import TplCheckConfig
        from pcgen_tpl_check.plugin import SPEC, build

        assert issubclass(TplCheckConfig, pcgen.ModelConfig)
        with pytest.raises(ValidationError, match="hiden"):
            TplCheckConfig(hiden=3)
        model = build(TplCheckConfig(**SPEC.quick_config), pcgen.DataInfo(10, ("eta_rel", "phi_rel", "pt_rel")))
        assert isinstance(model, pcgen.NoiseDrivenGenerator)
    finally:
        for name in [m for m in sys.modules if m.startswith("pcgen_tpl_check")]:
            del sys.modules[name]


NOISELESS = '''
import torch
from torch import nn
from pcgen import ModelConfig, ModelSpec, ObjectiveModel, hookimpl

PCGEN_CONTRACT = "2.0"

class Cfg(ModelConfig):
    shift: float = 0.0

class Particles(ObjectiveModel):
    """Independent particles x = a * noise + b, plus (with shift) an offset that grows with the slot."""
    def __init__(self, config, features):
        super().__init__()
        self.shift, self.a, self.b = config.shift, nn.Parameter(torch.ones(features)), nn.Parameter(torch.zeros(features))
    def training_losses(self, batch, step):
        return {"fit": ((batch.x - self.b) ** 2).mean()}
    def _sample(self, mask, cond):
        slot = torch.arange(mask.shape[1], dtype=self.a.dtype).view(1, -1, 1) / mask.shape[1]
        return self.a * torch.randn(*mask.shape, self.a.shape[0]) + self.b + self.shift * slot

@hookimpl
def pcgen_register_models():
    build = lambda config, info: Particles(config, info.num_features)
    return [ModelSpec(name="noiseless", config_class=Cfg, build=build, recipe="objective"),
            ModelSpec(name="slotted", config_class=Cfg, build=build, recipe="objective", quick_config={"shift": 0.5})]
'''


def test_a_claim_of_equivariance_without_the_noise_interface_is_checked_by_slot_and_the_skip_says_what_to_add(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with installed_plugin(tmp_path, monkeypatch, "plug_noiseless", NOISELESS, "noiseless"):
        results = {
            model: {r.test: r for r in run_contract(model, extra_args=("-k", "equivariant or slot or padded_noise"))}
            for model in ("noiseless", "slotted")
        }
    for model in ("noiseless", "slotted"):
        for test in ("test_generator_is_permutation_equivariant", "test_padded_noise_does_not_influence_generated_particles"):
            for n in (30, 150):
                result = results[model][f"{test}[N{n}-{model}]"]
                assert result.outcome == "skipped", result
                assert "pcgen.NoiseDrivenGenerator: add sample_noise(mask)" in result.seen, result.seen
                assert "forward_from_noise(noise, mask, cond)" in result.seen, result.seen
    equivariance = results["noiseless"]["test_generator_is_permutation_equivariant[N30-noiseless]"].seen
    assert "checked only statistically (test_generated_particles_do_not_depend_on_their_slot)" in equivariance
    for n in (30, 150):
        assert results["noiseless"][f"test_generated_particles_do_not_depend_on_their_slot[N{n}-noiseless]"].outcome \
            == "passed"
        failed = results["slotted"][f"test_generated_particles_do_not_depend_on_their_slot[N{n}-slotted]"]
        assert failed.outcome == "failed" and "depends on the slot (p = " in failed.seen, failed
        assert "positional encodings" in failed.fix and "NoiseDrivenGenerator" in failed.fix


def test_the_slot_test_catches_a_flow_over_fixed_slots_even_untrained(registry) -> None:
    """tf-refiner's flow models fixed particle slots (its spec says so): the slot test sees it at once."""
    from pcgen.data.multiplicity import jet_condition
    from pcgen.sampling import seeded
    from pcgen.testing.contract import SLOT_CLOUDS, SLOT_P_VALUE, build, slot_dependence

    spec = registry.model("tf-refiner")
    assert not spec.permutation_equivariant
    model = build(registry, spec, 30)
    mask = torch.ones(SLOT_CLOUDS, 30, dtype=torch.bool)
    with torch.no_grad(), seeded(0):
        x = model.sample(mask, jet_condition(mask))
    assert slot_dependence(x)[0] < SLOT_P_VALUE
    exchangeable = torch.randn(SLOT_CLOUDS, 30, 3) + torch.randn(SLOT_CLOUDS, 1, 3)  # shared per-cloud part
    assert slot_dependence(exchangeable)[0] > 1e-3
    assert slot_dependence(exchangeable.sort(dim=1).values)[0] < 1e-30  # sorted particles


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
    with installed_plugin(tmp_path, monkeypatch, "plug_leaky", LEAKY, "leaky"):
        result = CliRunner().invoke(app, ["check", "leaky", "-k", "padded_particles_do_not_influence_the_critic"])
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
