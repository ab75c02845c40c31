"""EPiC blocks (pcgen.nn.epic) and the EPiC-FM flow-matching model."""

from __future__ import annotations

import pytest
import torch

from pcgen import Batch, DataInfo
from pcgen.data.multiplicity import jet_condition, mask_for
from pcgen.nn import EPiCNetwork, sinusoidal_time_embedding

INFO = DataInfo(30, ("eta_rel", "phi_rel", "pt_rel"))


def clouds(n: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    mask = mask_for(torch.tensor([0, 1, 7, n, n - 3]), n)
    return torch.randn(5, n, 3) * mask.unsqueeze(-1), mask


@pytest.mark.parametrize("input_skip", [False, True])
def test_epic_network_ignores_padding_and_is_permutation_equivariant(input_skip: bool) -> None:
    torch.manual_seed(0)
    net = EPiCNetwork(3, 3, hidden=16, global_dim=4, layers=2, context_dim=1, input_skip=input_skip).eval()
    x, mask = clouds()
    cond = jet_condition(mask)
    garbage = x.clone()
    garbage[~mask] = float("nan")
    out, g = net(x, mask, cond)
    out2, g2 = net(garbage, mask, cond)
    assert torch.isfinite(out).all() and torch.isfinite(g).all()
    assert torch.equal(out, out2) and torch.equal(g, g2)
    assert (out[~mask] == 0).all()
    perm = torch.randperm(30)
    out3, g3 = net(x[:, perm], mask[:, perm], cond)
    assert torch.allclose(out3, out[:, perm], atol=1e-5) and torch.allclose(g3, g, atol=1e-5)


@pytest.mark.parametrize("weight_norm", [False, True])
def test_epic_layer_equals_its_concatenated_form(weight_norm: bool) -> None:
    """The layer applies the per-cloud columns of its weights once per cloud (no concatenation over the
    points); the result must be that of the linear layers on the concatenated inputs."""
    from pcgen.nn import EPiCLayer

    torch.manual_seed(1)
    layer = EPiCLayer(16, 4, context_dim=3, weight_norm=weight_norm).eval()
    mask = clouds()[1]
    x = torch.randn(5, 30, 16) * mask.unsqueeze(-1)
    g, context = torch.randn(5, 4), torch.randn(5, 3)
    out, g_out = layer(x, g, mask, context)

    def act(h: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.leaky_relu(h, 0.01)

    def per_point(h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return torch.cat([h, c.unsqueeze(1).expand(-1, h.shape[1], -1)], dim=-1)

    count = mask.sum(1, keepdim=True).clamp_min(1)
    pooled = torch.cat([x.sum(1) / count, 1e-2 * x.sum(1)], dim=-1)
    h = act(layer.global1(torch.cat([pooled, g, context], dim=-1)))
    g_ref = act(layer.global2(torch.cat([h, context], dim=-1)) + g)
    h = act(layer.local1(per_point(x, torch.cat([g_ref, context], dim=-1))))
    x_ref = act(layer.local2(per_point(h, context)) + x) * mask.unsqueeze(-1)
    torch.testing.assert_close(g_out, g_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out, x_ref, rtol=1e-5, atol=1e-6)


def test_epic_network_checks_its_context() -> None:
    net = EPiCNetwork(3, 3, hidden=8, global_dim=4, layers=1, context_dim=2)
    x, mask = clouds()
    with pytest.raises(ValueError, match=r"context must be \(B, 2\)"):
        net(x, mask, jet_condition(mask))


def test_time_embedding_shape_and_range() -> None:
    emb = sinusoidal_time_embedding(torch.tensor([0.0, 0.5, 1.0]), 4)
    assert emb.shape == (3, 8)
    assert torch.allclose(emb[0, :4], torch.ones(4)) and torch.allclose(emb[0, 4:], torch.zeros(4))
    assert not torch.allclose(emb[1], emb[2])


fm = pytest.importorskip("pcgen_epic_fm.networks")
from pcgen_epic_fm.config import EPiCFMConfig  # noqa: E402

SMALL = {"hidden": 16, "global_dim": 4, "layers": 2, "frequencies": 4}


def small_model(**extra: object) -> "fm.EPiCFlowMatching":
    torch.manual_seed(0)
    return fm.EPiCFlowMatching(EPiCFMConfig(**{**SMALL, **extra}), INFO)


@pytest.mark.parametrize("time_input", ["every_layer", "input", "input_embedding"])
def test_the_velocity_ignores_padding_wherever_time_enters(time_input: str) -> None:
    model = small_model(time_input=time_input).eval()
    x, mask = clouds()
    garbage = x.clone()
    garbage[~mask] = float("nan")
    t, cond = torch.rand(5), jet_condition(mask)
    out, out2 = model.velocity(x, t, mask, cond), model.velocity(garbage, t, mask, cond)
    assert torch.isfinite(out).all() and torch.equal(out, out2) and (out[~mask] == 0).all()
    assert not torch.allclose(out, model.velocity(x, t.flip(0), mask, cond))  # time reaches the output


def test_time_enters_once_at_the_input_with_fewer_parameters() -> None:
    sizes = {t: sum(p.numel() for p in small_model(time_input=t).velocity.parameters())
             for t in ("every_layer", "input", "input_embedding")}
    assert sizes["input"] < sizes["input_embedding"] < sizes["every_layer"]


def test_flow_matching_loss_ignores_padding() -> None:
    model = small_model()
    x, mask = clouds()
    garbage = x + 100 * (~mask).unsqueeze(-1)
    losses = []
    for data in (x, garbage):
        torch.manual_seed(1)
        losses.append(model.training_losses(Batch(data, mask, jet_condition(mask)), 0)["flow_matching"])
    assert torch.equal(losses[0], losses[1])


class ConstantField(torch.nn.Module):
    """A velocity field equal to ``c`` everywhere: every solver must move a point by exactly ``c``."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, self.c) * mask.unsqueeze(-1)


@pytest.mark.parametrize("variant", fm.SOLVERS)
@pytest.mark.parametrize("grid", ["uniform", "cosine"])
def test_every_solver_integrates_from_noise_at_t0_to_data_at_t1(variant: str, grid: str) -> None:
    model = small_model(solver_steps=7, time_grid=grid)
    model.ema = ConstantField(0.75)
    model.select_variant(variant)
    _, mask = clouds()
    torch.manual_seed(3)
    x0 = torch.randn(*mask.shape, 3) * mask.unsqueeze(-1)
    torch.manual_seed(3)
    x1 = model.sample(mask, jet_condition(mask))
    assert torch.allclose(x1[mask], x0[mask] + 0.75, atol=1e-5)
    assert (x1[~mask] == 0).all()


def test_time_grids_run_from_zero_to_one() -> None:
    for grid in ("uniform", "cosine"):
        times = small_model(solver_steps=9, time_grid=grid).time_grid(torch.device("cpu"), torch.float32)
        assert len(times) == 10 and times[0] == 0 and abs(float(times[-1]) - 1) < 1e-6
        assert (times.diff() > 0).all()


def test_ema_follows_the_trained_weights_with_a_warm_up() -> None:
    model = small_model(ema_decay=0.999)
    assert model.ema_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    live = next(model.velocity.parameters())
    with torch.no_grad():
        live.add_(1.0)
    before = next(model.ema.parameters()).clone()
    x, mask = clouds()
    model.after_step(Batch(x, mask, jet_condition(mask)), 0)
    after = next(model.ema.parameters())
    assert torch.allclose(after, before + 0.9 * (live - before), atol=1e-6)
    assert int(model.ema_updates) == 1
    assert not any(p.requires_grad for p in model.ema.parameters())


def test_training_lowers_the_flow_matching_loss() -> None:
    model = small_model()
    torch.manual_seed(0)
    mask = mask_for(torch.randint(10, 31, (128,)), 30)
    x = (torch.randn(128, 30, 3) * 0.3 + torch.tensor([0.5, -0.5, 1.0])) * mask.unsqueeze(-1)
    batch = Batch(x, mask, jet_condition(mask))
    opt = torch.optim.Adam(model.velocity.parameters(), 3e-3)

    def held_out() -> float:
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(99)
            return float(sum(model.training_losses(batch, 0)["flow_matching"] for _ in range(8)) / 8)

    start = held_out()
    for step in range(150):
        loss = model.training_losses(batch, step)["flow_matching"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert held_out() < 0.8 * start
