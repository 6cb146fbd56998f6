"""Fold a GUS-T head's first-layer projection into an exported model: the ``gus_proj`` output.

``gus_proj = embedding @ w1`` (B, H) of the head beside the model (``<stem>.gus.npz``), computed
by the model itself, so the smoother does no D x H product per face. The ONNX file gets one
MatMul node on its ``embedding`` output (the rest of the graph is untouched, so embeddings stay
bit-identical and the head stays valid); the TorchScript twin is wrapped in a module that adds
the same product; TensorRT engines compiled from the ONNX file carry the output as well. The
card lists the output and names the head (``gus_head``: its file, sha256, the sha256 of the
model it was trained on, H); folding again, e.g. after rebuilding the head, replaces the old
projection.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fer_live.detect.models import sha256_file
from fer_live.errors import ModelError
from fer_live.infer.card import CARD_KEY, FoldedHead, ModelCard, write_sidecar
from fer_live.smooth.gus_head import GusHeadWeights, head_path_for
from fer_live.trainer.export import read_onnx_card

logger = logging.getLogger(__name__)

GUS_OUTPUT = "gus_proj"
_W1_NAME = "gus_w1"
_NODE_NAME = "gus_fold_matmul"
_PARITY_BATCH = 4


@dataclass(frozen=True)
class FoldReport:
    """A folded file and how far ``gus_proj`` is from ``embedding @ w1`` on random input."""

    path: Path
    max_abs_diff: float


def folded_card(card: ModelCard, head: Path, weights: GusHeadWeights) -> ModelCard:
    """``card`` with the ``gus_proj`` output and the head's provenance."""
    base = weights.meta.get("base_sha256")
    if not base:
        raise ModelError(f"{head} records no base model; rebuild it: fer-train methods gus-head")
    folded = FoldedHead(head.name, sha256_file(head), base, weights.hidden_dim)
    return replace(card, outputs=("logits", "embedding", GUS_OUTPUT), gus_head=folded)


def check_head_fits(model: Path, card: ModelCard, weights: GusHeadWeights) -> None:
    """Raise ModelError unless the head was trained on this model (before any earlier fold)."""
    if card.embedding_dim != weights.embedding_dim:
        raise ModelError(
            f"{model} embeds in {card.embedding_dim} dims, the head expects {weights.embedding_dim}"
        )
    base = weights.meta.get("base_sha256")
    earlier = card.gus_head.base_sha256 if card.gus_head is not None else None
    if base and base not in (sha256_file(model), earlier):
        raise ModelError(f"the GUS head was trained for another model than {model}")


def strip_projection(proto: Any) -> Any:
    """Remove a folded ``gus_proj`` output, its node and weight from an ONNX model (in place)."""
    graph = proto.graph
    keep_outputs = [o for o in graph.output if o.name != GUS_OUTPUT]
    keep_nodes = [n for n in graph.node if GUS_OUTPUT not in n.output]
    keep_weights = [w for w in graph.initializer if w.name != _W1_NAME]
    for field, kept in ((graph.output, keep_outputs), (graph.node, keep_nodes),
                        (graph.initializer, keep_weights)):  # fmt: skip
        kept = list(kept)
        del field[:]
        field.extend(kept)
    return proto


def fold_onnx(model: Path, head: Path | None = None) -> FoldReport:
    """Add ``gus_proj = embedding @ w1`` to an ONNX model, update its card and sidecar.

    Raises:
        ModelError: No ``embedding`` output, or a head trained for another model.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    head = head or head_path_for(model)
    weights = GusHeadWeights.load(head)
    card = read_onnx_card(model)
    check_head_fits(model, card, weights)
    proto = strip_projection(onnx.load(str(model)))
    graph = proto.graph
    embedding = next((o for o in graph.output if o.name == "embedding"), None)
    if embedding is None:
        raise ModelError(f"{model} has no 'embedding' output to fold the head onto")
    batch = embedding.type.tensor_type.shape.dim[0]
    graph.initializer.append(numpy_helper.from_array(weights.w1, _W1_NAME))
    graph.node.append(
        helper.make_node("MatMul", ["embedding", _W1_NAME], [GUS_OUTPUT], name=_NODE_NAME)
    )
    batch_dim = batch.dim_param or batch.dim_value or "batch"
    graph.output.append(
        helper.make_tensor_value_info(
            GUS_OUTPUT, TensorProto.FLOAT, [batch_dim, weights.hidden_dim]
        )
    )
    card = folded_card(card, head, weights)
    kept = [e for e in proto.metadata_props if e.key != CARD_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key, entry.value = CARD_KEY, card.to_json()
    onnx.checker.check_model(proto)
    onnx.save(proto, str(model))
    write_sidecar(card, model)
    return FoldReport(model, onnx_fold_error(model, weights.w1, card))


def onnx_fold_error(model: Path, w1: np.ndarray, card: ModelCard) -> float:
    """Max |gus_proj - embedding @ w1| of the ONNX model under ONNX Runtime on random input."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    x = _random_input(card)
    embedding, proj = session.run(["embedding", GUS_OUTPUT], {session.get_inputs()[0].name: x})
    return float(np.abs(proj - embedding @ w1).max())


def fold_torchscript(model: Path, card: ModelCard, w1: np.ndarray) -> FoldReport:
    """Wrap a TorchScript model so it also returns ``gus_proj``; ``card`` is the folded card.

    A model folded before is unwrapped first, so folding twice replaces the projection.
    """
    from fer_live.infer.backends.torch_backend import read_torchscript_card

    read_torchscript_card(model)  # a file without a valid card is refused before torch runs it
    module = torch.jit.load(str(model), map_location="cpu")
    inner = module.inner if hasattr(module, "inner") else module
    folded = torch.jit.script(FoldedProjection(inner, torch.from_numpy(w1.copy())))
    torch.jit.save(folded, str(model), _extra_files={"card.json": card.to_json()})
    with torch.no_grad():
        _, embedding, proj = folded(torch.from_numpy(_random_input(card)))
    error = float((proj - embedding @ torch.from_numpy(w1)).abs().max())
    return FoldReport(model, error)


class FoldedProjection(torch.nn.Module):
    """``(logits, embedding, embedding @ w1)`` of the wrapped model."""

    def __init__(self, inner: torch.nn.Module, w1: torch.Tensor) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("gus_w1", w1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        outputs = self.inner(x)
        embedding = outputs[1]
        return outputs[0], embedding, embedding @ self.gus_w1


def fold_model(model: Path, head: Path | None = None) -> list[FoldReport]:
    """Fold the head into ``model`` (.onnx) and into its TorchScript twin (.pt) when present."""
    head = head or head_path_for(model)
    reports = [fold_onnx(model, head)]
    twin = model.with_suffix(".pt")
    if twin.is_file():
        card = read_onnx_card(model)  # the folded card, shared with the twin
        reports.append(fold_torchscript(twin, card, GusHeadWeights.load(head).w1))
    for report in reports:
        logger.info(
            "folded %s into %s: max |error| %.2e", head.name, report.path, report.max_abs_diff
        )
    return reports


def _random_input(card: ModelCard, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (_PARITY_BATCH, card.channels, card.input_size, card.input_size)
    return rng.standard_normal(shape).astype(np.float32)
