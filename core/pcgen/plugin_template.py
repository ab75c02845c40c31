"""``pcgen new-plugin``: write a complete, installable model plugin that passes the contract as it comes.

The model it writes is small and real: conditional flow matching (an :class:`~pcgen.ObjectiveModel`)
with a permutation-equivariant DeepSets velocity field, sampled by Euler steps from Gaussian noise.
Replace its networks with yours; keep the shape of the package.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from pcgen.hookspecs import CONTRACT_VERSION


class TemplateError(ValueError):
    """The plugin cannot be written (bad name, folder not empty)."""


PYPROJECT = '''[build-system]
requires = ["hatchling>=1.27"]
build-backend = "hatchling.build"

[project]
name = "$dist"
version = "0.1.0"
description = "The $name model for pcgen (point-cloud generative models)."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["pcgen>=0.1,<0.2"]

[project.entry-points."pcgen.plugins"]
$name = "$package.plugin"

[tool.hatch.build.targets.wheel]
packages = ["$package"]

[tool.pytest.ini_options]
testpaths = ["tests"]
# Also run pcgen's model contract against this model (pcgen.testing, shipped with pcgen).
addopts = "--pcgen-model $name"
'''

README = '''# $dist

The `$name` model for pcgen (generative models of particle point clouds): conditional flow matching on particle point
clouds (a per-particle velocity field with a DeepSets context, integrated by Euler steps).

```bash
pip install -e .                 # into the environment that has pcgen
pcgen plugins                    # lists $name
pcgen check $name                # pcgen's model contract, each failure explained
pytest                           # this package's tests plus the contract (--pcgen-model $name)
pcgen run --plugin $name --set train.time_budget_minutes=1
```

Layout: `$package/config.py` (settings and defaults), `$package/networks.py` (torch modules),
`$package/plugin.py` (the entry point: `PCGEN_CONTRACT` and the `pcgen_register_models` hook),
`tests/` (unit tests of the networks).
'''

INIT = '''"""The $name model for pcgen."""

from $package.config import ${cls}Config
from $package.networks import ${cls}Model

__all__ = ["${cls}Config", "${cls}Model"]
'''

CONFIG = '''"""Settings of the $name model (the ``[model]`` table of a run config)."""

from pydantic import BaseModel, ConfigDict, Field


class ${cls}Config(BaseModel):
    """Architecture and sampling settings; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    hidden: int = Field(128, ge=4, description="Width of the per-particle networks.")
    layers: int = Field(3, ge=1, description="Hidden layers of each network.")
    time_features: int = Field(8, ge=2, description="Fourier features of the flow time t.")
    sampling_steps: int = Field(32, ge=1, description="Euler steps from noise to data when sampling.")
'''

NETWORKS = '''"""Conditional flow matching on point clouds: a permutation-equivariant velocity field.

Training: for data x1, noise x0 and a time t per cloud, the velocity field v(x_t, t) at
x_t = (1 - t) x0 + t x1 is regressed onto x1 - x0 (masked mean squared error over real particles).
Sampling: Euler steps of dx/dt = v(x, t) from Gaussian noise at t = 0 to t = 1.
"""

from __future__ import annotations

import math

import torch
from pcgen import Batch, ObjectiveModel
from pcgen.nn import apply_mask, masked_mean
from torch import Tensor, nn

from $package.config import ${cls}Config


def mlp(width_in: int, hidden: int, width_out: int, layers: int) -> nn.Sequential:
    """``layers`` hidden layers of SiLU units."""
    sizes = [width_in] + [hidden] * layers
    blocks: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        blocks += [nn.Linear(a, b), nn.SiLU()]
    return nn.Sequential(*blocks, nn.Linear(sizes[-1], width_out))


class VelocityField(nn.Module):
    """v(x_t, t, cond): each particle sees itself, t, the condition and the masked mean of all real particles."""

    def __init__(self, config: ${cls}Config, features: int, cond_dim: int) -> None:
        super().__init__()
        self.time_features = config.time_features
        inputs = features + config.time_features + cond_dim
        self.embed = mlp(inputs, config.hidden, config.hidden, 1)
        self.out = mlp(inputs + 2 * config.hidden, config.hidden, features, config.layers)

    def forward(self, x: Tensor, t: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        freqs = torch.arange(1, self.time_features // 2 + 1, device=x.device, dtype=x.dtype) * math.pi
        angles = t[:, None] * freqs[None]
        per_cloud = torch.cat([angles.sin(), angles.cos(), cond.to(x.dtype)], dim=-1)
        inputs = torch.cat([x, per_cloud[:, None].expand(-1, x.shape[1], -1)], dim=-1)
        h = self.embed(inputs)
        context = masked_mean(h, mask)[:, None].expand_as(h)
        return apply_mask(self.out(torch.cat([inputs, h, context], dim=-1)), mask)


class ${cls}Model(ObjectiveModel):
    """Flow matching model; exposes the noise interface the contract tests check."""

    def __init__(self, config: ${cls}Config, features: int, cond_dim: int) -> None:
        super().__init__()
        self.config = config
        self.features = features
        self.velocity = VelocityField(config, features, cond_dim)

    def training_losses(self, batch: Batch, step: int) -> dict[str, Tensor]:
        mask = batch.mask
        x1 = batch.x
        x0 = torch.randn_like(x1)
        t = torch.rand(len(x1), device=x1.device, dtype=x1.dtype)
        xt = (1 - t)[:, None, None] * x0 + t[:, None, None] * x1
        error = (self.velocity(xt, t, mask, batch.cond) - (x1 - x0)) ** 2
        weights = mask.unsqueeze(-1).to(error.dtype)
        return {"flow_matching": (error * weights).sum() / (weights.sum() * self.features).clamp_min(1)}

    def sample_noise(self, mask: Tensor) -> tuple[Tensor]:
        """Per-particle Gaussian noise ``(B, N, F)``, the starting point of sampling."""
        return (torch.randn(*mask.shape, self.features, device=mask.device),)

    def forward_from_noise(self, noise: tuple[Tensor], mask: Tensor, cond: Tensor) -> Tensor:
        """Integrate the velocity field from ``noise`` at t = 0 to t = 1 with Euler steps."""
        x, steps = noise[0], self.config.sampling_steps
        for i in range(steps):
            t = torch.full((len(x),), i / steps, device=x.device, dtype=x.dtype)
            x = x + self.velocity(x, t, mask, cond) / steps
        return x

    @torch.no_grad()
    def _sample(self, mask: Tensor, cond: Tensor) -> Tensor:
        return self.forward_from_noise(self.sample_noise(mask), mask, cond)
'''

PLUGIN = '''"""Entry-point module of the $name plugin (group ``pcgen.plugins``, name ``$name``)."""

from __future__ import annotations

from pcgen import DataInfo, ModelSpec, hookimpl

from $package.config import ${cls}Config
from $package.networks import ${cls}Model

PCGEN_CONTRACT = "$contract"


def build(config: ${cls}Config, info: DataInfo) -> ${cls}Model:
    """The model for clouds of ``info.num_features`` features (pcgen passes the validated config)."""
    return ${cls}Model(config, info.num_features, info.cond_dim)


SPEC = ModelSpec(
    name="$name",
    config_class=${cls}Config,
    build=build,
    recipe="objective",
    recipe_defaults={"optimizer": "adamw", "lr": 1e-3, "warmup_steps": 50},
    train_defaults={"batch_size": 128},
    quick_config={"hidden": 32, "layers": 2, "sampling_steps": 16},
    quick_recipe={"lr": 3e-3, "warmup_steps": 20},
    # Standardised features, with pt_rel (and hit energies E) as logarithms: generated ones stay positive.
    preprocessing="standard",
    log_features=("pt_rel", "E"),
    paper="Y. Lipman et al., Flow Matching for Generative Modeling, arXiv:2210.02747",
    description="Conditional flow matching with a DeepSets velocity field (written by pcgen new-plugin).",
)


@hookimpl
def pcgen_register_models() -> list[ModelSpec]:
    """Register the ``$name`` model."""
    return [SPEC]
'''

TESTS = '''"""Unit tests of the $name networks (pcgen's model contract runs too: see pyproject's addopts)."""

import torch
from pcgen import Batch, DataInfo

from $package.config import ${cls}Config
from $package.plugin import SPEC, build

INFO = DataInfo(max_particles=12, feature_names=("eta_rel", "phi_rel", "pt_rel"))


def batch(num: int = 16) -> Batch:
    """Clouds of 2 to 12 particles, each feature near 2 (far from the noise at 0)."""
    mask = torch.arange(12)[None] < torch.randint(2, 13, (num, 1))
    x = (2 + 0.1 * torch.randn(num, 12, 3)) * mask.unsqueeze(-1)
    return Batch(x, mask, mask.float().mean(1, keepdim=True))


def test_padded_particles_do_not_change_the_velocity_of_real_ones() -> None:
    torch.manual_seed(0)
    model, b = build(${cls}Config(**SPEC.quick_config), INFO), batch()
    t = torch.rand(16)
    garbage = b.x + 100 * torch.randn_like(b.x) * (~b.mask).unsqueeze(-1)
    a, c = model.velocity(b.x, t, b.mask, b.cond), model.velocity(garbage, t, b.mask, b.cond)
    assert torch.allclose(a[b.mask], c[b.mask], atol=1e-5)


def test_the_flow_matching_loss_falls_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    model, b = build(${cls}Config(**SPEC.quick_config), INFO), batch()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(60):
        torch.manual_seed(step % 4)  # the same four noise draws over and over
        loss = model.training_losses(b, step)["flow_matching"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-8:]) < 0.6 * sum(losses[:8]), losses
'''

FILES = {
    "pyproject.toml": PYPROJECT,
    "README.md": README,
    "{package}/__init__.py": INIT,
    "{package}/config.py": CONFIG,
    "{package}/networks.py": NETWORKS,
    "{package}/plugin.py": PLUGIN,
    "tests/test_{package}.py": TESTS,
}

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,40}$")


def write_plugin(name: str, folder: Path) -> Path:
    """Write the plugin ``name`` (distribution ``pcgen-NAME``, package ``pcgen_NAME``) into ``folder``."""
    if not NAME.match(name):
        raise TemplateError(f"plugin name {name!r} must start with a lower-case letter and hold only a-z, 0-9, '-', '_'")
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise TemplateError(f"{folder} exists and is not empty; choose another --dir")
    package = "pcgen_" + name.replace("-", "_")
    values = {
        "name": name, "package": package, "dist": "pcgen-" + name.replace("_", "-"), "contract": CONTRACT_VERSION,
        "cls": "".join(part.capitalize() for part in re.split(r"[-_]", name)),
    }
    for path, text in FILES.items():
        target = folder / path.format(package=package)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(Template(text).substitute(values))
    return folder
