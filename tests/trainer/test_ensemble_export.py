"""Several exported models as one ONNX graph: the maths of the combined outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fer_live.errors import ModelError
from fer_live.infer.backends import open_backend
from fer_live.infer.card import ModelCard
from fer_live.numeric import softmax
from fer_live.trainer.ensemble_export import export_ensemble
from fer_live.trainer.export import _ort_session, export_onnx
from fer_live.trainer.models.registry import create_model

LABELS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")


def _member(tmp_path: Path, seed: int, size: int = 32) -> Path:
    torch.manual_seed(seed)
    model = create_model("mobilenetv2", 8, 1, size, width_mult=0.25).eval()
    card = ModelCard(name=f"m{seed}", labels=LABELS, input_size=size,
                     embedding_dim=model.num_features, arch="mobilenetv2")  # fmt: skip
    path = tmp_path / f"m{seed}.onnx"
    export_onnx(model, card, path, check=False)
    return path


def _run(path: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits, embedding = _ort_session(path).run(["logits", "embedding"], {"input": x})
    return logits, embedding


@pytest.mark.parametrize("flip_tta", [False, True])
def test_ensemble_averages_member_probabilities(
    tmp_path: Path, one_torch_thread, flip_tta: bool
) -> None:
    # given two different members and a batch of faces
    members = [_member(tmp_path, 0), _member(tmp_path, 1)]
    x = np.random.default_rng(0).normal(size=(3, 1, 32, 32)).astype(np.float32)
    views = [x, np.ascontiguousarray(x[..., ::-1])] if flip_tta else [x]
    # when
    path = export_ensemble(members, tmp_path / "ens.onnx", "ens", flip_tta=flip_tta)
    logits, embedding = _run(path, x)
    # then: softmax(logits) is the mean of every member's softmax over every view
    expected = np.mean([softmax(_run(m, v)[0]) for m in members for v in views], axis=0)
    assert np.allclose(softmax(logits), expected, atol=1e-5)
    assert np.allclose(embedding, np.concatenate([_run(m, x)[1] for m in members], axis=1),
                       atol=1e-5)  # fmt: skip
    # each member's weights are stored once, whatever the number of views
    assert path.stat().st_size < 1.1 * sum(m.stat().st_size for m in members)
    with open_backend(path) as backend:
        assert backend.card.embedding_dim == embedding.shape[1]
        assert backend.card.training["flip_tta"] is flip_tta


def test_members_with_different_inputs_are_refused(tmp_path: Path, one_torch_thread) -> None:
    members = [_member(tmp_path, 0, size=32), _member(tmp_path, 1, size=48)]
    with pytest.raises(ModelError, match="differ in input_size"):
        export_ensemble(members, tmp_path / "ens.onnx", "ens")
    assert not (tmp_path / "ens.onnx").exists()
