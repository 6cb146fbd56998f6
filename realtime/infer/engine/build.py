"""TensorRT engine building: parse ONNX, configure, build, serialize, inspect.

Works with full TensorRT and TensorRT-RTX (see ``fer_live.infer.engine.trt_lib.import_tensorrt``).
Precision follows strong typing (TensorRT 11, TensorRT-RTX): fp16 engines are built from an fp16
ONNX graph (``fer_live.infer.engine.onnx_fp16``). INT8 uses the implicit-quantization calibrator,
which only TensorRT 10 and older have; newer libraries need an explicitly quantized (Q/DQ) ONNX
model. TensorRT-RTX can build for a compute capability other than the current GPU's (even
without a GPU), which is how engines are built ahead of time and how the CPU tests exercise the
builder.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from fer_live.errors import BackendUnavailable, ConfigError, ModelError, first_line
from fer_live.infer.engine.trt_lib import TrtLib, deserialize, make_logger

WORKSPACE_BYTES = 1 << 30


@dataclass(frozen=True)
class BuildSpec:
    """What to build.

    Attributes:
        input_name: The ONNX input tensor's name.
        input_shape: Per-sample input shape (C, S, S).
        profile: (min, opt, max) batch sizes of the optimization profile.
        precision: ``fp32``, ``fp16`` or ``int8`` (the ONNX graph already has the fp16 types).
        compute_capability: Target GPU as ``"8.9"``, or None for the GPU in this machine.
    """

    input_name: str
    input_shape: tuple[int, int, int]
    profile: tuple[int, int, int]
    precision: str
    compute_capability: str | None = None


def supports_int8(lib: TrtLib) -> bool:
    """Whether the library still has implicit INT8 calibration (TensorRT <= 10)."""
    trt = lib.module
    return hasattr(trt, "IInt8EntropyCalibrator2") and hasattr(trt.BuilderFlag, "INT8")


def _network_flags(lib: TrtLib, strongly_typed: bool) -> int:
    flag = getattr(lib.module.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 1 << int(flag) if strongly_typed and flag is not None else 0


def _parse(lib: TrtLib, network: Any, trt_logger: Any, onnx_bytes: bytes) -> Any:
    parser = lib.module.OnnxParser(network, trt_logger)
    if not parser.parse(onnx_bytes):
        errors = [str(parser.get_error(i).desc()) for i in range(parser.num_errors)]
        raise ModelError(f"{lib.label} cannot parse the ONNX model: {'; '.join(errors)[:300]}")
    return parser


def _set_compute_capability(lib: TrtLib, config: Any, target: str | None) -> None:
    if target is None:
        return
    if not lib.rtx:
        raise ConfigError(
            "only TensorRT-RTX builds for another GPU (--compute-capability); "
            "full TensorRT builds for the GPU in this machine"
        )
    name = "SM" + target.replace(".", "")
    members = lib.module.ComputeCapability.__members__
    if name not in members:
        known = ", ".join(f"{m[2:-1]}.{m[-1]}" for m in members if m.startswith("SM"))
        raise ConfigError(
            f"{lib.label} cannot target compute capability {target}; it targets {known}"
        )
    config.num_compute_capabilities = 1
    config.set_compute_capability(members[name], 0)


def _configure(lib: TrtLib, builder: Any, spec: BuildSpec, calibrator: Any) -> Any:
    trt = lib.module
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    profile = builder.create_optimization_profile()
    low, opt, high = ((batch, *spec.input_shape) for batch in spec.profile)
    profile.set_shape(spec.input_name, low, opt, high)
    config.add_optimization_profile(profile)
    _set_compute_capability(lib, config, spec.compute_capability)
    if spec.precision == "int8":
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator
    return config


def build_plan(
    lib: TrtLib, onnx_bytes: bytes, spec: BuildSpec, calibrator: Any = None
) -> tuple[bytes, list[dict[str, str]]]:
    """Parse an ONNX model and build a serialized engine.

    Args:
        lib: The TensorRT library.
        onnx_bytes: The serialized ONNX model (already fp16 for ``precision="fp16"``).
        spec: Input, profile, precision and target.
        calibrator: An INT8 calibrator (``make_calibrator``) for ``precision="int8"``.

    Returns:
        The plan bytes and the parsed network's layers (name, type, output dtype).

    Raises:
        ModelError: The model does not parse or the build fails.
        ConfigError: The precision or target is not supported by this library.
    """
    if spec.precision == "int8" and (calibrator is None or not supports_int8(lib)):
        raise ConfigError(
            f"int8 needs a calibration set and TensorRT <= 10; {lib.label} needs an explicitly "
            "quantized (Q/DQ) ONNX model"
        )
    trt_logger = make_logger(lib.module)
    builder = lib.module.Builder(trt_logger)
    network = builder.create_network(_network_flags(lib, spec.precision != "int8"))
    _parser = _parse(lib, network, trt_logger, onnx_bytes)  # the network refers to it
    config = _configure(lib, builder, spec, calibrator)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        reason = trt_logger.last_error or "build_serialized_network returned None"
        raise ModelError(f"{lib.label} engine build failed: {first_line(reason)}")
    return bytes(plan), network_layers(network)


def network_layers(network: Any) -> list[dict[str, str]]:
    """Name, type and first output dtype of each layer of a parsed network."""
    layers = []
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        dtype = layer.get_output(0).dtype if layer.num_outputs else None
        layers.append(
            {"name": layer.name, "type": _enum_name(layer.type), "dtype": _enum_name(dtype)}
        )
    return layers


def precision_counts(layers: list[dict[str, str]]) -> dict[str, int]:
    """How many compute layers (not constants or shape plumbing) run in each dtype."""
    plumbing = {"CONSTANT", "SHAPE", "GATHER", "CONCATENATION", "SHUFFLE", "CAST"}
    counts = Counter(layer["dtype"] for layer in layers if layer["type"] not in plumbing)
    return dict(sorted(counts.items()))


def _enum_name(value: Any) -> str:
    return "none" if value is None else str(getattr(value, "name", value)).split(".")[-1]


def inspect_plan(lib: TrtLib, plan: bytes) -> dict[str, Any]:
    """The engine's layers as TensorRT reports them (needs a GPU whose runtime takes the plan).

    Returns:
        ``{"layers": [...]}`` from the engine inspector, or ``{"error": why}``.
    """
    try:
        _runtime, engine = deserialize(lib, plan, "the engine")
        inspector = engine.create_engine_inspector()
        text = inspector.get_engine_information(lib.module.LayerInformationFormat.JSON)
    except (BackendUnavailable, ModelError) as exc:
        return {"error": str(exc)}
    except Exception as exc:  # native errors: report, never crash the compile command
        return {"error": first_line(exc)}
    info = json.loads(text)
    return {"layers": info.get("Layers", info)}


def tiny_relu_plan(lib: TrtLib) -> bytes:
    """A one-layer engine (ReLU over ``x`` of shape (B, 8), B in 1..4) for the runtime probe."""
    trt = lib.module
    trt_logger = make_logger(trt)
    builder = trt.Builder(trt_logger)
    network = builder.create_network(_network_flags(lib, True))
    x = network.add_input("x", trt.DataType.FLOAT, (-1, 8))
    y = network.add_activation(x, trt.ActivationType.RELU).get_output(0)
    y.name = "y"
    network.mark_output(y)
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 8), (1, 8), (4, 8))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise BackendUnavailable(f"{lib.label} cannot build on this GPU: {trt_logger.last_error}")
    return bytes(plan)


def make_calibrator(lib: TrtLib, batches: Iterator[np.ndarray], torch: Any, device: str) -> Any:
    """An entropy calibrator (TensorRT <= 10) fed float32 (B, C, S, S) batches."""
    trt = lib.module
    first = next(batches)

    # the base class comes from whichever TensorRT module loaded, so mypy cannot resolve it
    class _Calibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[name-defined]
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._pending: list[np.ndarray] = [first]
            self._device = torch.empty(first.shape, dtype=torch.float32, device=device)

        def get_batch_size(self) -> int:
            return int(first.shape[0])

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = self._pending.pop() if self._pending else next(batches, None)
            if batch is None or batch.shape != first.shape:
                return None
            self._device.copy_(torch.from_numpy(batch))
            return [int(self._device.data_ptr())]

        def read_calibration_cache(self) -> None:
            return None

        def write_calibration_cache(self, cache: Any) -> None:
            return None

    return _Calibrator()
