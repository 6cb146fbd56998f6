"""Model registry: ``register_model``, ``create_model`` and ``list_models``.

Every architecture module is imported here explicitly, so the full list is greppable in one file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fer_live.errors import ConfigError
from fer_live.trainer.models.base import FerNet
from fer_live.trainer.models.efficientnet_lite import build_efficientnet_lite0
from fer_live.trainer.models.mobilenetv2 import build_mobilenetv2
from fer_live.trainer.models.resnet import build_resnet18, build_resnet34, build_resnet50

ModelBuilder = Callable[..., FerNet]
_REGISTRY: dict[str, ModelBuilder] = {}


def register_model(name: str, builder: ModelBuilder) -> None:
    """Register ``builder(num_classes, in_chans, input_size, pretrained, **kw)`` as ``name``.

    Raises:
        ConfigError: The name is taken.
    """
    if name in _REGISTRY:
        raise ConfigError(f"model {name!r} is already registered")
    _REGISTRY[name] = builder


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


def create_model(
    name: str,
    num_classes: int,
    in_chans: int = 1,
    input_size: int = 64,
    pretrained: Path | None = None,
    **kwargs: Any,
) -> FerNet:
    """Build a registered model; keyword arguments that are None are dropped.

    Args:
        name: Registry name (see ``list_models``).
        num_classes: Number of logits.
        in_chans: 1 (grayscale) or 3.
        input_size: Input side in pixels.
        pretrained: Weights file, or None.
        **kwargs: Model-specific options.

    Returns:
        A model with ``forward_features``, ``forward_head`` and ``forward -> (logits, embedding)``.

    Raises:
        ConfigError: Unknown model name.
    """
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    options = {k: v for k, v in kwargs.items() if v is not None}
    return _REGISTRY[name](
        num_classes=num_classes,
        in_chans=in_chans,
        input_size=input_size,
        pretrained=Path(pretrained) if pretrained is not None else None,
        **options,
    )


register_model("mobilenetv2", build_mobilenetv2)
register_model("efficientnet_lite0", build_efficientnet_lite0)
register_model("resnet18", build_resnet18)
register_model("resnet34", build_resnet34)
register_model("resnet50", build_resnet50)
