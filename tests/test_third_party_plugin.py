"""A third-party plugin, installed (as distribution metadata on sys.path), is discovered and trained."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import ToyDataPlugin, quick_overrides, write_plugin_distribution

from pcgen.config import load_config
from pcgen.plugins import load_registry
from pcgen.train.runner import execute

MODULE = '''
"""A deliberately small model: an MLP on per-particle noise, a DeepSets critic."""
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from pcgen import AdversarialModel, ModelSpec, hookimpl

PCGEN_CONTRACT = "2.0"


class TinyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hidden: int = Field(16, ge=1)


class TinyGenerator(nn.Module):
    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, hidden), nn.LeakyReLU(), nn.Linear(hidden, features), nn.Tanh())

    def forward(self, mask, cond):
        return self.net(torch.randn(*mask.shape, 4))


class TinyCritic(nn.Module):
    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.phi, self.rho = nn.Linear(features, hidden), nn.Linear(hidden, 1)

    def forward(self, x, mask, cond):
        m = mask.unsqueeze(-1).to(x.dtype)
        pooled = (torch.relu(self.phi(x)) * m).sum(1) / m.sum(1).clamp_min(1)
        return self.rho(pooled).squeeze(-1)


def build(cfg: TinyConfig, info):
    return AdversarialModel(TinyGenerator(info.num_features, cfg.hidden), TinyCritic(info.num_features, cfg.hidden))


@hookimpl
def pcgen_register_models():
    return [ModelSpec(name="tiny", config_class=TinyConfig, build=build, paper="A. Third-Party, Tiny GAN, 2026",
                      recipe_defaults={"optimizer": "adam", "lr_generator": 1e-3, "lr_critic": 1e-3})]
'''


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Lay the plugin out as pip would: the module plus a .dist-info with its entry point."""
    site = tmp_path / "site"
    site.mkdir()
    write_plugin_distribution(site, "pcgen_tiny", MODULE, "pcgen-tiny", "0.3.0", "tiny")
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("pcgen_tiny", None)


def test_third_party_plugin_is_discovered_and_trained(installed_plugin: Path, tmp_path: Path) -> None:
    registry = load_registry(extra_plugins=[ToyDataPlugin()])
    record = registry.plugins["tiny"]
    assert (record.status, record.distribution, record.version) == ("installed", "pcgen-tiny", "0.3.0")
    assert registry.models["tiny"].paper.startswith("A. Third-Party")
    cfg = load_config(None, quick_overrides(20) + [f'run_dir="{tmp_path}"'], registry, plugin="tiny")
    assert cfg.recipe.optimizer == "adam"
    result = execute(cfg, registry, show_progress=False, final_eval=True)
    assert result.completed and result.step == 20
    assert (result.run_dir / "metrics.md").is_file()
