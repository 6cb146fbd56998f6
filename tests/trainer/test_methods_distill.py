"""Distillation: the soft-target loss, teacher train probabilities from runs, ONNX export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from fer_live.errors import ConfigError, ModelError
from fer_live.infer.card import CARD_KEY, ModelCard
from fer_live.trainer.data.tensors import load_split
from fer_live.trainer.methods.distill import (
    distill_loss,
    export_method_run,
    load_method_run,
    teacher_train_probs,
)
from fer_live.trainer.methods.runner import MethodConfig, predict_modes, run_method

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_distill_loss_is_zero_at_the_teacher_and_scales_with_t_squared() -> None:
    teacher = torch.tensor([[0.7, 0.2, 0.1]])
    assert float(distill_loss(teacher.log(), teacher, 1.0)) == pytest.approx(0.0, abs=1e-6)
    # a uniform student against the teacher: KL = sum p log(p / (1/3))
    kl = float((teacher * (teacher * 3).log()).sum())
    assert float(distill_loss(torch.zeros(1, 3), teacher, 1.0)) == pytest.approx(kl, rel=1e-5)
    # at T = 2 the teacher is flattened to p^(1/2) (renormalized) and the KL multiplied by 4
    t2 = teacher.sqrt() / teacher.sqrt().sum()
    kl2 = float((t2 * (t2 * 3).log()).sum()) * 4
    assert float(distill_loss(torch.zeros(1, 3), teacher, 2.0)) == pytest.approx(kl2, rel=1e-5)


def _config(name: str, method: str, ckpt: Path, root: Path, out: Path, **options: str):  # noqa: ANN202
    return MethodConfig(
        name, method=method, init=str(ckpt), input_size=32, epochs=1, batch_size=32,
        max_train=64, max_eval=32, out_dir=str(out), data_root=str(root), options=options,
    )  # fmt: skip


def test_teacher_probs_distill_run_and_export(
    tmp_path: Path, tiny_checkpoint: Path, ferplus_root: Path
) -> None:
    # given a trained member run
    run_method(_config("member", "baseline", tiny_checkpoint, ferplus_root, tmp_path))
    member = tmp_path / "member"
    # when its train-split probabilities are computed (cached)
    cache = tmp_path / "cache"
    probs, labels = teacher_train_probs([member], max_train=64, cache_dir=cache)
    # then they are the runner's flip-TTA probabilities of the rebuilt model on train images
    model, method, cfg, _ = load_method_run(member)
    probe = ModelCard(name="p", labels=("x",), input_size=32, outputs=("logits",))
    train = load_split("ferplus", ferplus_root, "train", probe, limit=64)
    expected = predict_modes(model, method, train.x)["H"][0]
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert np.array_equal(labels, train.labels.numpy())
    assert len(list(cache.glob("teacher-*.npz"))) == 1
    again, _ = teacher_train_probs([member], max_train=64, cache_dir=cache)
    np.testing.assert_array_equal(again, probs)
    # and a distill run trains on them and exports through fer-train's exporter
    teacher = tmp_path / "teacher.npz"
    np.savez(teacher, probs=probs, labels=labels)
    result = run_method(_config("student", "distill", tiny_checkpoint, ferplus_root, tmp_path,
                                teacher=str(teacher)))  # fmt: skip
    report = export_method_run(tmp_path / "student", tmp_path / "student.onnx")
    assert report.max_abs_logit_diff < 1e-4
    props = {p.key: p.value for p in onnx.load(str(report.path)).metadata_props}
    card = ModelCard.from_json(props[CARD_KEY])
    assert card.metrics["ferplus_test_acc"] == round(result["test"]["H"], 4)
    assert card.input_size == 32 and card.embedding_dim == model.num_features
    assert json.loads(report.sidecar.read_text())["name"] == "student"


def test_distill_rejects_a_teacher_for_other_images_and_export_rejects_wrappers(
    tmp_path: Path, tiny_checkpoint: Path, ferplus_root: Path
) -> None:
    teacher = tmp_path / "teacher.npz"
    np.savez(teacher, probs=np.full((64, 8), 0.125, np.float32), labels=np.zeros(64, np.int64))
    cfg = _config("student", "distill", tiny_checkpoint, ferplus_root, tmp_path,
                  teacher=str(teacher))  # fmt: skip
    with pytest.raises(ConfigError, match="does not cover"):
        run_method(cfg)
    run_method(_config("arm", "arm", tiny_checkpoint, ferplus_root, tmp_path))
    with pytest.raises(ModelError, match="wraps the backbone"):
        export_method_run(tmp_path / "arm", tmp_path / "arm.onnx")
