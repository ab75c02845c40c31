"""Plugin discovery: guarded loading, strict mode, duplicates, contract versions, the catalogue."""

from __future__ import annotations

import importlib.metadata as md
import textwrap
from pathlib import Path

import pytest

from pcgen.plugins import PluginError, load_registry, plugin_table, read_catalogue

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
    return AdversarialModel(Gen(info.num_features), Critic(info.num_features))

@hookimpl
def pcgen_register_models():
    return [ModelSpec(name="{model}", config_class=Cfg, build=build, paper="Nobody, A toy, 2026")]
'''


def write_module(folder: Path, name: str, text: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(text))


def ep(name: str, module: str) -> md.EntryPoint:
    return md.EntryPoint(name=name, value=module, group="pcgen.plugins")


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("PCGEN_STRICT_PLUGINS", raising=False)
    return tmp_path


def test_a_broken_plugin_is_reported_and_the_others_keep_working(plugin_dir: Path) -> None:
    write_module(plugin_dir, "plug_ok_a", GOOD.format(contract="1.0", model="toy-a"))
    write_module(plugin_dir, "plug_broken_a", "raise ImportError('needs the flux capacitor')\n")
    reg = load_registry(entry_points=[ep("broken", "plug_broken_a"), ep("toy-a", "plug_ok_a")])
    assert reg.plugins["broken"].status == "broken"
    assert "flux capacitor" in reg.plugins["broken"].error
    assert reg.plugins["toy-a"].status == "installed"
    assert "toy-a" in reg.models and reg.plugins["toy-a"].models == ["toy-a"]
    assert "adversarial" in reg.recipes  # the core's own registrations still arrive


def test_strict_mode_reraises_import_errors(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_module(plugin_dir, "plug_broken_b", "raise RuntimeError('boom at import')\n")
    with pytest.raises(PluginError, match="boom at import"):
        load_registry(entry_points=[ep("broken", "plug_broken_b")], strict=True)
    monkeypatch.setenv("PCGEN_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="plug_broken_b"):
        load_registry(entry_points=[ep("broken", "plug_broken_b")])


def test_two_plugins_registering_one_model_name_is_a_clear_error(plugin_dir: Path) -> None:
    write_module(plugin_dir, "plug_dup_1", GOOD.format(contract="1.0", model="same"))
    write_module(plugin_dir, "plug_dup_2", GOOD.format(contract="1.0", model="same"))
    with pytest.raises(PluginError, match="two plugins register a model called 'same'"):
        load_registry(entry_points=[ep("one", "plug_dup_1"), ep("two", "plug_dup_2")])


def test_one_entry_point_name_from_two_distributions_is_an_error(plugin_dir: Path) -> None:
    write_module(plugin_dir, "plug_x1", GOOD.format(contract="1.0", model="x1"))
    write_module(plugin_dir, "plug_x2", GOOD.format(contract="1.0", model="x2"))
    with pytest.raises(PluginError, match="two installed distributions"):
        load_registry(entry_points=[ep("x", "plug_x1"), ep("x", "plug_x2")])


def test_identical_duplicate_entry_points_are_harmless(plugin_dir: Path) -> None:
    write_module(plugin_dir, "plug_twice", GOOD.format(contract="1.0", model="twice"))
    reg = load_registry(entry_points=[ep("twice", "plug_twice"), ep("twice", "plug_twice")])
    assert list(reg.models).count("twice") == 1


def test_a_plugin_for_another_contract_major_version_is_refused(plugin_dir: Path) -> None:
    write_module(plugin_dir, "plug_future", GOOD.format(contract="2.0", model="future"))
    reg = load_registry(entry_points=[ep("future", "plug_future")])
    assert reg.plugins["future"].status == "refused"
    assert "contract" in reg.plugins["future"].error and "future" not in reg.models
    with pytest.raises(PluginError, match="future"):
        reg.model("future")


def test_unknown_model_lists_the_installed_ones(plugin_dir: Path) -> None:
    write_module(plugin_dir, "plug_known", GOOD.format(contract="1.0", model="known"))
    reg = load_registry(entry_points=[ep("known", "plug_known")])
    with pytest.raises(PluginError, match=r"unknown model plugin 'nope'.*known"):
        reg.model("nope")


def test_catalogue_shows_plugins_that_are_not_installed(plugin_dir: Path) -> None:
    catalogue = plugin_dir / "registry.toml"
    catalogue.write_text('[plugins.ghost]\ndistribution = "pcgen-ghost"\npath = "plugins/ghost"\npaper = "Ghost 2026"\n')
    write_module(plugin_dir, "plug_real", GOOD.format(contract="1.0", model="real"))
    reg = load_registry(entry_points=[ep("real", "plug_real")])
    rows = {r.name: r for r in plugin_table(reg, read_catalogue(catalogue))}
    assert rows["ghost"].status == "not installed" and rows["ghost"].paper == "Ghost 2026"
    assert rows["real"].status == "installed" and not rows["real"].in_registry
    with pytest.raises(PluginError, match="not installed: pip install -e plugins/ghost"):
        reg.model("ghost")


def test_blocked_plugins_are_skipped(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_module(plugin_dir, "plug_blocked", "raise SystemExit('must never be imported')\n")
    monkeypatch.setenv("PCGEN_BLOCK_PLUGINS", "blocked")
    reg = load_registry(entry_points=[ep("blocked", "plug_blocked")])
    assert "blocked" not in reg.plugins
