"""Plugin discovery: every failure of a plugin is isolated to it (one test per case), strict mode,
conflicts, contract versions, blocking, the catalogue, and build() failures."""

from __future__ import annotations

import importlib.metadata as md
import sys
from pathlib import Path

import pytest
from conftest import ToyDataPlugin, quick_overrides, write_plugin_distribution
from pcgen.config import load_config
from pcgen.plugins import PluginError, contract_accepts, load_registry, plugin_table, read_catalogue
from pcgen.train.runner import execute

GOOD = '''
import torch
from torch import nn
from pcgen import AdversarialModel, ModelSpec, hookimpl
from pydantic import BaseModel

PCGEN_CONTRACT = "{contract}"

class Cfg(BaseModel):
    width: int = 8

class Gen(nn.Module):
    def __init__(self, f):
        super().__init__(); self.lin = nn.Linear(4, f)
    def forward(self, mask, cond):
        return self.lin(torch.randn(*mask.shape, 4))

class Critic(nn.Module):
    def __init__(self, f):
        super().__init__(); self.lin = nn.Linear(f, 1)
    def forward(self, x, mask, cond):
        m = mask.unsqueeze(-1).float()
        return (self.lin(x) * m).sum(1).squeeze(-1) / m.sum(1).squeeze(-1).clamp_min(1)

def build(cfg, info):
    assert isinstance(cfg, Cfg), "build() must receive the validated config"
    return AdversarialModel(Gen(info.num_features), Critic(info.num_features))

@hookimpl
def pcgen_register_models():
    return [ModelSpec(name="{model}", config_class=Cfg, build=build, paper="Nobody, A toy, 2026")]
'''


def good(model: str, contract: str = "2.0") -> str:
    return GOOD.format(contract=contract, model=model)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path into which :func:`install` lays out distributions as pip would."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("PCGEN_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("PCGEN_BLOCK_PLUGINS", raising=False)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("plug_"):
            del sys.modules[name]


def install(site: Path, module: str, text: str, dist: str | None = None, version: str = "0.3.0",
            ep_name: str | None = None) -> md.EntryPoint:
    """Write ``module`` and a .dist-info declaring it as pcgen plugin ``ep_name``; return the entry point."""
    dist = dist or f"pcgen-{module.replace('_', '-')}"
    write_plugin_distribution(site, module, text, dist, version, ep_name or module)
    (ep,) = md.distribution(dist).entry_points
    return ep


def assert_isolated(site: Path, module: str, text: str, reason: str, status: str = "broken") -> None:
    """``text`` as plugin ``module`` is marked ``status`` with ``reason``, its distribution and version,
    while a good plugin installed beside it keeps working."""
    bad = install(site, module, text, dist="pcgen-bad", version="2.5.1")
    ok = install(site, "plug_ok", good("fine"))
    reg = load_registry(entry_points=[bad, ok], catalogue={})
    record = reg.plugins[module]
    assert record.status == status, record
    assert reason in record.error, record.error
    assert (record.distribution, record.version) == ("pcgen-bad", "2.5.1")
    assert "pcgen-bad 2.5.1" in record.label
    assert reg.plugins["plug_ok"].status == "installed" and "fine" in reg.models
    assert "adversarial" in reg.recipes  # the core's own registrations still arrive


def test_an_import_error_marks_the_plugin_broken(site: Path) -> None:
    assert_isolated(site, "plug_import", "raise ImportError('needs the flux capacitor')\n", "flux capacitor")


def test_a_misspelt_hook_marks_the_plugin_broken_and_suggests_the_name(site: Path) -> None:
    text = good("typo").replace("def pcgen_register_models", "def pcgen_register_model")
    assert_isolated(site, "plug_typo", text, "unknown hook pcgen_register_model (did you mean pcgen_register_models?)")


def test_a_hook_with_arguments_its_spec_lacks_marks_the_plugin_broken(site: Path) -> None:
    text = good("extra").replace("def pcgen_register_models():", "def pcgen_register_models(registry):")
    assert_isolated(site, "plug_extra", text, "registry")


def test_a_register_hook_that_raises_marks_the_plugin_broken(site: Path) -> None:
    text = good("raises").replace("    return [ModelSpec(", "    raise KeyError('no weights')\n    return [ModelSpec(")
    assert_isolated(site, "plug_raises", text, "pcgen_register_models() raised KeyError")


def test_a_register_hook_returning_the_wrong_type_marks_the_plugin_broken(site: Path) -> None:
    text = good("wrong").replace("    return [ModelSpec(", "    return ModelSpec(").replace("2026\")]", "2026\")")
    assert_isolated(site, "plug_wrong", text, "returned ModelSpec; it must return a list of ModelSpec")


def test_a_plugin_for_another_contract_major_version_is_broken(site: Path) -> None:
    assert_isolated(site, "plug_future", good("future", contract="3.0"), "written for pcgen contract '3.0'")


@pytest.mark.parametrize(("declared", "accepted"), [("2.0", True), ("2.1", True), ("2.9", True), ("3.0", False),
                                                    ("1.4", False), ("", False), (2.1, False)])
def test_a_contract_is_accepted_by_its_major_number_only(declared: object, accepted: bool) -> None:
    assert contract_accepts(declared) is accepted


def test_two_plugins_claiming_one_model_are_both_in_conflict_and_neither_wins(site: Path) -> None:
    one = install(site, "plug_dup_1", good("same"), dist="pcgen-igapt", version="0.1.0")
    two = install(site, "plug_dup_2", good("same"), dist="pcgen-copycat", version="9.0")
    ok = install(site, "plug_ok", good("fine"))
    catalogue = {"same": {"distribution": "pcgen-igapt"}}
    reg = load_registry(entry_points=[one, two, ok], catalogue=catalogue)
    assert {reg.plugins[n].status for n in ("plug_dup_1", "plug_dup_2")} == {"conflict"}
    assert "same" not in reg.models and "fine" in reg.models
    message = reg.plugins["plug_dup_2"].error
    assert "pcgen-igapt 0.1.0" in message and "pcgen-copycat 9.0" in message
    assert "PCGEN_BLOCK_PLUGINS=pcgen-copycat" in message and "PCGEN_BLOCK_PLUGINS=pcgen-igapt" not in message
    with pytest.raises(PluginError, match="model 'same' is registered by"):
        reg.model("same")


def test_blocking_one_distribution_resolves_a_conflict(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = install(site, "plug_dup_1", good("same"), dist="pcgen-one")
    two = install(site, "plug_dup_2", good("same"), dist="pcgen-two")
    monkeypatch.setenv("PCGEN_BLOCK_PLUGINS", "pcgen-two")
    reg = load_registry(entry_points=[one, two], catalogue={})
    assert reg.plugins["plug_dup_1"].status == "installed" and "same" in reg.models


def test_a_plugin_claiming_a_core_name_is_in_conflict_and_the_core_keeps_it(site: Path) -> None:
    text = '''
from pcgen import DatasetSpec, hookimpl
PCGEN_CONTRACT = "2.0"

@hookimpl
def pcgen_register_datasets():
    return [DatasetSpec(name="pythia", load=lambda config, progress=True: None)]
'''
    assert_isolated(site, "plug_core_name", text, "data set 'pythia' is registered by", status="conflict")
    reg = load_registry(entry_points=[*md.distribution("pcgen-bad").entry_points], catalogue={})
    assert reg.datasets["pythia"].description  # still the core's own


def test_one_entry_point_name_from_two_distributions_is_a_conflict(site: Path) -> None:
    first = install(site, "plug_x1", good("x1"), dist="pcgen-first", ep_name="x")
    second = install(site, "plug_x2", good("x2"), dist="pcgen-second", ep_name="x")
    ok = install(site, "plug_ok", good("fine"))
    reg = load_registry(entry_points=[first, second, ok], catalogue={})
    assert reg.plugins["x"].status == "conflict"
    assert "pcgen-first" in reg.plugins["x"].error and "pcgen-second" in reg.plugins["x"].error
    assert "x1" not in reg.models and "x2" not in reg.models and "fine" in reg.models


def test_identical_duplicate_entry_points_are_harmless(site: Path) -> None:
    ep = install(site, "plug_twice", good("twice"))
    reg = load_registry(entry_points=[ep, ep], catalogue={})
    assert reg.plugins["plug_twice"].status == "installed" and "twice" in reg.models


def test_strict_mode_raises_one_line_naming_the_plugin(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ep = install(site, "plug_strict", good("strict").replace("pcgen_register_models", "pcgen_register_modls"))
    monkeypatch.setenv("PCGEN_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError) as err:
        load_registry(entry_points=[ep], catalogue={})
    assert "plug_strict" in str(err.value) and "pcgen_register_modls" in str(err.value)
    assert "\n" not in str(err.value)
    boom = install(site, "plug_boom", "raise RuntimeError('boom at import')\n")
    with pytest.raises(PluginError, match="boom at import"):
        load_registry(entry_points=[boom], strict=True, catalogue={})


def test_pcgen_plugins_lists_a_broken_plugin_and_fails_only_when_strict(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pcgen.cli
    from pcgen.cli import app
    from rich.console import Console
    from typer.testing import CliRunner

    monkeypatch.setattr(pcgen.cli, "out", Console(width=400))
    install(site, "plug_cli", good("cli").replace("def pcgen_register_models", "def pcgen_register_model"),
            dist="pcgen-cli-bad", version="1.2.3")
    monkeypatch.setattr(pcgen.plugins, "_REGISTRY", None)
    result = CliRunner().invoke(app, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "broken" in result.output and "pcgen-cli-bad 1.2.3" in result.output
    monkeypatch.setattr(pcgen.plugins, "_REGISTRY", None)
    monkeypatch.setenv("PCGEN_STRICT_PLUGINS", "1")
    result = CliRunner().invoke(app, ["plugins"])
    assert result.exit_code == 2
    assert "plug_cli" in result.output and len(result.output.strip().splitlines()) == 1, result.output
    monkeypatch.setattr(pcgen.plugins, "_REGISTRY", None)


def test_an_exception_in_build_names_the_plugin_and_leaves_no_run_folder(site: Path, tmp_path: Path) -> None:
    text = good("crash").replace("    return AdversarialModel(", "    raise RuntimeError('CUDA kernel missing')\n    return (")
    ep = install(site, "plug_crash", text, dist="pcgen-crash", version="0.7.0")
    reg = load_registry(entry_points=[ep], extra_plugins=[ToyDataPlugin()], catalogue={})
    runs = tmp_path / "runs"
    cfg = load_config(None, quick_overrides(2) + [f'run_dir="{runs}"'], reg, plugin="crash")
    with pytest.raises(PluginError) as err:
        execute(cfg, reg, show_progress=False)
    assert str(err.value).startswith(
        "plugin plug_crash (pcgen-crash 0.7.0) failed to build model crash: RuntimeError: CUDA kernel missing")
    assert not runs.exists() or not any(runs.iterdir())


def test_build_gets_the_validated_config_even_from_a_dict(site: Path) -> None:
    from pcgen import DataInfo

    reg = load_registry(entry_points=[install(site, "plug_cfg", good("cfg"))], catalogue={})
    model = reg.build_model(reg.models["cfg"], {"width": 4}, DataInfo(10, ("a", "b", "c")))
    assert model.sample(*_mask_and_cond()).shape == (2, 10, 3)


def _mask_and_cond():
    import torch

    mask = torch.arange(10)[None] < torch.tensor([[3], [10]])
    return mask, mask.float().mean(1, keepdim=True)


def test_unknown_model_lists_the_installed_ones(site: Path) -> None:
    reg = load_registry(entry_points=[install(site, "plug_known", good("known"))], catalogue={})
    with pytest.raises(PluginError, match=r"unknown model plugin 'nope'.*known"):
        reg.model("nope")


def test_catalogue_shows_plugins_that_are_not_installed(site: Path) -> None:
    catalogue = site / "registry.toml"
    catalogue.write_text('[plugins.ghost]\ndistribution = "pcgen-ghost"\npath = "plugins/ghost"\npaper = "Ghost 2026"\n')
    reg = load_registry(entry_points=[install(site, "plug_real", good("real"))], catalogue={})
    rows = {r.name: r for r in plugin_table(reg, read_catalogue(catalogue))}
    assert rows["ghost"].status == "not installed" and rows["ghost"].paper == "Ghost 2026"
    assert rows["plug_real"].status == "installed" and not rows["plug_real"].in_registry
    with pytest.raises(PluginError, match="not installed: pip install -e plugins/ghost"):
        reg.model("ghost")


def test_blocked_plugins_are_skipped(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ep = install(site, "plug_blocked", "raise SystemExit('must never be imported')\n")
    monkeypatch.setenv("PCGEN_BLOCK_PLUGINS", "plug_blocked")
    reg = load_registry(entry_points=[ep], catalogue={})
    assert "plug_blocked" not in reg.plugins


def test_an_unreadable_catalogue_is_a_warning_not_a_crash(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken-registry.toml"
    bad.write_text("[plugins.x\n")
    monkeypatch.setenv("PCGEN_REGISTRY", str(bad))
    reg = load_registry(entry_points=[install(site, "plug_cat", good("cat"))])
    assert "cat" in reg.models and reg.catalogue == {}
    assert "is not valid TOML" in capsys.readouterr().err
    with pytest.raises(PluginError, match="is not valid TOML"):
        load_registry(entry_points=[], strict=True)
