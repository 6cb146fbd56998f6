"""ModelCard and CropFraming validation, JSON round trips and sidecars."""

from __future__ import annotations

import json
from contextlib import nullcontext as does_not_raise

import pytest

from fer_live.errors import ModelError
from fer_live.infer.card import CropFraming, ModelCard, read_sidecar, write_sidecar

BASE = {"name": "m", "labels": ["a", "b"], "input_size": 48}


@pytest.mark.parametrize(
    ("changes", "expectation"),
    [
        ({}, does_not_raise()),
        ({"labels": []}, pytest.raises(ModelError, match="labels")),
        ({"labels": ["a", "a"]}, pytest.raises(ModelError, match="unique")),
        ({"input_size": 8}, pytest.raises(ModelError, match="input_size")),
        ({"input_size": 1024}, pytest.raises(ModelError, match="input_size")),
        ({"channels": 2}, pytest.raises(ModelError, match="channels")),
        ({"channels": 3}, pytest.raises(ModelError, match="mean/std need 3")),
        ({"channels": 3, "mean": [0.5] * 3, "std": [0.2] * 3}, does_not_raise()),
        ({"std": [0.0]}, pytest.raises(ModelError, match="std must be positive")),
        ({"outputs": ["embedding"]}, pytest.raises(ModelError, match="start with 'logits'")),
        ({"outputs": ["logits", "boxes"]}, pytest.raises(ModelError, match="outputs")),
        ({"outputs": ["logits"]}, does_not_raise()),
        ({"outputs": ["logits", "embedding"], "embedding_dim": 64}, does_not_raise()),
        ({"embedding_dim": 64, "outputs": ["logits"]}, pytest.raises(ModelError, match="embed")),
        ({"crop": {"scale": 5.0}}, pytest.raises(ModelError, match="crop.scale")),
        ({"crop": {"shift_x": 0.7}}, pytest.raises(ModelError, match="shift")),
        ({"crop": {"scale": 1.3, "shift_y": -0.1}}, does_not_raise()),
        ({"format_version": 99}, pytest.raises(ModelError, match="format_version")),
        ({"colour": "blue"}, pytest.raises(ModelError, match="malformed")),
        # NaN is not JSON and a card holding it never equals itself read back
        ({"training": {"": float("nan")}}, pytest.raises(ModelError, match="training")),
        ({"metrics": {"acc": [float("inf")]}}, pytest.raises(ModelError, match="metrics")),
        ({"training": {"epochs": 5, "lr": 3e-4}}, does_not_raise()),
    ],
)
def test_card_validation_table(changes, expectation):
    data = {**BASE, "outputs": ["logits"], **changes}
    with expectation:
        card = ModelCard.from_dict(data)
        assert card.num_classes == len(data["labels"])


def test_json_round_trip_keeps_every_field():
    card = ModelCard(
        name="m",
        labels=("x", "y", "z"),
        input_size=64,
        channels=3,
        mean=(0.4, 0.5, 0.6),
        std=(0.2, 0.25, 0.3),
        crop=CropFraming(scale=1.2, shift_x=0.01, shift_y=-0.05),
        embedding_dim=32,
        metrics={"acc": 0.8},
    )
    assert ModelCard.from_json(card.to_json()) == card


@pytest.mark.parametrize(("text", "match"), [("{not json", "not valid JSON"), ("[1]", "object")])
def test_bad_json_is_model_error(text, match):
    with pytest.raises(ModelError, match=match):
        ModelCard.from_json(text)


def test_sidecar_round_trip_and_checksum(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"weights v1")
    card = ModelCard.from_dict({**BASE, "outputs": ["logits"]})
    assert read_sidecar(model) is None
    sidecar = write_sidecar(card, model)
    assert sidecar.name == "m.json" and json.loads(sidecar.read_text())["file"] == "m.onnx"
    assert read_sidecar(model) == card
    model.write_bytes(b"weights v2")
    with pytest.raises(ModelError, match="sha256"):
        read_sidecar(model)
