"""Mixed loss (METHODS.md §3) against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from fer_live.errors import ConfigError
from fer_live.trainer.methods.mixed_loss import (
    PROFILES,
    MixedLoss,
    MixedLossConfig,
    cross_entropy,
    focal_loss,
    make_loss,
    sharpen,
    sparse_regularizer,
)

# z = [3, 4], ||z|| = 5, tau = 0.5 -> ẑ = [1.2, 1.6]; softmax = [0.401312, 0.598688], y = 1.
Z = torch.tensor([[3.0, 4.0]])
Y = torch.tensor([1])
CE, FL, SR = 0.5130152524, 0.3249911497, 1.8627346352


def test_sharpen_normalizes_then_divides_by_tau() -> None:
    torch.testing.assert_close(sharpen(Z, 0.5), torch.tensor([[1.2, 1.6]]))
    torch.testing.assert_close(sharpen(Z, 0.5, normalize=False), torch.tensor([[6.0, 8.0]]))


def test_terms_hand_computed() -> None:
    zhat = sharpen(Z, 0.5)
    assert float(cross_entropy(zhat, Y)) == pytest.approx(CE, abs=1e-6)
    assert float(focal_loss(zhat, Y, 0.5)) == pytest.approx(FL, abs=1e-6)
    assert float(sparse_regularizer(zhat, 0.1)) == pytest.approx(SR, abs=1e-6)
    # soft one-hot targets give the same values as hard labels
    assert float(focal_loss(zhat, torch.tensor([[0.0, 1.0]]))) == pytest.approx(FL, abs=1e-6)


@pytest.mark.parametrize(
    ("profile", "epoch", "expected"),
    [
        ("recommended", 0, CE + FL + 0.1 * SR),
        ("recommended", 10, CE + FL + 0.1 * 1.02**10 * SR),
        ("paper", 0, FL + 0.1 * SR),
        ("paper", 40, FL + 0.1 * SR),  # constant lambda, no CE
    ],
)
def test_mixed_loss_profiles(profile: str, epoch: int, expected: float) -> None:
    loss = MixedLoss(PROFILES[profile])
    loss.set_epoch(epoch)
    assert float(loss(Z, Y)) == pytest.approx(expected, abs=1e-5)


def test_batch_mean_and_lambda_schedule() -> None:
    # second sample z = [0, -2], y = 0: ẑ = [0, -2], CE = -log(0.880797) = 0.126928
    z = torch.tensor([[3.0, 4.0], [0.0, -2.0]])
    assert float(cross_entropy(sharpen(z, 0.5), torch.tensor([1, 0]))) == pytest.approx(
        (CE + 0.1269280110) / 2, abs=1e-6
    )
    cfg = MixedLossConfig(lambda0=0.5, rho=2.0, freq=5, lambda_cap=1.0)
    assert [cfg.lambda_at(e) for e in (0, 4, 5, 10)] == [0.5, 0.5, 1.0, 1.0]


def test_sharpening_bounds_confidence_for_8_classes() -> None:
    # spec §3.1: with tau = 0.5 the largest softmax probability for C = 8 is 0.548
    z = torch.randn(2000, 8) * torch.rand(2000, 1) * 50
    z[0] = torch.tensor([100.0] + [-100.0 / 7] * 7)
    top = torch.softmax(sharpen(z, 0.5), dim=1).max(dim=1).values
    assert float(top.max()) <= 0.549
    assert float(top.max()) > 0.54


def test_make_loss_and_bad_config() -> None:
    assert float(make_loss("ce")(Z, Y)) == pytest.approx(-torch.log_softmax(Z, 1)[0, 1].item())
    with pytest.raises(ConfigError, match="unknown loss"):
        make_loss("gce")
    custom = make_loss('{"w_ce": 2.0, "w_focal": 0.0, "lambda0": 0.5, "rho": 1.0}')
    assert float(custom(Z, Y)) == pytest.approx(2 * CE + 0.5 * SR, abs=1e-5)
    with pytest.raises(ConfigError, match="bad mixed loss"):
        make_loss('{"omega": 1}')
    with pytest.raises(ConfigError, match="tau > 0"):
        MixedLossConfig(p=1.5)
