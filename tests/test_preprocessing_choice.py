"""`data.scaling` and `data.log_features` choose a run's particle preprocessing over the model's default."""

from __future__ import annotations

import pytest
import torch
from conftest import quick_overrides
from pcgen.config import load_config
from pcgen.plugins import Registry
from pcgen.train.data_prep import load_clouds, prepare


def prepared(registry: Registry, *extra: str):  # noqa: ANN201 - PreparedData
    resolved = load_config(None, [*quick_overrides(5), *extra], registry, plugin="igapt")
    clouds = load_clouds(resolved, registry, progress=False)
    return prepare(clouds, resolved, registry.model("igapt"), registry.kind_of(clouds))


def test_the_models_default_applies_without_a_choice(registry: Registry) -> None:
    data = prepared(registry)
    assert data.scaler.kind == registry.model("igapt").preprocessing
    assert data.scaler.log_features == ()


def test_log_pt_and_standard_scaling_chosen_per_run(registry: Registry) -> None:
    data = prepared(registry, 'data.log_features=["pt_rel"]', 'data.scaling="standard"')
    assert data.scaler.kind == "standard" and data.scaler.log_features == (2,)
    real = data.x[data.mask]
    # log(pt_rel), standardised: mean 0, std 1 over real particles; padding stays zero
    assert real[:, 2].mean().abs() < 1e-4 and (real[:, 2].std() - 1).abs() < 1e-2
    assert torch.all(data.x[~data.mask] == 0)
    back = data.scaler.inverse(data.x, data.mask)
    torch.testing.assert_close(back[data.mask], torch.from_numpy(data.train.points).float()[data.mask],
                               rtol=1e-4, atol=1e-6)


def test_unknown_log_feature_is_named(registry: Registry) -> None:
    with pytest.raises(ValueError, match="data.log_features names pt, which the data does not have; its features are"):
        prepared(registry, 'data.log_features=["pt"]')


def test_feature_spread_stretches_the_scaled_features_and_inverts(registry: Registry) -> None:
    base = prepared(registry, 'data.scaling="standard"')
    wide = prepared(registry, 'data.scaling="standard"', "data.feature_spread=5")
    torch.testing.assert_close(wide.x, 5 * base.x, rtol=1e-5, atol=1e-6)
    assert wide.x[wide.mask].std(dim=0).sub(5).abs().max() < 0.05
    back = wide.scaler.inverse(wide.x, wide.mask)
    torch.testing.assert_close(back[wide.mask], torch.from_numpy(wide.train.points).float()[wide.mask],
                               rtol=1e-4, atol=1e-6)
