"""Convert a float32 ONNX classifier to float16 with float32 inputs and outputs.

TensorRT 11 and TensorRT-RTX build *strongly typed* networks only: the precision of every layer
is the ONNX type, and the old ``BuilderFlag.FP16`` is gone. So an fp16 engine is built from an
fp16 ONNX graph. This converter handles the operators of the CNN classifiers fer-live ships
(convolutions, pooling, elementwise, GEMM/MatMul, reshapes); other operators raise a
``ModelError`` that points at ``--precision fp32``.

What it does: every float32 initializer and ``Constant`` becomes float16; each float32 graph
input gets a ``Cast`` to float16 after it and each float32 graph output a ``Cast`` back to
float32, so callers still feed and read float32; stale ``value_info`` is dropped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fer_live.errors import BackendUnavailable, ModelError

# Operators whose float inputs may all be float16 (no float32-only scale/ROI inputs).
FP16_SAFE_OPS = frozenset(
    {
        "Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Constant", "Conv",
        "Div", "Dropout", "Elu", "Flatten", "Gather", "Gemm", "GlobalAveragePool",
        "GlobalMaxPool", "HardSigmoid", "HardSwish", "Identity", "LeakyRelu", "MatMul",
        "MaxPool", "Mul", "Pad", "PRelu", "ReduceMean", "Relu", "Reshape", "Shape", "Sigmoid",
        "Slice", "Softmax", "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze",
    }
)  # fmt: skip
_SUFFIX = "__fp16"


def import_onnx() -> Any:
    """Import onnx or raise BackendUnavailable with the install hint."""
    try:
        import onnx
    except ImportError:
        hint = 'pip install "fer-live[tensorrt]"'
        raise BackendUnavailable(f"onnx is not installed: {hint}") from None
    return onnx


def unsupported_ops(model: Any) -> list[str]:
    """Operator types in ``model`` that the converter does not handle, sorted."""
    return sorted({node.op_type for node in model.graph.node} - FP16_SAFE_OPS)


def to_fp16(model: Any) -> Any:
    """A float16 copy of a float32 ONNX model that keeps float32 graph inputs and outputs.

    Args:
        model: ``onnx.ModelProto`` (not modified).

    Returns:
        The converted ``onnx.ModelProto``, checked with ``onnx.checker``.

    Raises:
        ModelError: The model has operators the converter does not handle.
    """
    onnx = import_onnx()
    bad = unsupported_ops(model)
    if bad:
        raise ModelError(f"fp16 conversion does not handle {', '.join(bad)}; use --precision fp32")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    _convert_initializers(onnx, graph)
    _convert_constants(onnx, graph)
    _cast_inputs(onnx, graph)
    _cast_outputs(onnx, graph)
    del graph.value_info[:]
    onnx.checker.check_model(out)
    return out


def _half(onnx: Any, tensor: Any) -> Any:
    array = onnx.numpy_helper.to_array(tensor)
    return onnx.numpy_helper.from_array(array.astype(np.float16), tensor.name)


def _convert_initializers(onnx: Any, graph: Any) -> None:
    for index, tensor in enumerate(graph.initializer):
        if tensor.data_type == onnx.TensorProto.FLOAT:
            graph.initializer[index].CopyFrom(_half(onnx, tensor))


def _convert_constants(onnx: Any, graph: Any) -> None:
    for node in graph.node:
        if node.op_type != "Constant":
            continue
        for attr in node.attribute:
            if attr.name == "value" and attr.t.data_type == onnx.TensorProto.FLOAT:
                attr.t.CopyFrom(_half(onnx, attr.t))
            elif attr.name in ("value_float", "value_floats"):
                raise ModelError(f"Constant {node.name!r} uses {attr.name}; use --precision fp32")


def _rename_uses(graph: Any, old: str, new: str, *, outputs: bool) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        if outputs:
            for i, name in enumerate(node.output):
                if name == old:
                    node.output[i] = new


def _is_float(onnx: Any, value: Any) -> bool:
    return bool(value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT)


def _cast_inputs(onnx: Any, graph: Any) -> None:
    initializers = {tensor.name for tensor in graph.initializer}
    casts = []
    for value in graph.input:
        if value.name in initializers or not _is_float(onnx, value):
            continue
        half_name = value.name + _SUFFIX
        _rename_uses(graph, value.name, half_name, outputs=False)
        casts.append(
            onnx.helper.make_node(
                "Cast", [value.name], [half_name], to=onnx.TensorProto.FLOAT16,
                name=f"cast_{value.name}_to_fp16",
            )
        )  # fmt: skip
    for position, node in enumerate(casts):
        graph.node.insert(position, node)


def _cast_outputs(onnx: Any, graph: Any) -> None:
    for value in graph.output:
        if not _is_float(onnx, value):
            continue
        half_name = value.name + _SUFFIX
        _rename_uses(graph, value.name, half_name, outputs=True)
        graph.node.append(
            onnx.helper.make_node(
                "Cast", [half_name], [value.name], to=onnx.TensorProto.FLOAT,
                name=f"cast_{value.name}_to_fp32",
            )
        )  # fmt: skip
