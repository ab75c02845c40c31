"""Observable matching (``recipe.match``): the differentiable jet mass and W1 against known values, that
padded particles never count, config errors, and that the adversarial recipe uses it when asked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_refused_before_run_folder
from pcgen import AdversarialModel
from pcgen.config import ConfigError
from pcgen.data.jetfeatures import relative_jet_mass
from pcgen.data.preprocessing import FeatureScaler
from pcgen.nn import apply_mask, jet_mass_over_pt
from pcgen.train.adversarial import AdversarialConfig, AdversarialRecipe
from pcgen.train.observable_matching import ObservableMatching, wasserstein_1d
from pcgen.train.recipe import Batch
from scipy.stats import wasserstein_distance
from torch import Tensor
from toygan import Critic, Generator

FEATURES = ("eta_rel", "phi_rel", "pt_rel")


def jets(clouds: int = 64, particles: int = 12, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Physical jets: angles ~0.1, positive pt_rel, every cloud at least 3 real particles."""
    g = torch.Generator().manual_seed(seed)
    angles = 0.1 * torch.randn(clouds, particles, 2, generator=g)
    pt = torch.rand(clouds, particles, 1, generator=g) * 0.2 + 1e-3
    counts = torch.randint(3, particles + 1, (clouds,), generator=g)
    mask = torch.arange(particles) < counts[:, None]
    return apply_mask(torch.cat([angles, pt], dim=-1), mask), mask


def scaler_for(x: Tensor, mask: Tensor, logs: tuple[int, ...] = (2,)) -> FeatureScaler:
    return FeatureScaler("minmax", log_features=logs).fit(x, mask)


def test_the_torch_jet_mass_is_the_numpy_one() -> None:
    x, mask = jets()
    expected = relative_jet_mass(x.numpy(), mask.numpy())
    np.testing.assert_allclose(jet_mass_over_pt(x.double(), mask).numpy(), expected, rtol=1e-6)


def test_w1_of_equal_samples_is_scipys() -> None:
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(200, generator=g), 2 + torch.rand(200, generator=g)
    assert wasserstein_1d(a, b).item() == pytest.approx(wasserstein_distance(a.numpy(), b.numpy()), rel=1e-5)


def test_to_physical_is_the_inverse_inside_the_range_and_passes_gradients() -> None:
    x, mask = jets()
    scaler = scaler_for(x, mask)
    model = scaler.transform(x, mask).requires_grad_(True)
    physical = apply_mask(scaler.to_physical(model), mask)
    torch.testing.assert_close(physical, scaler.inverse(model.detach(), mask))
    physical.sum().backward()
    assert model.grad is not None and (model.grad[mask] != 0).all()


def test_the_loss_is_zero_on_the_data_and_ignores_padding() -> None:
    x, mask = jets()
    scaler = scaler_for(x, mask)
    real = scaler.transform(x, mask)
    matching = ObservableMatching({"mass": 1.0, "pt_rel": 2.0}, FEATURES, scaler)
    assert all(v.item() == pytest.approx(0.0, abs=1e-6) for v in matching.losses(real, real, mask).values())
    fake = scaler.transform(jets(seed=5)[0], mask)
    terms = matching.losses(real, fake, mask)
    assert set(terms) == {"match/mass", "match/pt_rel"} and all(v > 0 for v in terms.values())
    junk = fake.clone()
    junk[~mask] = 50.0
    other = real.clone()
    other[~mask] = -7.0
    moved = matching.losses(other, junk, mask)
    for name in terms:
        torch.testing.assert_close(moved[name], terms[name])


def test_the_terms_are_normalised_and_weighted() -> None:
    """pt_rel's term is W1 of the real particles' pt_rel values over their standard deviation, times the weight."""
    x, mask = jets()
    y = jets(seed=3)[0]
    scaler = scaler_for(x, mask, logs=())
    term = ObservableMatching({"pt_rel": 3.0}, FEATURES, scaler).losses(
        scaler.transform(x, mask), scaler.transform(y, mask), mask)["match/pt_rel"]
    real, fake = x[..., 2][mask], y[..., 2][mask]
    expected = 3.0 * wasserstein_distance(fake.numpy(), real.numpy()) / real.std().item()
    assert term.item() == pytest.approx(expected, rel=1e-4)


def test_minimising_the_mass_term_moves_generated_jets_to_the_data() -> None:
    x, mask = jets()
    scaler = scaler_for(x, mask)
    real = scaler.transform(x, mask)
    fake = scaler.transform(jets(seed=7)[0] * torch.tensor([2.0, 2.0, 1.0]), mask).requires_grad_(True)
    matching = ObservableMatching({"mass": 1.0}, FEATURES, scaler)
    opt = torch.optim.Adam([fake], lr=1e-2)
    start = matching.losses(real, fake, mask)["match/mass"].item()
    for _ in range(100):
        opt.zero_grad()
        matching.losses(real, fake, mask)["match/mass"].backward()
        opt.step()
    assert matching.losses(real, fake, mask)["match/mass"].item() < 0.3 * start


@pytest.mark.parametrize(("weights", "features", "words"), [
    ({"masss": 1.0}, FEATURES, "neither 'mass' nor a feature"),
    ({"mass": 1.0}, ("x", "y", "energy"), "needs the features"),
    ({"pt_rel": -1.0}, FEATURES, ">= 0"),
])
def test_bad_settings_are_refused_with_the_reason(weights: dict[str, float], features: tuple[str, ...],
                                                  words: str) -> None:
    x, mask = jets()
    with pytest.raises(ConfigError, match=words):
        ObservableMatching(weights, features, scaler_for(x, mask))


def test_the_adversarial_recipe_adds_the_terms_to_the_generators_loss() -> None:
    x, mask = jets()
    scaler = scaler_for(x, mask)
    batch = Batch(scaler.transform(x, mask), mask, torch.zeros(len(x), 1))
    torch.manual_seed(0)
    config = AdversarialConfig(match={"mass": 1.0}, warmup_steps=0)
    recipe = AdversarialRecipe(AdversarialModel(Generator(), Critic()), config)
    with pytest.raises(RuntimeError, match="bind_data"):
        recipe.training_step(batch, 0, 0.0)
    recipe.bind_data(FEATURES, scaler)
    logs = recipe.training_step(batch, 1, 0.0)
    assert float(logs["loss/match/mass"]) > 0
    plain = AdversarialRecipe(AdversarialModel(Generator(), Critic()), AdversarialConfig(warmup_steps=0))
    plain.bind_data(FEATURES, scaler)
    assert not any(k.startswith("loss/match") for k in plain.training_step(batch, 0, 0.0))


def test_a_run_with_a_bad_observable_stops_before_making_its_folder(registry, tmp_path: Path) -> None:
    assert_refused_before_run_folder(registry, tmp_path, "recipe.match={energy = 1.0}", "'recipe.match' names 'energy'")
