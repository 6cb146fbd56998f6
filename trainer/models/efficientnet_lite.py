"""EfficientNet-Lite0, written here so the lukemelas-style ImageNet weights load by name.

Lite variants drop squeeze-and-excitation, use ReLU6 and a fixed stem/head. Module attribute
names follow the weight file (``_conv_stem``, ``_blocks.N._expand_conv`` ...), so the key map is
only the ``body.`` prefix, the grayscale stem and dropping the ImageNet ``_fc``. Convolutions use
symmetric ``k // 2`` padding instead of TensorFlow's "same" padding, a one-pixel shift on
stride-2 layers that fine-tuning absorbs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from fer_live.errors import ModelError
from fer_live.trainer.models.base import FerNet, adapt_stem_weight, load_state_dict_file

logger = logging.getLogger(__name__)

# (expand ratio, kernel, stride, output channels, repeats) per stage of EfficientNet-Lite0.
LITE0_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-and-excitation (ReLU6)."""

    def __init__(self, c_in: int, c_out: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(
            mid, mid, kernel, stride=stride, padding=kernel // 2, groups=mid, bias=False
        )
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLiteBody(nn.Module):
    """Stem, MBConv blocks and the 1x1 head conv; outputs a (B, 1280, h, w) map."""

    def __init__(self, in_chans: int = 1, stem_stride: int = 2):
        super().__init__()
        self._conv_stem = nn.Conv2d(in_chans, 32, 3, stride=stem_stride, padding=1, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        c_in = 32
        for expand, kernel, stride, c_out, repeats in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(c_in, c_out, expand, kernel, stride if i == 0 else 1))
                c_in = c_out
        self._blocks = nn.Sequential(*blocks)
        self._conv_head = nn.Conv2d(c_in, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self._bn0(self._conv_stem(x)))
        x = self._blocks(x)
        return self.act(self._bn1(self._conv_head(x)))


def load_lite0_weights(body: EfficientNetLiteBody, path: Path, in_chans: int) -> None:
    """Load lukemelas-style Lite0 ImageNet weights into ``body``.

    Raises:
        ModelError: Keys or shapes do not match the architecture.
    """
    state = {k: v for k, v in load_state_dict_file(path).items() if not k.startswith("_fc.")}
    state["_conv_stem.weight"] = adapt_stem_weight(state["_conv_stem.weight"], in_chans)
    try:
        body.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{path} does not match EfficientNet-Lite0: {exc}") from None


def build_efficientnet_lite0(
    num_classes: int,
    in_chans: int = 1,
    input_size: int = 64,
    pretrained: Path | None = None,
    stem_stride: int = 2,
    drop_rate: float = 0.2,
) -> FerNet:
    """EfficientNet-Lite0 with a FerNet head.

    Args:
        num_classes: Number of logits.
        in_chans: 1 (grayscale; the pretrained stem is summed over RGB) or 3.
        input_size: Input side (the body is size-agnostic).
        pretrained: ``efficientnet-lite0-57934424.pth`` (lukemelas keys), or None.
        stem_stride: Stem stride (ImageNet: 2).
        drop_rate: Dropout before the classifier.

    Returns:
        The model.
    """
    body = EfficientNetLiteBody(in_chans, stem_stride)
    if pretrained is not None:
        load_lite0_weights(body, pretrained, in_chans)
        logger.info("loaded ImageNet EfficientNet-Lite0 weights from %s", pretrained)
    return FerNet(body, 1280, num_classes, drop_rate)
