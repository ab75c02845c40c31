"""Unit tests of the $name networks (pcgen's model contract runs too: see pyproject's addopts)."""

import torch
from pcgen import Batch, DataInfo

from pcgen_plugin_name.config import PluginNameConfig
from pcgen_plugin_name.plugin import SPEC, build

INFO = DataInfo(max_particles=12, feature_names=("eta_rel", "phi_rel", "pt_rel"))


def batch(num: int = 16) -> Batch:
    """Clouds of 2 to 12 particles, each feature near 2 (far from the noise at 0)."""
    mask = torch.arange(12)[None] < torch.randint(2, 13, (num, 1))
    x = (2 + 0.1 * torch.randn(num, 12, 3)) * mask.unsqueeze(-1)
    return Batch(x, mask, mask.float().mean(1, keepdim=True))


def test_padded_particles_do_not_change_the_velocity_of_real_ones() -> None:
    torch.manual_seed(0)
    model, b = build(PluginNameConfig(**SPEC.quick_config), INFO), batch()
    t = torch.rand(16)
    garbage = b.x + 100 * torch.randn_like(b.x) * (~b.mask).unsqueeze(-1)
    a, c = model.velocity(b.x, t, b.mask, b.cond), model.velocity(garbage, t, b.mask, b.cond)
    assert torch.allclose(a[b.mask], c[b.mask], atol=1e-5)


def test_the_flow_matching_loss_falls_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    model, b = build(PluginNameConfig(**SPEC.quick_config), INFO), batch()
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
