"""MRE: Mid-level Representation Enhancement (METHODS.md §1, ``recommended`` profile).

A mid-level branch reads the backbone's mid stage, mixes each sample's features with those of a
partner of a *different* expression at a random fraction of channels (or spatial positions, or
elements), and classifies the mixed features with the sample's own label:
``L = CE_high + lambda * mean_k CE_mid,k`` over K independent swaps.

The mid stage is the output of the block just before the backbone's last down-sampling block:
``layer3`` for ResNets (spec §0.1) and ``features[:14]`` (96 channels, stride 16) for
MobileNetV2, found by ``mid_split_index``. Inference drops the swap; the ``mode`` argument of
``MreNet.forward`` picks the high head (H), the mid head (M) or their logit sum (H+M).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from fer_live.errors import ConfigError
from fer_live.infer.card import ModelCard
from fer_live.trainer.methods.protocol import Batch, Method, Targets
from fer_live.trainer.models.base import FerNet, block_output_sides

MIX_MODES = ("channel", "spatial", "element")
INFER_MODES = ("H", "M", "H+M")


@dataclass(frozen=True)
class MreConfig:
    """MRE settings (spec §1.3).

    Attributes:
        mode: Mixing granularity: ``channel``, ``spatial`` or ``element``.
        ratio: (low, high) of the swap ratio rho ~ U(low, high), drawn per swap.
        swaps: K, the number of independent swaps per forward.
        weight: lambda, the weight of the mean mid-branch CE.
        pool: ``gap`` (the seed) or ``gmp`` (SPS).
        mask_per_sample: Draw one mask per sample instead of one per batch.
        detach_fraction: Fraction of epochs during which the mid branch input is detached.
    """

    mode: str = "channel"
    ratio: tuple[float, float] = (0.3, 0.5)
    swaps: int = 3
    weight: float = 1.0
    pool: str = "gap"
    mask_per_sample: bool = False
    detach_fraction: float = 0.35

    def __post_init__(self) -> None:
        if self.mode not in MIX_MODES or self.pool not in ("gap", "gmp"):
            raise ConfigError(f"MRE mode must be one of {MIX_MODES} and pool gap|gmp: {self}")
        if not 0 <= self.ratio[0] <= self.ratio[1] <= 1 or self.swaps < 1:
            raise ConfigError(f"MRE needs 0 <= ratio low <= high <= 1 and swaps >= 1: {self}")


def sample_partners(labels: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """For each sample a uniformly drawn partner index with a different label.

    Samples with no differently-labelled sample in the batch get themselves (left unmixed).

    Args:
        labels: Hard labels (B,).
        gen: Random generator (CPU).

    Returns:
        Partner indices (B,) int64.
    """
    differ = (labels[:, None] != labels[None, :]).float()
    has = differ.sum(dim=1) > 0
    weights = torch.where(has[:, None], differ, torch.eye(len(labels), device=labels.device))
    return torch.multinomial(weights.cpu(), 1, generator=gen).squeeze(1).to(labels.device)


def sample_mask(
    shape: tuple[int, ...], ratio: float, per_sample: bool, gen: torch.Generator | None = None
) -> torch.Tensor:
    """Boolean mask of ``shape`` = (B, ...) with each entry True with probability ``ratio``.

    With ``per_sample=False`` the mask is shared by the whole batch (first dim of size 1).
    """
    mask_shape = shape if per_sample else (1, *shape[1:])
    return torch.rand(mask_shape, generator=gen) < ratio


def mix_features(
    feats: torch.Tensor,
    partners: torch.Tensor,
    mode: str,
    ratio: float,
    per_sample: bool = False,
    gen: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace a random fraction of each sample's features with its partner's.

    Args:
        feats: ``channel``: pooled vectors (B, C); ``spatial``/``element``: maps (B, C, H, W).
        partners: Partner index per sample (B,).
        mode: Mixing granularity.
        ratio: Probability that a channel / position / element is swapped.
        per_sample: One mask per sample instead of one per batch.
        gen: Random generator (CPU).

    Returns:
        The mixed features (same shape) and the boolean mask used (broadcastable to them).
    """
    b = feats.shape[0]
    if mode == "channel":
        shape = (b, feats.shape[1])
    elif mode == "spatial":
        shape = (b, 1, feats.shape[2], feats.shape[3])
    elif mode == "element":
        shape = tuple(feats.shape)
    else:
        raise ConfigError(f"unknown MRE mode {mode!r}; valid: {', '.join(MIX_MODES)}")
    mask = sample_mask(shape, ratio, per_sample, gen).to(feats.device)
    return torch.where(mask, feats[partners], feats), mask


def mid_split_index(body: nn.Module, in_chans: int, size: int = 64) -> int:
    """Index of the backbone's last down-sampling block (the mid stage ends just before it).

    Raises:
        ConfigError: The body is not an ``nn.Sequential`` or never down-samples.
    """
    if not isinstance(body, nn.Sequential):
        raise ConfigError(f"MRE needs a Sequential backbone body, got {type(body).__name__}")
    sides = block_output_sides(body, in_chans, size)
    inputs = [size, *sides[:-1]]
    shrinking = [
        i for i, (side, before) in enumerate(zip(sides, inputs, strict=True)) if side < before
    ]
    last = shrinking[-1] if shrinking else -1
    if last <= 0:
        raise ConfigError("MRE: the backbone body never down-samples after its first block")
    return last


class MreNet(nn.Module):
    """A FerNet with an MRE mid branch.

    ``forward(x, labels)`` in training returns ``(high_logits, [mid_logits_k], embedding)``;
    in eval ``forward(x, mode=...)`` returns ``(logits, embedding)`` of inference mode ``mode``.

    Args:
        net: The backbone and high head (its ``body`` must be an ``nn.Sequential``).
        num_classes: Number of logits.
        config: MRE settings.
        in_chans: Input channels (to probe the mid stage).
    """

    def __init__(
        self, net: FerNet, num_classes: int, config: MreConfig | None = None, in_chans: int = 1
    ) -> None:
        super().__init__()
        self.config = config or MreConfig()
        self.net = net
        self.split = mid_split_index(net.body, in_chans)
        mid_channels = self._mid_channels(in_chans)
        self.mid_conv = nn.Conv2d(mid_channels, mid_channels, 1)
        self.mid_fc = nn.Linear(mid_channels, num_classes)
        self.gen: torch.Generator | None = None

    def _mid_channels(self, in_chans: int) -> int:
        with torch.no_grad():
            return int(self.net.body[: self.split](torch.zeros(1, in_chans, 64, 64)).shape[1])

    def _pool(self, maps: torch.Tensor) -> torch.Tensor:
        return maps.amax(dim=(2, 3)) if self.config.pool == "gmp" else maps.mean(dim=(2, 3))

    def mid_logits(self, maps: torch.Tensor, partners: torch.Tensor | None) -> torch.Tensor:
        """Mid-head logits of mid maps (B, Cm, h, w), mixed with ``partners`` when given."""
        maps = F.relu(self.mid_conv(maps))
        cfg = self.config
        if partners is None:
            return self.mid_fc(self._pool(maps))
        low, high = cfg.ratio
        ratio = low + (high - low) * float(torch.rand((), generator=self.gen))
        if cfg.mode == "channel":
            mixed, _ = mix_features(
                self._pool(maps), partners, "channel", ratio, cfg.mask_per_sample, self.gen
            )
            return self.mid_fc(mixed)
        mixed, _ = mix_features(maps, partners, cfg.mode, ratio, cfg.mask_per_sample, self.gen)
        return self.mid_fc(self._pool(mixed))

    def forward(  # noqa: ANN201
        self,
        x: torch.Tensor,
        labels: torch.Tensor | None = None,
        mode: str = "H",
        detach_mid: bool = True,
    ):
        """Training: high logits, K mixed mid logits and the embedding; eval: per ``mode``.

        Args:
            x: Input batch (B, C, S, S).
            labels: Hard labels (B,), needed in training (the partner choice).
            mode: Inference mode at eval: ``H``, ``M`` or ``H+M``.
            detach_mid: Stop the mid branch's gradient from reaching the backbone (the early
                epochs of training, per ``MreConfig.detach_fraction``).
        """
        if mode not in INFER_MODES:
            raise ConfigError(f"unknown MRE mode {mode!r}; valid: {', '.join(INFER_MODES)}")
        mid = self.net.body[: self.split](x)
        features = self.net.body[self.split :](mid).mean(dim=(2, 3))
        high = self.net.forward_head(features)
        branch_in = mid.detach() if detach_mid else mid
        if self.training:
            if labels is None:
                raise ConfigError("MreNet needs labels in training (for the partner choice)")
            outs = [
                self.mid_logits(branch_in, sample_partners(labels, self.gen))
                for _ in range(self.config.swaps)
            ]
            return high, outs, features
        if mode == "H":
            return high, features
        low = self.mid_logits(branch_in, None)
        return (low if mode == "M" else high + low), features


def mre_loss(
    high: torch.Tensor,
    mids: list[torch.Tensor],
    targets: torch.Tensor,
    weight: float,
    base: nn.Module,
) -> torch.Tensor:
    """``base(high, y) + weight * mean_k base(mid_k, y)`` (``base`` is CE or a mixed loss)."""
    mid = torch.stack([base(m, targets) for m in mids]).mean()
    return base(high, targets) + weight * mid


class MreMethod(Method):
    """MRE as a runner method: high head + mixed mid branch; inference H, M or H+M (spec §1)."""

    name: ClassVar[str] = "mre"
    eval_modes: ClassVar[tuple[str, ...]] = INFER_MODES
    options_type: ClassVar[type] = MreConfig

    def __init__(self, options: dict[str, Any], criterion: nn.Module, card: ModelCard) -> None:
        super().__init__(options, criterion, card)
        # Whether the mid branch's gradient stops at its input; start_epoch sets it per epoch.
        self.detach_mid = True

    def wrap(self, base: FerNet) -> nn.Module:
        return MreNet(base, self.card.num_classes, self.options, self.card.channels)

    def new_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        return [
            *model.mid_conv.parameters(),
            *model.mid_fc.parameters(),
            *model.net.fc.parameters(),
        ]

    def start_epoch(self, model: nn.Module, epoch: int, epochs: int) -> None:
        self.detach_mid = epoch < self.options.detach_fraction * epochs

    def loss(self, model: nn.Module, batch: Batch, targets: Targets) -> torch.Tensor:
        high, mids, _ = model(batch.x, batch.labels, detach_mid=self.detach_mid)
        return mre_loss(high, mids, batch.soft, self.options.weight, self.criterion)

    def predict(self, model: nn.Module, x: torch.Tensor, mode: str) -> tuple[torch.Tensor, ...]:
        return model(x, mode=mode)
