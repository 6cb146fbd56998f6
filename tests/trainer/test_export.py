"""ONNX / TorchScript export: parity with torch, the embedded card, sidecar and crop framing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from fer_live.errors import ModelError
from fer_live.infer.card import CropFraming, ModelCard, read_sidecar
from fer_live.trainer.export import (
    export_onnx,
    export_torchscript,
    load_crop_framing,
    read_onnx_card,
)
from fer_live.trainer.models.registry import create_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, ModelCard, Path]:
    torch.manual_seed(0)
    model = create_model("mobilenetv2", num_classes=8, in_chans=1, input_size=32).eval()
    card = ModelCard(
        name="tiny", labels=tuple(f"c{i}" for i in range(8)), input_size=32,
        crop=CropFraming(scale=1.2, shift_y=-0.05), embedding_dim=model.num_features,
        arch="mobilenetv2",
    )  # fmt: skip
    path = tmp_path_factory.mktemp("export") / "tiny.onnx"
    report = export_onnx(model, card, path, latency_runs=5)
    assert report.max_abs_logit_diff <= 1e-3
    assert report.latency_ms_b1 is not None and report.latency_ms_b1 > 0
    return model, card, path


def test_onnx_parity_dynamic_batch_and_output_names(exported) -> None:
    model, card, path = exported
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["logits", "embedding"]
    x = torch.randn(5, 1, 32, 32)
    logits, embedding = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        ref_logits, ref_embedding = model(x)
    assert np.abs(logits - ref_logits.numpy()).max() <= 1e-3
    assert np.abs(embedding - ref_embedding.numpy()).max() <= 1e-3


def test_card_embedded_and_sidecar_verified(exported) -> None:
    _, card, path = exported
    embedded = read_onnx_card(path)
    assert embedded == card
    assert read_sidecar(path) == card
    data = json.loads(path.with_suffix(".json").read_text())
    assert data["file"] == "tiny.onnx" and len(data["sha256"]) == 64


def test_torchscript_carries_card(exported, tmp_path: Path) -> None:
    model, card, _ = exported
    path = export_torchscript(model, card, tmp_path / "tiny.onnx")
    assert path.suffix == ".pt"
    extra = {"card.json": ""}
    loaded = torch.jit.load(str(path), _extra_files=extra)
    assert ModelCard.from_json(extra["card.json"]) == card
    x = torch.randn(3, 1, 32, 32)
    torch.testing.assert_close(loaded(x)[0], model(x)[0])


def test_crop_framing_file(tmp_path: Path) -> None:
    path = tmp_path / "crop.json"
    path.write_text(json.dumps({"scale": 1.15, "shift_x": 0.01, "shift_y": -0.06, "n": 3}))
    assert load_crop_framing(path) == CropFraming(1.15, 0.01, -0.06)
    with pytest.raises(ModelError):
        load_crop_framing(tmp_path / "missing.json")
    assert isinstance(load_crop_framing(None), CropFraming)


def test_accuracy_report_lists_model_and_papers(exported, tmp_path: Path) -> None:
    from fer_live.trainer.report import write_report

    _, _, path = exported
    md, js = write_report([path], tmp_path, latency_runs=3)
    text = md.read_text()
    assert "| tiny | mobilenetv2 | 32px x1 |" in text
    assert "| EAN | 90.07 |" in text
    data = json.loads(js.read_text())
    assert data["models"][0]["ort_cpu_b1_ms"] > 0
    assert data["papers_ferplus_test"]["SCN"] == 89.35
