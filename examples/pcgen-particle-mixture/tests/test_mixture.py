"""The example plugin's own tests; `pytest --pcgen-model particle-mixture` adds pcgen's contract."""

import pytest
import torch
from pcgen import DataInfo
from pcgen.testing import toy_jets
from pcgen_particle_mixture.model import MixtureConfig
from pcgen_particle_mixture.plugin import build
from pydantic import ValidationError


def test_padded_particles_do_not_change_the_likelihood() -> None:
    torch.manual_seed(0)
    model = build(MixtureConfig(components=4), DataInfo(10, ("a", "b", "c")))
    mask = torch.arange(10)[None] < torch.tensor([[3], [10]])
    x = torch.randn(2, 10, 3) * mask.unsqueeze(-1)
    garbage = x + 100 * (~mask).unsqueeze(-1)
    cond = mask.float().mean(1, keepdim=True)
    assert torch.allclose(model.log_prob(x, mask, cond), model.log_prob(garbage, mask, cond))


def test_maximum_likelihood_fits_the_mean_of_toy_particles() -> None:
    torch.manual_seed(0)
    jets = toy_jets(200, 20, seed=0)
    x, mask = torch.tensor(jets.points), torch.tensor(jets.mask)
    model = build(MixtureConfig(components=1), DataInfo(20, ("eta_rel", "phi_rel", "pt_rel")))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        loss = -model.log_prob(x, mask, mask.float().mean(1, keepdim=True)).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.allclose(model.means[0], x[mask].mean(0), atol=0.01)


def test_a_misspelt_setting_is_an_error_that_names_it() -> None:
    with pytest.raises(ValidationError, match="componnets"):
        MixtureConfig(componnets=4)
