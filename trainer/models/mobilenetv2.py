"""MobileNetV2 (torchvision) adapted to small grayscale faces."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from torchvision.models import mobilenet_v2

from fer_live.trainer.models.base import FerNet, adapt_stem_weight, load_state_dict_file

logger = logging.getLogger(__name__)


def build_mobilenetv2(
    num_classes: int,
    in_chans: int = 1,
    input_size: int = 64,
    pretrained: Path | None = None,
    stem_stride: int | None = None,
    width_mult: float = 1.0,
    drop_rate: float = 0.2,
) -> FerNet:
    """MobileNetV2 body with a FerNet head.

    Args:
        num_classes: Number of logits.
        in_chans: 1 (grayscale) or 3.
        input_size: Input side (kept for the registry contract; the body is size-agnostic).
        pretrained: torchvision ImageNet state dict (``mobilenet_v2-b0353104.pth``), or None.
        stem_stride: Stem stride; None keeps ImageNet's 2. A stride of 1 doubles the final
            feature map (better for inputs under 64 px) at about 3-4 times the compute.
        width_mult: Channel multiplier (pretrained weights need 1.0).
        drop_rate: Dropout before the classifier.

    Returns:
        The model.
    """
    net = mobilenet_v2(weights=None, width_mult=width_mult)
    if pretrained is not None:
        state = {
            k: v for k, v in load_state_dict_file(pretrained).items() if k.startswith("features.")
        }
        net.load_state_dict(state, strict=False)
        logger.info("loaded ImageNet MobileNetV2 weights from %s", pretrained)
    stem: nn.Conv2d = net.features[0][0]
    stride = stem_stride if stem_stride is not None else 2
    new_stem = nn.Conv2d(in_chans, stem.out_channels, 3, stride=stride, padding=1, bias=False)
    with torch.no_grad():
        new_stem.weight.copy_(adapt_stem_weight(stem.weight, in_chans))
    net.features[0][0] = new_stem
    return FerNet(net.features, net.last_channel, num_classes, drop_rate)
