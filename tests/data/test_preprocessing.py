"""Feature scaling: fitted on real particles, padding zero, log features, checkpoint round trip."""

from __future__ import annotations

import pytest
import torch

from pcgen.data.preprocessing import FeatureScaler


def sample() -> tuple[torch.Tensor, torch.Tensor]:
    mask = torch.ones(50, 6, dtype=torch.bool)
    mask[:, 4:] = False
    x = torch.stack([torch.randn(50, 6), torch.rand(50, 6).pow(4) * 100 + 1e-3], dim=-1)
    return x * mask.unsqueeze(-1), mask


@pytest.mark.parametrize("kind", ["minmax", "standard"])
def test_log_features_round_trip_and_padding_stays_zero(kind: str) -> None:
    x, mask = sample()
    scaler = FeatureScaler(kind, log_features=(1,)).fit(x, mask)
    z = scaler.transform(x, mask)
    assert (z[~mask] == 0).all()
    assert torch.allclose(scaler.inverse(z, mask), x, rtol=1e-4, atol=1e-5)
    logged = x[..., 1][mask].log()
    if kind == "standard":
        assert z[..., 1][mask].mean().abs() < 1e-4  # standardised in log space
        assert torch.allclose(scaler.shift[1], logged.mean(), atol=1e-5)
    else:
        assert z[..., 1][mask].min() == pytest.approx(-1) and z[..., 1][mask].max() == pytest.approx(1)


def test_padding_does_not_change_the_fit_and_inverse_is_positive_for_log_features() -> None:
    x, mask = sample()
    garbage = x + 1e3 * (~mask).unsqueeze(-1)
    a = FeatureScaler("standard", (1,)).fit(x, mask)
    b = FeatureScaler("standard", (1,)).fit(garbage, mask)
    assert torch.equal(a.shift, b.shift) and torch.equal(a.scale, b.scale)
    wild = torch.randn(50, 6, 2) * 10
    assert (a.inverse(wild, mask)[..., 1][mask] > 0).all()


def test_state_dict_round_trip_keeps_the_log_features() -> None:
    x, mask = sample()
    scaler = FeatureScaler("minmax", (1,)).fit(x, mask)
    again = FeatureScaler.from_state_dict(scaler.state_dict())
    assert again.log_features == (1,)
    assert torch.equal(again.transform(x, mask), scaler.transform(x, mask))
    old_style = {k: v for k, v in scaler.state_dict().items() if k != "log_features"}
    assert FeatureScaler.from_state_dict(old_style).log_features == ()
