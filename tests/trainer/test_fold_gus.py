"""Folding the GUS-T head's first-layer projection into exported models (``gus_proj``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from fer_live.detect.models import sha256_file
from fer_live.errors import ModelError
from fer_live.infer.backends import open_backend
from fer_live.infer.card import ModelCard, read_sidecar
from fer_live.infer.engine.onnx_fp16 import to_fp16
from fer_live.smooth.gus_head import head_path_for, write_head_file
from fer_live.smooth.gus_t import GraphSmoother
from fer_live.smooth.table import make_smoother
from fer_live.trainer.ensemble_export import build_ensemble
from fer_live.trainer.export import export_onnx, export_torchscript, read_onnx_card
from fer_live.trainer.fold_gus import fold_model
from fer_live.trainer.models.registry import create_model
from fer_live.types import Predictions

H, C = 16, 8


def write_head(path: Path, dim: int, base_sha256: str, seed: int = 0) -> Path:
    """A random head recorded against ``base_sha256``."""
    rng = np.random.default_rng(seed)
    arrays = {
        "w1": rng.uniform(-0.3, 0.3, (dim, H)), "w2": rng.uniform(-0.3, 0.3, (H, H)),
        "fc_w": rng.uniform(-1, 1, (C, H)), "fc_b": np.zeros(C),
    }  # fmt: skip
    return write_head_file(
        path, arrays, norm="mlgcn", p=0.5, threshold=0.5, base_sha256=base_sha256
    )


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 32 px model exported once as ONNX (+ sidecar) and TorchScript."""
    torch.manual_seed(0)
    model = create_model("mobilenetv2", num_classes=C, in_chans=1, input_size=32, width_mult=0.25)
    card = ModelCard(name="tiny", labels=tuple(f"c{i}" for i in range(C)), input_size=32,
                     embedding_dim=model.num_features)  # fmt: skip
    path = tmp_path_factory.mktemp("fold") / "tiny.onnx"
    export_onnx(model.eval(), card, path, check=False)
    export_torchscript(model, card, path)
    return path.parent


@pytest.fixture()
def exported(export_dir: Path, tmp_path: Path, one_torch_thread: None) -> Path:
    """A fresh copy of the tiny model, and a (random) head recorded against its ONNX file."""
    for name in ("tiny.onnx", "tiny.json", "tiny.pt"):
        shutil.copy(export_dir / name, tmp_path / name)
    path = tmp_path / "tiny.onnx"
    dim = read_onnx_card(path).embedding_dim or 0
    write_head(head_path_for(path), dim, sha256_file(path))
    return path


def _pixels(n: int = 5) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((n, 1, 32, 32)).astype(np.float32)


def test_folded_onnx_outputs_the_projection_and_leaves_the_rest_untouched(exported: Path) -> None:
    # given the model's outputs before folding
    before = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    logits, embedding = before.run(["logits", "embedding"], {"input": _pixels()})
    # when
    reports = fold_model(exported)
    # then: same logits and embeddings, bit for bit, and gus_proj = embedding @ w1
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["logits", "embedding", "gus_proj"]
    got = session.run(None, {"input": _pixels()})
    assert np.array_equal(got[0], logits) and np.array_equal(got[1], embedding)
    w1 = np.load(head_path_for(exported))["w1"]
    np.testing.assert_allclose(got[2], embedding @ w1, atol=1e-4, rtol=0)
    assert [r.path.suffix for r in reports] == [".onnx", ".pt"]
    assert all(r.max_abs_diff <= 1e-4 for r in reports)


def test_card_names_the_head_in_file_sidecar_and_twin(exported: Path) -> None:
    head = head_path_for(exported)
    fold_model(exported)
    card = read_onnx_card(exported)
    assert card.outputs == ("logits", "embedding", "gus_proj")
    assert card.gus_head is not None and card.gus_head.dim == H
    assert card.gus_head.sha256 == sha256_file(head) and card.gus_head.file == head.name
    assert read_sidecar(exported, require_sha=True) == card
    with open_backend(exported.with_suffix(".pt")) as backend:
        assert backend.card == card


@pytest.mark.parametrize("suffix", [".onnx", ".pt"])
def test_backends_return_the_folded_projection(exported: Path, suffix: str) -> None:
    fold_model(exported)
    w1 = np.load(head_path_for(exported))["w1"]
    with open_backend(exported.with_suffix(suffix)) as backend:
        out = backend.infer(_pixels())
        empty = backend.infer(np.zeros((0, 1, 32, 32), np.float32))
    assert out.projection is not None and out.embedding is not None
    np.testing.assert_allclose(out.projection, out.embedding @ w1, atol=1e-4, rtol=0)
    assert empty.projection is not None and empty.projection.shape == (0, H)


def test_fp16_graph_for_tensorrt_keeps_the_projection_output(exported: Path) -> None:
    # the fp16 ONNX graph is what TensorRT engines are built from; ORT runs it on the CPU here
    fold_model(exported)
    half = to_fp16(onnx.load(str(exported)))
    session = ort.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = {o.name: o.type for o in session.get_outputs()}
    assert outputs["gus_proj"] == "tensor(float)"
    embedding, proj = session.run(["embedding", "gus_proj"], {"input": _pixels()})
    w1 = np.load(head_path_for(exported))["w1"]
    scale = np.abs(embedding @ w1).max()
    assert np.abs(proj - embedding @ w1).max() <= 2e-2 * scale


def test_folding_again_replaces_the_projection(exported: Path) -> None:
    fold_model(exported)
    # given a rebuilt head, trained on the folded model
    dim = read_onnx_card(exported).embedding_dim or 0
    new_head = write_head(head_path_for(exported), dim, sha256_file(exported), seed=3)
    # when
    fold_model(exported)
    # then: one projection node, with the new head's weights
    proto = onnx.load(str(exported))
    assert sum(n.op_type == "MatMul" and "gus_proj" in n.output for n in proto.graph.node) == 1
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    embedding, proj = session.run(["embedding", "gus_proj"], {"input": _pixels()})
    np.testing.assert_allclose(proj, embedding @ np.load(new_head)["w1"], atol=1e-4, rtol=0)


def test_head_for_another_model_is_refused(exported: Path) -> None:
    dim = read_onnx_card(exported).embedding_dim or 0
    write_head(head_path_for(exported), dim, "0" * 64)
    with pytest.raises(ModelError, match="another model"):
        fold_model(exported)


def test_smoother_accepts_the_folded_head_and_refuses_a_swapped_one(exported: Path) -> None:
    # given the folded model as the pipeline opens it
    fold_model(exported)
    with open_backend(exported) as backend:
        card, out = backend.card, backend.infer(_pixels(3))
    smoother = make_smoother("auto", model=exported, card=card)
    assert isinstance(smoother, GraphSmoother)
    # when the folded output feeds the smoother, or the smoother projects the embedding itself
    preds = Predictions(np.arange(3), np.full((3, C), 1 / C, np.float32), out.embedding)
    folded = Predictions(preds.track_id, preds.probs, out.embedding, out.projection)
    separate = GraphSmoother(model=exported, card=card)
    for t in range(4):
        a = smoother.smooth(folded, t / 30)
        b = separate.smooth(preds, t / 30)
        # then: the same probabilities
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-4, rtol=0)
    # and a head file that is not the folded one is refused
    write_head(head_path_for(exported), card.embedding_dim or 0, card.gus_head.base_sha256, seed=7)
    with pytest.raises(ModelError, match="not the head folded"):
        make_smoother("auto", model=exported, card=card)


def test_ensemble_of_folded_members_drops_their_projection(exported: Path) -> None:
    fold_model(exported)
    model, card = build_ensemble([exported, exported])
    assert card.outputs == ("logits", "embedding") and card.gus_head is None
    assert [o.name for o in model.graph.output] == ["logits", "embedding"]
    assert not any("gus" in n.name for n in model.graph.node)
