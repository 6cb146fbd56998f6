"""Several exported models as one ONNX graph: averaged probabilities, optional flip TTA inside.

Members must read the same input (size, channels, normalization, crop framing), so one crop
feeds them all. The graph outputs ``logits = log(mean_i softmax(logits_i))`` (softmax of it is
the averaged probability, so every backend and the card's decision rule treat it like any
model's logits) and ``embedding``, the members' embeddings side by side. With ``flip_tta`` each
member also sees the horizontally flipped face (its weights stored once, shared by both views)
and both views are averaged.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from fer_live.errors import ModelError
from fer_live.infer.card import CARD_KEY, ModelCard, write_sidecar
from fer_live.infer.decision import DecisionRule
from fer_live.trainer.export import read_onnx_card
from fer_live.trainer.fold_gus import strip_projection

OPSET = 17
SAME_INPUT = ("input_size", "channels", "mean", "std", "crop", "labels")


def _member_graph(path: Path) -> Any:
    import onnx

    model = strip_projection(onnx.load(str(path)))  # a member's folded head is not used here
    outputs = [o.name for o in model.graph.output]
    if outputs[:2] != ["logits", "embedding"]:
        raise ModelError(f"{path}: ensemble members need outputs logits, embedding; got {outputs}")
    return model


def _add_member(graph: Any, member: Any, prefix: str, views: list[str]) -> list[tuple[str, str]]:
    """Copy ``member`` into ``graph``: its weights once, its nodes once per input view.

    Returns:
        (logits, embedding) output names per view.
    """
    import onnx

    prefixed = onnx.compose.add_prefix(member, prefix)
    own_input = prefixed.graph.input[0].name
    weights = {init.name for init in prefixed.graph.initializer}
    graph.initializer.extend(prefixed.graph.initializer)
    outputs = []
    for v, view in enumerate(views):
        tag = f"v{v}_"

        def rename(name: str, tag: str = tag, view: str = view) -> str:
            if name == own_input:
                return view
            return name if not name or name in weights else tag + name

        for node in prefixed.graph.node:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.name = tag + node.name
            copy.input[:] = [rename(name) for name in node.input]
            copy.output[:] = [rename(name) for name in node.output]
            graph.node.append(copy)
        outputs.append((f"{tag}{prefix}logits", f"{tag}{prefix}embedding"))
    return outputs


def build_ensemble(paths: list[Path], flip_tta: bool = False) -> tuple[Any, ModelCard]:
    """The ensemble ONNX model and its card (decision rule reset: fit it with calibrate).

    Raises:
        ModelError: Fewer than one member, or members that do not share their input.
    """
    from onnx import TensorProto, helper

    if not paths:
        raise ModelError("an ensemble needs at least one member")
    cards = [read_onnx_card(p) for p in paths]
    for field in SAME_INPUT:
        values = {repr(getattr(c, field)) for c in cards}
        if len(values) > 1:
            raise ModelError(f"ensemble members differ in {field}: {sorted(values)}")
    first = cards[0]
    side, channels = first.input_size, first.channels
    graph = helper.make_graph(
        [],
        "fer_ensemble",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["B", channels, side, side])],
        [],
    )
    views = ["input"]
    if flip_tta:
        graph.initializer.extend(
            [
                helper.make_tensor("flip_starts", TensorProto.INT64, [1], [-1]),
                helper.make_tensor("flip_ends", TensorProto.INT64, [1], [-(2**62)]),
                helper.make_tensor("flip_axes", TensorProto.INT64, [1], [3]),
                helper.make_tensor("flip_steps", TensorProto.INT64, [1], [-1]),
            ]
        )
        graph.node.append(
            helper.make_node(
                "Slice",
                ["input", "flip_starts", "flip_ends", "flip_axes", "flip_steps"],
                ["input_flipped"],
            )
        )
        views.append("input_flipped")
    probs, embeddings = [], []
    for i, path in enumerate(paths):
        member_outputs = _add_member(graph, _member_graph(path), f"m{i}_", views)
        for v, (logits, embedding) in enumerate(member_outputs):
            graph.node.append(helper.make_node("Softmax", [logits], [f"m{i}v{v}_p"], axis=1))
            probs.append(f"m{i}v{v}_p")
            if v == 0:
                embeddings.append(embedding)
    graph.node.append(helper.make_node("Sum", probs, ["prob_sum"]))
    graph.initializer.append(helper.make_tensor("count", TensorProto.FLOAT, [], [len(probs)]))
    graph.node.append(helper.make_node("Div", ["prob_sum", "count"], ["prob_mean"]))
    graph.node.append(helper.make_node("Log", ["prob_mean"], ["logits"]))
    graph.node.append(helper.make_node("Concat", embeddings, ["embedding"], axis=1))
    dim = sum(c.embedding_dim or 0 for c in cards)
    graph.output.extend(
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", first.num_classes]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["B", dim]),
        ]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    card = replace(
        first,
        name="ensemble",
        outputs=("logits", "embedding"),
        gus_head=None,  # a member's folded head does not fit the ensemble's embedding
        arch="ensemble(" + ", ".join(c.arch or c.name for c in cards) + ")",
        embedding_dim=dim,
        decision=DecisionRule(),
        training={
            "members": [
                {"file": p.name, "card": c.name, "arch": c.arch}
                for p, c in zip(paths, cards, strict=True)
            ],
            "flip_tta": flip_tta,
            "combine": "mean of member softmax (log taken as logits)",
        },  # fmt: skip
        metrics={},
    )
    return model, card


def export_ensemble(paths: list[Path], out: Path, name: str, flip_tta: bool = False) -> Path:
    """Write the ensemble ONNX file (card embedded) and its sidecar."""
    import onnx

    model, card = build_ensemble(paths, flip_tta)
    card = replace(card, name=name)
    onnx.helper.set_model_props(model, {CARD_KEY: card.to_json()})
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    write_sidecar(card, out)
    return out
