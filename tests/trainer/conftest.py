"""Fixtures for the trainer tests: the real FERPlus folder and a tiny grayscale model card."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_live.infer.card import ModelCard
from tests.shared_data import need


@pytest.fixture(scope="session")
def ferplus_root(shared_dir: Path) -> Path:
    root = shared_dir / "data" / "ferplus"
    need(root / "FER2013Train" / "label.csv", "FERPlus")
    return root


@pytest.fixture()
def card32() -> ModelCard:
    return ModelCard(name="t", labels=tuple("abcdefgh"), input_size=32, embedding_dim=8)


@pytest.fixture()
def one_torch_thread():
    """Tiny models run fastest (and never oversubscribe a shared CPU) on one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def tiny_checkpoint(tmp_path: Path, ferplus_root: Path) -> Path:
    """A fer-train checkpoint of a tiny 32 px gray MobileNetV2 (width 0.25), untrained."""
    import torch

    from fer_live.trainer.config import TrainConfig
    from fer_live.trainer.models.registry import create_model

    cfg = TrainConfig(
        name="tiny", arch="mobilenetv2", input_size=32, data_root=str(ferplus_root),
        model_kwargs={"width_mult": 0.25},
    )  # fmt: skip
    torch.manual_seed(0)
    model = create_model("mobilenetv2", 8, 1, 32, width_mult=0.25)
    labels = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
    card = ModelCard(name="tiny", labels=labels, input_size=32, embedding_dim=model.num_features)
    path = tmp_path / "tiny_best.pt"
    torch.save({"model": model.state_dict(), "config": cfg.to_json(), "card": card.to_json()}, path)
    return path


@pytest.fixture()
def tiny_onnx(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    """The tiny checkpoint exported to ONNX (``m.onnx`` with its card), unchecked."""
    from fer_live.trainer.evaluate import load_checkpoint
    from fer_live.trainer.export import export_onnx

    model, card, _ = load_checkpoint(tiny_checkpoint)
    path = tmp_path / "m.onnx"
    export_onnx(model, card, path, check=False)
    return path
