"""A tiny ONNX classifier for tests, built with ``onnx.helper`` only (no torch).

Conv -> Relu -> GlobalAveragePool -> Flatten (= embedding) -> Gemm (= logits), 8 FERPlus labels,
1 x 32 x 32 input, fixed-seed random weights, the card embedded in the ONNX metadata and written
as a sidecar.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fer_live.infer.card import CARD_KEY, ModelCard, write_sidecar
from fer_live.trainer.data.ferplus import FERPLUS_LABELS

TINY_SIZE = 32
TINY_FILTERS = 8


def tiny_card(channels: int = 1, size: int = TINY_SIZE, labels: Sequence[str] = FERPLUS_LABELS):
    """The model card of the tiny test classifier."""
    return ModelCard(
        name="tiny_test",
        labels=tuple(labels),
        input_size=size,
        channels=channels,
        mean=(0.5,) * channels,
        std=(0.5,) * channels,
        embedding_dim=TINY_FILTERS,
        arch="tiny_conv",
        training={"note": "random weights for tests"},
    )


def build_tiny_onnx(
    path: Path,
    card: ModelCard | None = None,
    *,
    channels: int | None = None,
    size: int | None = None,
    num_classes: int | None = None,
    embed_card: bool = True,
    sidecar: bool = True,
    seed: int = 0,
) -> Path:
    """Write a tiny ONNX classifier; graph dims default to the card's but can be overridden.

    Overriding ``channels``/``size``/``num_classes`` builds a model that does NOT match its card,
    which the backend must reject.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    card = card or tiny_card()
    channels = channels or card.channels
    size = size or card.input_size
    num_classes = num_classes or card.num_classes
    rng = np.random.default_rng(seed)
    conv_w = rng.normal(0, 0.5, (TINY_FILTERS, channels, 3, 3)).astype(np.float32)
    conv_b = rng.normal(0, 0.1, (TINY_FILTERS,)).astype(np.float32)
    fc_w = rng.normal(0, 1.0, (num_classes, TINY_FILTERS)).astype(np.float32)
    fc_b = rng.normal(0, 0.1, (num_classes,)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["pixels", "conv_w", "conv_b"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("GlobalAveragePool", ["r1"], ["g1"]),
        helper.make_node("Flatten", ["g1"], ["embedding"], axis=1),
        helper.make_node("Gemm", ["embedding", "fc_w", "fc_b"], ["logits"], transB=1),
    ]
    inits = [
        numpy_helper.from_array(conv_w, "conv_w"),
        numpy_helper.from_array(conv_b, "conv_b"),
        numpy_helper.from_array(fc_w, "fc_w"),
        numpy_helper.from_array(fc_b, "fc_b"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_fer",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["B", channels, size, size])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", num_classes]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["B", TINY_FILTERS]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if embed_card:
        helper.set_model_props(model, {CARD_KEY: card.to_json()})
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    if sidecar:
        write_sidecar(card, path)
    return path
