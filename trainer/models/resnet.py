"""torchvision ResNets with a stem adapted to small face crops."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet, resnet18, resnet34, resnet50

from fer_live.trainer.models.base import FerNet, adapt_stem_weight, load_state_dict_file

logger = logging.getLogger(__name__)


def _body(net: ResNet, in_chans: int, small_stem: bool) -> nn.Sequential:
    """ResNet trunk; the small stem is a 3x3 stride-1 conv without max-pool (total stride 8)."""
    old = net.conv1
    if small_stem:
        stem = nn.Conv2d(in_chans, old.out_channels, 3, stride=1, padding=1, bias=False)
        return nn.Sequential(
            stem, net.bn1, net.relu, net.layer1, net.layer2, net.layer3, net.layer4
        )
    stem = nn.Conv2d(in_chans, old.out_channels, 7, stride=2, padding=3, bias=False)
    with torch.no_grad():
        stem.weight.copy_(adapt_stem_weight(old.weight, in_chans))
    return nn.Sequential(
        stem, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
    )


def _build(
    factory: Callable[..., ResNet],
    num_classes: int,
    in_chans: int,
    input_size: int,
    pretrained: Path | None,
    small_stem: bool | None,
    drop_rate: float,
) -> FerNet:
    net = factory(weights=None)
    if pretrained is not None:
        state = {
            k: v for k, v in load_state_dict_file(pretrained).items() if not k.startswith("fc.")
        }
        net.load_state_dict(state, strict=False)
        logger.info("loaded ResNet weights from %s", pretrained)
    small = input_size < 112 if small_stem is None else small_stem
    return FerNet(_body(net, in_chans, small), net.fc.in_features, num_classes, drop_rate)


def build_resnet18(
    num_classes: int,
    in_chans: int = 1,
    input_size: int = 64,
    pretrained: Path | None = None,
    small_stem: bool | None = None,
    drop_rate: float = 0.0,
) -> FerNet:
    """ResNet-18; inputs under 112 px get the small stem (3x3 stride 1, no max-pool).

    Args:
        num_classes: Number of logits.
        in_chans: 1 or 3 (pretrained 7x7 stems are summed over RGB for 1).
        input_size: Input side in pixels.
        pretrained: torchvision-style ResNet state dict, or None (from scratch).
        small_stem: Force the small (True) or ImageNet (False) stem.
        drop_rate: Dropout before the classifier.

    Returns:
        The model.
    """
    return _build(resnet18, num_classes, in_chans, input_size, pretrained, small_stem, drop_rate)


def build_resnet34(
    num_classes: int,
    in_chans: int = 1,
    input_size: int = 64,
    pretrained: Path | None = None,
    small_stem: bool | None = None,
    drop_rate: float = 0.0,
) -> FerNet:
    """ResNet-34; see ``build_resnet18`` for the arguments."""
    return _build(resnet34, num_classes, in_chans, input_size, pretrained, small_stem, drop_rate)


def build_resnet50(
    num_classes: int,
    in_chans: int = 1,
    input_size: int = 64,
    pretrained: Path | None = None,
    small_stem: bool | None = None,
    drop_rate: float = 0.0,
) -> FerNet:
    """ResNet-50; see ``build_resnet18`` for the arguments."""
    return _build(resnet50, num_classes, in_chans, input_size, pretrained, small_stem, drop_rate)
