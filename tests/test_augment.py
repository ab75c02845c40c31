"""Random reflections and rotations (``train.reflect``, ``train.rotate``): exact in physical units, padding
untouched, reproducible, and refused with a message for features that do not exist or are taken the logarithm of."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import assert_refused_before_run_folder, quick_overrides

from pcgen.config import ConfigError, load_config
from pcgen.data.multiplicity import jet_condition, mask_for
from pcgen.data.preprocessing import FeatureScaler
from pcgen.nn import apply_mask
from pcgen.runtime.checkpoint import load_checkpoint
from pcgen.train.augment import RandomReflection, RandomRotation
from pcgen.train.recipe import Batch
from pcgen.train.runner import execute

NAMES = ("eta_rel", "phi_rel", "pt_rel")


def clouds(kind: str) -> tuple[Batch, FeatureScaler]:
    gen = torch.Generator().manual_seed(0)
    mask = mask_for(torch.randint(1, 9, (64,), generator=gen), 8)
    physical = torch.rand(64, 8, 3, generator=gen) * torch.tensor([0.8, 0.6, 0.3]) + torch.tensor([-0.3, -0.1, 0.01])
    physical = apply_mask(physical, mask)
    scaler = FeatureScaler(kind, log_features=(2,)).fit(physical, mask)  # an off-centre range: the shift matters
    return Batch(scaler.transform(physical, mask), mask, jet_condition(mask)), scaler


@pytest.mark.parametrize("kind", ["minmax", "standard"])
def test_a_reflection_flips_the_sign_in_physical_units_and_leaves_the_rest(kind: str) -> None:
    batch, scaler = clouds(kind)
    reflection = RandomReflection(["phi_rel"], NAMES, scaler, seed=0)
    flip = torch.zeros(64, 1, dtype=torch.bool)
    flip[::2] = True
    out = reflection.apply(batch, flip)

    def physical(x: torch.Tensor) -> torch.Tensor:  # the scaler's affine map without its clamp to the range
        return x * scaler.scale + scaler.shift

    before, after = physical(batch.x), physical(out.x)
    real = batch.mask.bool()
    assert torch.allclose(after[::2, :, 1][real[::2]], -before[::2, :, 1][real[::2]], atol=1e-6)
    assert torch.equal(out.x[1::2], batch.x[1::2])  # clouds not drawn keep every value
    assert torch.equal(out.x[..., [0, 2]], batch.x[..., [0, 2]])  # other features untouched
    assert torch.all(out.x[~real] == 0)  # padded particles stay exactly zero
    assert torch.equal(out.mask, batch.mask) and torch.equal(out.cond, batch.cond)


DRAWS = {"reflection": (RandomReflection, "signs"), "rotation": (RandomRotation, "angles")}


@pytest.mark.parametrize("kind", DRAWS)
def test_the_draws_depend_on_seed_and_step_only(kind: str) -> None:
    _, scaler = clouds("standard")
    augmentation, method = DRAWS[kind]

    def draw(seed: int, step: int) -> torch.Tensor:
        return getattr(augmentation(["eta_rel", "phi_rel"], NAMES, scaler, seed=seed), method)(4000, step)

    torch.manual_seed(0)
    first = draw(3, step=7)
    torch.manual_seed(1)  # torch's global generator plays no part
    assert torch.equal(first, draw(3, step=7))
    assert not torch.equal(first, draw(3, step=8))
    assert not torch.equal(first, draw(4, step=7))


def test_reflections_are_fair_coins_and_angles_cover_the_circle() -> None:
    _, scaler = clouds("standard")
    signs = RandomReflection(["eta_rel", "phi_rel"], NAMES, scaler, seed=3).signs(4000, step=7)
    assert signs.shape == (4000, 2) and 0.47 < signs.float().mean() < 0.53
    angles = RandomRotation(["eta_rel", "phi_rel"], NAMES, scaler, seed=3).angles(4000, step=7)
    counts = torch.histc(angles, bins=4, min=0, max=2 * math.pi)
    assert angles.shape == (4000,) and angles.min() >= 0 and angles.max() < 2 * math.pi and counts.min() > 900


def test_unknown_or_logarithmic_features_are_refused_with_a_message() -> None:
    _, scaler = clouds("standard")
    with pytest.raises(ConfigError, match=r"'train.reflect' names 'eta'.*eta_rel, phi_rel, pt_rel"):
        RandomReflection(["eta"], NAMES, scaler, seed=0)
    with pytest.raises(ConfigError, match=r"'pt_rel', which this run takes the logarithm of"):
        RandomReflection(["pt_rel"], NAMES, scaler, seed=0)


def run(registry, tmp_path: Path, name: str, *extra: str) -> dict[str, torch.Tensor]:
    cfg = load_config(None, quick_overrides(4) + [f'name="{name}"', f'run_dir="{tmp_path}"', *extra], registry,
                      plugin="igapt")
    return load_checkpoint(execute(cfg, registry, show_progress=False, final_eval=False).run_dir)["model"]


def test_a_run_with_reflections_is_reproducible_and_trains_on_other_batches(registry, tmp_path: Path) -> None:
    reflect = 'train.reflect=["eta_rel", "phi_rel"]'
    a, b = run(registry, tmp_path, "a", reflect), run(registry, tmp_path, "b", reflect)
    assert all(torch.equal(a[k], b[k]) for k in a)
    plain = run(registry, tmp_path, "plain")
    assert not all(torch.equal(a[k], plain[k]) for k in a)


def test_a_run_with_a_bad_feature_name_stops_before_making_its_folder(registry, tmp_path: Path) -> None:
    assert_refused_before_run_folder(registry, tmp_path, 'train.reflect=["eta"]', "'train.reflect' names 'eta'")


@pytest.mark.parametrize("kind", ["minmax", "standard"])
def test_a_rotation_turns_the_plane_in_physical_units_and_leaves_the_rest(kind: str) -> None:
    batch, scaler = clouds(kind)
    rotation = RandomRotation(["eta_rel", "phi_rel"], NAMES, scaler, seed=0)
    angle = torch.linspace(0, 6, 64)
    angle[1::2] = 0.0
    out = rotation.apply(batch, angle)

    def physical(x: torch.Tensor) -> torch.Tensor:
        return x * scaler.scale + scaler.shift

    before, after = physical(batch.x), physical(out.x)
    real = batch.mask.bool()
    turned = torch.polar(torch.ones(64), angle).unsqueeze(1) * torch.complex(before[..., 0], before[..., 1])
    assert torch.allclose(after[..., 0][real], turned.real[real], atol=1e-5)
    assert torch.allclose(after[..., 1][real], turned.imag[real], atol=1e-5)
    # distances between the particles of a cloud (the angles EFPs are made of) are unchanged
    assert torch.allclose(torch.cdist(after[0, :, :2], after[0, :, :2]), torch.cdist(before[0, :, :2], before[0, :, :2]),
                          atol=1e-5)
    assert torch.allclose(out.x[1::2], batch.x[1::2], atol=1e-6)  # a zero angle changes nothing
    assert torch.equal(out.x[..., 2], batch.x[..., 2])  # pt_rel untouched
    assert torch.all(out.x[~real] == 0)  # padded particles stay exactly zero
    assert torch.equal(out.mask, batch.mask) and torch.equal(out.cond, batch.cond)


def test_a_rotation_needs_two_distinct_linear_features() -> None:
    _, scaler = clouds("standard")
    for plane in (["eta_rel"], ["eta_rel", "eta_rel"], ["eta_rel", "phi_rel", "pt_rel"]):
        with pytest.raises(ConfigError, match=r"'train.rotate' names the two features of a plane"):
            RandomRotation(plane, NAMES, scaler, seed=0)
    with pytest.raises(ConfigError, match=r"'train.rotate' names 'eta'.*eta_rel, phi_rel, pt_rel"):
        RandomRotation(["eta", "phi_rel"], NAMES, scaler, seed=0)
    with pytest.raises(ConfigError, match=r"'pt_rel', which this run takes the logarithm of"):
        RandomRotation(["eta_rel", "pt_rel"], NAMES, scaler, seed=0)


def test_a_run_with_rotations_is_reproducible_and_trains_on_other_batches(registry, tmp_path: Path) -> None:
    rotate = 'train.rotate=["eta_rel", "phi_rel"]'
    a, b = run(registry, tmp_path, "a", rotate), run(registry, tmp_path, "b", rotate)
    assert all(torch.equal(a[k], b[k]) for k in a)
    reflected = run(registry, tmp_path, "reflected", 'train.reflect=["eta_rel"]')
    both = run(registry, tmp_path, "both", rotate, 'train.reflect=["eta_rel"]')
    assert not all(torch.equal(a[k], both[k]) for k in a)
    assert not all(torch.equal(reflected[k], both[k]) for k in a)
