"""ARM, the Amend-Representation-Module (METHODS.md §8.4), in place of global pooling + FC.

The backbone's last feature map (B, D, h, w) is rearranged by ``PixelShuffle(r)`` into
(B, D/r², h·r, w·r), one shared single-channel convolution (large kernel, no padding) pools each
of those channels ("de-albino"), BatchNorm follows, the channel mean plus ``alpha`` times a shared
map ``g`` gives one (o, o) map per image, and a linear layer classifies its o² values.

Deviation from the paper's geometry: the paper pairs ResNet-18 at 224 px (7×7×512 → 2×112×112,
kernel 32, stride 8 → 11×11). Our backbones run on 64 px gray faces (MobileNetV2: 2×2×1280), so
the kernel and stride default to the paper's fractions of the shuffled side (32/112 = 2/7 and
8/112 = 1/14), which gives exactly 32 and 8 on the paper's geometry.

Batch dependence: the official ``g`` is the mean over the *batch* and channels, so a prediction
depends on the other test images. ``isolated`` mode uses the spec's fix, a running mean
``g_run`` updated in training (BN-style momentum 0.1) — deployable, batch-independent; ``batch``
mode is the official behaviour and transductive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from fer_live.errors import ConfigError
from fer_live.trainer.methods.protocol import Method
from fer_live.trainer.models.base import FerNet

ARM_MODES = ("isolated", "batch")


def arm_geometry(side: int, kernel: int = 0, stride: int = 0) -> tuple[int, int, int]:
    """Kernel, stride and output side of the de-albino convolution on a ``side`` map.

    Args:
        side: Side of the pixel-shuffled map (the feature map side times the upscale factor).
        kernel: Kernel side; 0 = round(side * 2 / 7) (the paper's 32 of 112).
        stride: Stride; 0 = max(1, round(side / 14)) (the paper's 8 of 112).

    Raises:
        ConfigError: The kernel does not fit the map.
    """
    kernel = kernel or max(1, round(side * 2 / 7))
    stride = stride or max(1, round(side / 14))
    if kernel > side:
        raise ConfigError(f"ARM kernel {kernel} is larger than the shuffled map side {side}")
    return kernel, stride, (side - kernel) // stride + 1


class ArmHead(nn.Module):
    """ARM over a (B, D, h, h) feature map, giving logits (B, num_classes).

    Args:
        channels: D; must be divisible by ``upscale``².
        side: h, the feature map side.
        num_classes: Number of logits.
        upscale: PixelShuffle factor (paper: 16).
        kernel: De-albino kernel (0 = paper fraction, see ``arm_geometry``).
        stride: De-albino stride (0 = paper fraction).
        drop_rate: Dropout before the classifier.
        momentum: Update rate of the running shared map ``g_run``.
    """

    def __init__(
        self, channels: int, side: int, num_classes: int, upscale: int = 16, kernel: int = 0,
        stride: int = 0, drop_rate: float = 0.0, momentum: float = 0.1,
    ) -> None:  # fmt: skip
        super().__init__()
        if channels % (upscale * upscale):
            raise ConfigError(f"ARM needs channels {channels} divisible by upscale² {upscale**2}")
        self.upscale, self.momentum = upscale, momentum
        self.planes = channels // (upscale * upscale)
        k, s, out = arm_geometry(side * upscale, kernel, stride)
        self.out_side = out
        self.conv = nn.Conv2d(1, 1, k, stride=s, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(self.planes)
        self.alpha = nn.Parameter(torch.tensor(1.0))
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(out * out, num_classes)
        self.register_buffer("g_run", torch.zeros(out, out))
        self.register_buffer("g_updates", torch.zeros((), dtype=torch.long))

    def amend(self, fmap: torch.Tensor) -> torch.Tensor:
        """Arrangement, de-albino convolution and BN: (B, D, h, h) -> (B, D/r², o, o)."""
        x = F.pixel_shuffle(fmap, self.upscale)
        b, c, side, _ = x.shape
        x = self.conv(x.reshape(b * c, 1, side, side))
        return self.bn(x.reshape(b, c, self.out_side, self.out_side))

    def forward(self, fmap: torch.Tensor, transductive: bool = False) -> torch.Tensor:
        x = self.amend(fmap)
        x_mean = x.mean(dim=1)
        if self.training or transductive:
            g = x.mean(dim=(0, 1))
            if self.training:
                self._update_running(g.detach())
        else:
            g = self.g_run
        out = x_mean + self.alpha * g
        return self.fc(self.drop(out.flatten(1)))

    @torch.no_grad()
    def _update_running(self, g: torch.Tensor) -> None:
        if int(self.g_updates) == 0:
            self.g_run.copy_(g)
        else:
            self.g_run.mul_(1.0 - self.momentum).add_(g, alpha=self.momentum)
        self.g_updates += 1


def feature_side(body: nn.Module, channels: int, input_size: int) -> int:
    """Side of the body's output map for one ``input_size`` image (probed in eval mode)."""
    was_training = body.training
    body.eval()
    with torch.no_grad():
        side = int(body(torch.zeros(1, channels, input_size, input_size)).shape[-1])
    body.train(was_training)
    return side


class ArmNet(nn.Module):
    """A FerNet body with ARM instead of GAP + FC; returns (logits, GAP embedding).

    The ``mode`` argument selects ``isolated`` (running ``g``) or ``batch`` (official,
    transductive) at eval.
    """

    def __init__(self, base: FerNet, head: ArmHead) -> None:
        super().__init__()
        self.body = base.body
        self.num_features = base.num_features
        self.head = head

    def forward(self, x: torch.Tensor, mode: str = "isolated") -> tuple[torch.Tensor, torch.Tensor]:
        if mode not in ARM_MODES:
            raise ConfigError(f"unknown ARM mode {mode!r}; valid: {ARM_MODES}")
        fmap = self.body(x)
        logits = self.head(fmap, transductive=mode == "batch")
        return logits, fmap.mean(dim=(2, 3))


@dataclass(frozen=True)
class ArmOptions:
    """ARM geometry (0 = the paper's fractions) and classifier dropout."""

    upscale: int = 16
    kernel: int = 0
    stride: int = 0
    drop: float = 0.0


def build_arm_net(base: FerNet, num_classes: int, channels: int, input_size: int,
                  opt: ArmOptions) -> ArmNet:  # fmt: skip
    """Wrap ``base`` with an ARM head sized for its feature map at ``input_size``."""
    side = feature_side(base.body, channels, input_size)
    head = ArmHead(
        base.num_features, side, num_classes, opt.upscale, opt.kernel, opt.stride, opt.drop
    )
    return ArmNet(base, head)


class ArmMethod(Method):
    """Backbone + ARM trained with the runner's loss (the "Res18+ARM" row of §10.5)."""

    name: ClassVar[str] = "arm"
    eval_modes: ClassVar[tuple[str, ...]] = ARM_MODES
    options_type: ClassVar[type] = ArmOptions

    def wrap(self, base: FerNet) -> nn.Module:
        card = self.card
        return build_arm_net(base, card.num_classes, card.channels, card.input_size, self.options)

    def new_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        return list(model.head.parameters())

    def predict(self, model: nn.Module, x: torch.Tensor, mode: str) -> tuple[torch.Tensor, ...]:
        return model(x, mode=mode)
