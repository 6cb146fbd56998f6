"""Mixed loss: CE + focal + sparse regularization on sharpened logits (METHODS.md §3).

``L = w_ce * CE(ẑ) + w_focal * FL_gamma(ẑ) + lambda_e * R(ẑ)`` with ``ẑ = z / (tau * ||z||)``
and ``R(ẑ) = mean_i sum_k clamp(softmax(ẑ)_ik, 1e-7, 1)^p``. ``lambda_e = min(cap, lambda0 *
rho^floor(e / freq))`` for 0-based epoch ``e``. Targets may be hard labels (B,) or distributions
(B, C) (FERPlus votes); for one-hot targets both forms give the same value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fer_live.errors import ConfigError


def sharpen(logits: torch.Tensor, tau: float, normalize: bool = True) -> torch.Tensor:
    """``ẑ = z / (tau * ||z||_2)`` per row (``normalize=False``: ``z / tau``)."""
    if normalize:
        logits = logits / logits.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return logits / tau


def _as_distribution(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    if targets.dim() == 1:
        return F.one_hot(targets.long(), num_classes).to(torch.float32)
    return targets.to(torch.float32)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean CE of ``logits`` (B, C) against labels (B,) or distributions (B, C)."""
    dist = _as_distribution(targets, logits.shape[1])
    return -(dist * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 0.5) -> torch.Tensor:
    """Mean ``-(1 - p_y)^gamma log p_y`` (no alpha); soft targets weight each class's term."""
    dist = _as_distribution(targets, logits.shape[1])
    log_p = F.log_softmax(logits.float(), dim=1)
    weight = (1.0 - log_p.exp()).clamp_min(0.0).pow(gamma)
    return -(dist * weight * log_p).sum(dim=1).mean()


def sparse_regularizer(logits: torch.Tensor, p: float = 0.1) -> torch.Tensor:
    """``mean_i sum_k clamp(softmax(z)_ik, 1e-7, 1)^p`` (the lp term, p <= 1)."""
    probs = F.softmax(logits.float(), dim=1).clamp(1e-7, 1.0)
    return probs.pow(p).sum(dim=1).mean()


@dataclass(frozen=True)
class MixedLossConfig:
    """Weights and shape of the mixed loss.

    Attributes:
        w_ce: Weight of cross-entropy (omega1).
        w_focal: Weight of focal loss (omega2).
        lambda0: Initial weight of the sparse term (omega3 at epoch 0).
        rho: Growth of lambda every ``freq`` epochs (1 = constant).
        freq: Epochs between lambda updates.
        lambda_cap: Upper bound of lambda.
        tau: Sharpening temperature.
        p: Exponent of the sparse term (p <= 1).
        gamma: Focal exponent.
        normalize: L2-normalize the logits before dividing by tau.
    """

    w_ce: float = 1.0
    w_focal: float = 1.0
    lambda0: float = 0.1
    rho: float = 1.02
    freq: int = 1
    lambda_cap: float = 1.0
    tau: float = 0.5
    p: float = 0.1
    gamma: float = 0.5
    normalize: bool = True

    def __post_init__(self) -> None:
        if self.tau <= 0 or not 0 < self.p <= 1 or self.freq < 1:
            raise ConfigError(f"mixed loss needs tau > 0, 0 < p <= 1, freq >= 1; got {self}")
        if min(self.w_ce, self.w_focal, self.lambda0) < 0:
            raise ConfigError("mixed loss weights must be >= 0")

    def lambda_at(self, epoch: int) -> float:
        """The sparse weight used during 0-based ``epoch``."""
        return min(self.lambda_cap, self.lambda0 * self.rho ** (epoch // self.freq))


PROFILES: dict[str, MixedLossConfig] = {
    "paper": MixedLossConfig(w_ce=0.0, w_focal=1.0, lambda0=0.1, rho=1.0),
    "recommended": MixedLossConfig(),
}


class MixedLoss(nn.Module):
    """The mixed loss as a module; call ``set_epoch`` at the start of every epoch.

    Args:
        config: Weights and shape (see ``PROFILES``).
    """

    def __init__(self, config: MixedLossConfig | None = None) -> None:
        super().__init__()
        self.config = config or PROFILES["recommended"]
        self.lam = self.config.lambda_at(0)

    def set_epoch(self, epoch: int) -> None:
        self.lam = self.config.lambda_at(epoch)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        z = sharpen(logits, cfg.tau, cfg.normalize)
        loss = z.new_zeros(())
        if cfg.w_ce:
            loss = loss + cfg.w_ce * cross_entropy(z, targets)
        if cfg.w_focal:
            loss = loss + cfg.w_focal * focal_loss(z, targets, cfg.gamma)
        if self.lam:
            loss = loss + self.lam * sparse_regularizer(z, cfg.p)
        return loss


def make_loss(name: str) -> nn.Module:
    """``ce`` (soft-target cross-entropy), a mixed-loss profile, or free weights as JSON.

    Args:
        name: ``ce``, ``paper``, ``recommended``, or a JSON object of ``MixedLossConfig``
            fields, e.g. ``'{"w_ce": 0.5, "w_focal": 1, "lambda0": 0.2, "tau": 0.2}'``.

    Raises:
        ConfigError: Unknown name or bad JSON fields.
    """
    if name == "ce":
        return _CrossEntropy()
    if name in PROFILES:
        return MixedLoss(PROFILES[name])
    if name.lstrip().startswith("{"):
        try:
            return MixedLoss(MixedLossConfig(**json.loads(name)))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad mixed loss settings {name}: {exc}") from None
    raise ConfigError(f"unknown loss {name!r}; valid: ce, {', '.join(PROFILES)} or JSON")


class _CrossEntropy(nn.Module):
    def set_epoch(self, epoch: int) -> None:
        return None

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return cross_entropy(logits, targets)
