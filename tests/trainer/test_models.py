"""The model contract over the whole registry, and pretrained grayscale stems."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fer_live.errors import ConfigError
from fer_live.trainer.config import DEFAULT_PRETRAINED
from fer_live.trainer.models.base import load_state_dict_file
from fer_live.trainer.models.registry import create_model, list_models
from tests.shared_data import need


def test_registry_lists_the_issue_models() -> None:
    assert {"resnet18", "resnet34", "resnet50", "mobilenetv2", "efficientnet_lite0"} <= set(
        list_models()
    )


@pytest.mark.parametrize("name", list_models())
def test_contract_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=8, in_chans=1, input_size=32, drop_rate=None)
    x = torch.randn(2, 1, 32, 32)
    logits, embedding = model(x)
    assert logits.shape == (2, 8)
    assert embedding.shape == (2, model.num_features)
    logits.logsumexp(dim=1).mean().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert torch.isfinite(logits).all() and torch.isfinite(embedding).all()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.forward_head(model.forward_features(x)), model(x)[0])


def test_three_channel_input() -> None:
    model = create_model("resnet18", num_classes=7, in_chans=3, input_size=48)
    assert model(torch.randn(1, 3, 48, 48))[0].shape == (1, 7)


def test_unknown_model_is_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown model"):
        create_model("resnet19", num_classes=8)


@pytest.mark.shared  # the ImageNet weights are in ../shared/models
@pytest.mark.parametrize(
    ("name", "stem_key", "model_key"),
    [
        ("mobilenetv2", "features.0.0.weight", "body.0.0.weight"),
        ("efficientnet_lite0", "_conv_stem.weight", "body._conv_stem.weight"),
    ],
)
def test_pretrained_gray_stem_sums_rgb(name: str, stem_key: str, model_key: str) -> None:
    path = need(Path(DEFAULT_PRETRAINED[name]), "the pretrained weights")
    source = load_state_dict_file(path)
    model = create_model(name, num_classes=8, in_chans=1, input_size=64, pretrained=path)
    state = model.state_dict()
    torch.testing.assert_close(state[model_key], source[stem_key].sum(dim=1, keepdim=True))
    # A deeper weight is carried over unchanged.
    deep = [k for k in source if k.endswith("weight") and source[k].ndim == 4][5]
    prefix = "body." + (deep[len("features.") :] if deep.startswith("features.") else deep)
    torch.testing.assert_close(state[prefix], source[deep])
