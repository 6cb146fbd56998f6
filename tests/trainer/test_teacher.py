"""Both crop views in one split, and a teacher's probabilities as training targets."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_live.errors import ConfigError
from fer_live.infer.card import ModelCard, read_sidecar, write_sidecar
from fer_live.infer.decision import DecisionRule
from fer_live.trainer.config import DEFAULT_PRETRAINED, TrainConfig
from fer_live.trainer.data.tensors import load_split, read_items
from fer_live.trainer.evaluate import load_checkpoint
from fer_live.trainer.export import _ort_session
from fer_live.trainer.teacher import teacher_probs
from fer_live.trainer.train import run_training


def test_both_views_are_the_dataset_view_then_the_product_view(
    ferplus_root: Path, tmp_path: Path, card32: ModelCard
) -> None:
    card = replace(card32, input_size=64)
    cache = tmp_path / "cache"
    args = ("ferplus", ferplus_root, "valid", card)
    plain = load_split(*args, limit=5, cache_dir=cache)
    product = load_split(*args, limit=5, cache_dir=cache, crops="product")
    both = load_split(*args, limit=5, cache_dir=cache, crops="both")
    assert both.x.shape[0] == 10
    np.testing.assert_array_equal(both.x[:5].numpy(), plain.x.numpy())
    np.testing.assert_array_equal(both.x[5:].numpy(), product.x.numpy())
    np.testing.assert_array_equal(both.labels.numpy(), np.tile(plain.labels.numpy(), 2))
    np.testing.assert_array_equal(both.soft[5:].numpy(), plain.soft.numpy())


def _by_hand(model: Path, card: ModelCard, faces: np.ndarray) -> np.ndarray:
    """The teacher's flip-averaged logits, computed without the trainer's helpers."""
    side = card.input_size
    x = np.stack([cv2.resize(f, (side, side), interpolation=cv2.INTER_AREA) for f in faces])
    x = ((x.astype(np.float32) / 255.0 - 0.5) / 0.5)[:, None]
    session = _ort_session(model)
    logits = session.run(["logits"], {"input": x})[0]
    flipped = session.run(["logits"], {"input": np.ascontiguousarray(x[..., ::-1])})[0]
    return (logits + flipped) / 2.0


def test_teacher_probs_are_its_calibrated_flip_averaged_softmax(
    ferplus_root: Path, tmp_path: Path, tiny_onnx: Path
) -> None:
    card = read_sidecar(tiny_onnx)
    assert card is not None and card.input_size == 32
    # a teacher whose rule has a temperature and offsets: only the temperature is used
    rule = DecisionRule(temperature=2.0, offsets=(0.0, 5.0, 0, 0, 0, 0, 0, 0))
    write_sidecar(replace(card, decision=rule), tiny_onnx)
    cfg = TrainConfig(
        name="s", data_root=str(ferplus_root), input_size=48, max_train=6,
        teacher=str(tiny_onnx),
    )  # fmt: skip
    cache = tmp_path / "cache"
    probs = teacher_probs(cfg, "train", cache_dir=cache)
    items = read_items("ferplus", ferplus_root, "train")
    faces = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in items.paths[:6]])
    raw = _by_hand(tiny_onnx, card, faces)
    z = raw / 2.0
    want = np.exp(z - z.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    assert probs.shape == (6, 8)
    np.testing.assert_allclose(probs, want, atol=1e-4)
    assert len(list(cache.glob("teacher-*.npz"))) == 1
    np.testing.assert_array_equal(teacher_probs(cfg, "train", cache_dir=cache), probs)


def test_a_teacher_must_be_an_exported_model_and_mix_into_soft_targets(
    ferplus_root: Path, tmp_path: Path, tiny_checkpoint: Path
) -> None:
    with pytest.raises(ConfigError, match="teacher_weight"):
        TrainConfig(name="s", teacher="t.onnx", teacher_weight=1.5)
    with pytest.raises(ConfigError, match="soft_targets"):
        TrainConfig(name="s", teacher="t.onnx", soft_targets=False)
    with pytest.raises(ConfigError, match="crops"):
        TrainConfig(name="s", crops="mixed")
    cfg = TrainConfig(
        name="s", data_root=str(ferplus_root), max_train=4, teacher=str(tiny_checkpoint)
    )
    with pytest.raises(ConfigError, match="exported .onnx"):
        teacher_probs(cfg, cache_dir=tmp_path)


def test_a_run_trains_on_its_teachers_targets(
    ferplus_root: Path, tmp_path: Path, tiny_onnx: Path
) -> None:
    """With weight 1 the targets are the teacher's alone; the run records its teacher."""
    from fer_live.trainer import train as train_module

    cfg = TrainConfig(
        name="student", data_root=str(ferplus_root), arch="mobilenetv2",
        pretrained=str(DEFAULT_PRETRAINED["mobilenetv2"]), input_size=32, epochs=3,
        batch_size=32, lr=3e-3, warmup_epochs=0.2, max_train=128, max_eval=32, num_threads=2,
        out_dir=str(tmp_path), teacher=str(tiny_onnx), teacher_weight=1.0,
    )  # fmt: skip
    train, _ = train_module.load_data(cfg, train_module.training_card(cfg, ("probe",), 1))
    want = teacher_probs(cfg, "train")
    np.testing.assert_allclose(train.soft.numpy(), want, atol=1e-6)
    result = run_training(cfg)
    saved = json.loads((result.run_dir / "config.json").read_text())
    assert saved["teacher"] == str(tiny_onnx) and saved["teacher_weight"] == 1.0
    _, card, loaded = load_checkpoint(result.run_dir / "best.pt")
    assert loaded.teacher == str(tiny_onnx) and card.input_size == 32
