"""A tiny training run on real FERPlus images: loss goes down, outputs land, resume works."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_live.errors import ConfigError, ModelError
from fer_live.trainer.config import DEFAULT_PRETRAINED, TrainConfig
from fer_live.trainer.data.ferplus import FER2013_LABELS, FERPLUS_LABELS, label_columns
from fer_live.trainer.engine import cosine_lr
from fer_live.trainer.evaluate import compute_metrics, load_checkpoint
from fer_live.trainer.train import run_training


def _tiny(tmp_path: Path, ferplus_root: Path, epochs: int) -> TrainConfig:
    return TrainConfig(
        name="tiny", data_root=str(ferplus_root), arch="mobilenetv2",
        pretrained=str(DEFAULT_PRETRAINED["mobilenetv2"]), input_size=32, epochs=epochs,
        batch_size=64, lr=2e-3, warmup_epochs=0.5, max_train=256, max_eval=64, ema_decay=0.9,
        num_threads=2, out_dir=str(tmp_path),
    )  # fmt: skip


def test_tiny_run_lowers_loss_and_resumes(tmp_path: Path, ferplus_root: Path) -> None:
    result = run_training(_tiny(tmp_path, ferplus_root, epochs=2))
    run = result.run_dir
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert lines[-1]["loss"] < lines[0]["loss"]
    assert TrainConfig.load(run / "config.json").max_train == 256
    model, card, cfg = load_checkpoint(run / "best.pt")
    assert card.labels[1] == "happiness" and card.input_size == 32 and cfg.epochs == 2
    assert 0 <= card.metrics["valid_acc"] <= 1
    with pytest.raises(ConfigError, match="resume"):
        run_training(_tiny(tmp_path, ferplus_root, epochs=2))
    run_training(_tiny(tmp_path, ferplus_root, epochs=3), resume=True)
    lines = (run / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]


def test_config_rejects_typos_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match="did you mean batch_size"):
        TrainConfig.from_dict({"batch_sise": 3})
    with pytest.raises(ConfigError, match="aug.flip"):
        TrainConfig.from_dict({"aug": {"flipp": 0.5}})
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig(epochs=0)


def test_config_json_roundtrip() -> None:
    cfg = TrainConfig(name="x", epochs=3, model_kwargs={"stem_stride": 1})
    assert TrainConfig.from_dict(json.loads(cfg.to_json())) == cfg


def test_cosine_schedule_warms_up_then_decays() -> None:
    lrs = [cosine_lr(s, 100, 10, 1.0, 0.0) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[-1] < 0.01


def test_metrics_on_a_known_case() -> None:
    labels = np.array([0, 0, 1, 1, 2])
    preds = np.array([0, 1, 1, 1, 0])
    m = compute_metrics(labels, preds, ("a", "b", "c"))
    assert m.accuracy == pytest.approx(0.6)
    assert m.confusion == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m.per_class_f1 == {"a": 0.5, "b": 0.8, "c": 0.0}
    assert m.macro_f1 == pytest.approx((0.5 + 0.8) / 3)


def test_ferplus_logits_map_onto_fer2013_labels() -> None:
    columns = label_columns(FERPLUS_LABELS, FER2013_LABELS)
    assert [FERPLUS_LABELS[c] for c in columns] == [
        "anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral",
    ]  # fmt: skip
    with pytest.raises(ModelError):
        label_columns(("a", "b"), FER2013_LABELS)


def test_confusion_png_is_written(tmp_path: Path) -> None:
    from fer_live.trainer.evaluate import plot_confusion

    m = compute_metrics(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1]), ("a", "b", "c"))
    path = plot_confusion(m, tmp_path / "cm.png", "tiny")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_init_starts_from_a_checkpoints_weights(tmp_path: Path) -> None:
    import dataclasses

    import torch

    from fer_live.trainer.train import build_model

    # given a checkpoint of one model
    cfg = TrainConfig(arch="mobilenetv2", input_size=32, drop_rate=0.0)
    source = build_model(cfg, num_classes=8).state_dict()
    torch.save({"model": source}, tmp_path / "best.pt")
    # when a new run is built with init pointing at it, and another without
    tuned = build_model(dataclasses.replace(cfg, init=str(tmp_path / "best.pt")), 8).state_dict()
    fresh = build_model(cfg, num_classes=8).state_dict()
    # then the first carries the checkpoint's weights and the second does not
    assert all(torch.equal(source[k], tuned[k]) for k in source)
    assert not all(torch.equal(source[k], fresh[k]) for k in source)


def test_init_from_the_shipped_torchscript_default() -> None:
    """A shipped ``.pt`` (TorchScript, the network under ``inner.``) starts a fine-tuning run."""
    import dataclasses
    import warnings

    import torch

    from fer_live.infer.assets import default_model_path
    from fer_live.trainer.train import build_model

    shipped = default_model_path("torch")
    cfg = TrainConfig(arch="mobilenetv2", input_size=64, init=str(shipped))
    tuned = build_model(cfg, num_classes=8).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.load(str(shipped), map_location="cpu").eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        ours, theirs = tuned(x), scripted(x)
    theirs_logits = theirs[0] if isinstance(theirs, tuple | list) else theirs
    ours_logits = ours[0] if isinstance(ours, tuple | list) else ours
    torch.testing.assert_close(ours_logits, theirs_logits, atol=1e-4, rtol=1e-4)
    fresh = build_model(dataclasses.replace(cfg, init=None), num_classes=8).eval()
    with torch.no_grad():
        other = fresh(x)
    other_logits = other[0] if isinstance(other, tuple | list) else other
    assert not torch.allclose(other_logits, theirs_logits, atol=1e-2)
