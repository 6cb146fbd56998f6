"""TensorRT backend: full TensorRT or TensorRT-RTX (``fer_live.infer.engine.trt_lib`` loads either).

The backend runs a fer-live engine file (``.engine``/``.plan``), or compiles an ``.onnx`` model
through the engine cache first (``fer_live.infer.engine.compile``). Device buffers are
torch CUDA tensors; a call is one pinned-memory upload, ``execute_async_v3`` on the backend's
stream and one download.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np

from fer_live.errors import BackendUnavailable, ModelError, first_line
from fer_live.infer.backends.base import InferenceBackend
from fer_live.infer.engine.build import tiny_relu_plan
from fer_live.infer.engine.file import read_engine
from fer_live.infer.engine.trt_lib import deserialize, import_tensorrt
from fer_live.infer.gpu import (
    PinnedStaging,
    cuda_device_name,
    import_torch_cuda,
    plan_chunks,
)
from fer_live.types import CUDA, Device, ModelOutput

logger = logging.getLogger(__name__)


@functools.cache
def runs_here(device: Device = CUDA) -> tuple[bool, str]:
    """Whether an engine built by the installed TensorRT runs on ``device`` (cached probe).

    Builds a one-layer engine (ReLU over 8 values), runs it and checks the result.

    Returns:
        (True, description) or (False, why not).
    """
    try:
        lib = import_tensorrt()
        torch = import_torch_cuda(device)
        _, engine = deserialize(lib, tiny_relu_plan(lib), "a probe engine")
        context = engine.create_execution_context()
        x = torch.linspace(-1, 1, 8, device=str(device)).reshape(1, 8)
        y = torch.empty_like(x)
        context.set_input_shape("x", (1, 8))
        context.set_tensor_address("x", x.data_ptr())
        context.set_tensor_address("y", y.data_ptr())
        stream = torch.cuda.Stream(device=str(device))
        # x is written on the default stream; a side stream does not wait for it by itself.
        stream.wait_stream(torch.cuda.current_stream(str(device)))
        ok = context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        if not ok or not torch.equal(y, x.clamp(min=0)):
            return False, f"{lib.label}: probe engine ran but gave wrong results"
    except (BackendUnavailable, ModelError) as exc:
        return False, str(exc)
    except Exception as exc:  # a native failure in the probe means "not here", never a crash
        return False, f"TensorRT probe failed: {first_line(exc)}"
    return True, f"{lib.label} runs on {cuda_device_name(torch, device)}"


def can_run(path: Path, device: Device) -> bool:
    """The ``auto`` probe: engines built by the installed TensorRT run on ``device``."""
    return runs_here(device)[0]


def describe() -> str:
    """One line for ``fer-live info``: library, and whether its engines run on this GPU."""
    lib = import_tensorrt()
    ok, why = runs_here("cuda")
    if ok:
        return why
    return f"{lib.label} (engines do not run here: {why})"


class TensorRTBackend(InferenceBackend):
    """Runs a TensorRT engine on a CUDA GPU.

    Args:
        path: A fer-live engine (``.engine``/``.plan``), or an ``.onnx`` model, which is
            compiled through the engine cache (built once, then loaded).
        device: ``"cuda"`` or ``"cuda:N"``.
        threads: Unused; accepted for the common backend signature.
        precision: Precision when compiling an ``.onnx`` model.

    Raises:
        BackendUnavailable: TensorRT, torch CUDA, or an engine runtime for this GPU is missing.
        ModelError: The engine is broken or does not match its card.
    """

    name = "tensorrt"

    def __init__(
        self,
        path: Path,
        device: Device = CUDA,
        threads: int | None = None,
        precision: str = "fp16",
    ) -> None:
        self._lib = import_tensorrt()
        self.device = str(device)
        torch = import_torch_cuda(device)
        self._torch = torch
        self.path = self._engine_path(Path(path), precision)
        engine_file = read_engine(self.path)
        self.card = engine_file.card
        with torch.cuda.device(torch.device(self.device)):
            self._runtime, self._engine = deserialize(self._lib, engine_file.plan, str(self.path))
            self._context = self._engine.create_execution_context()
            self._bind_tensors()

    def _engine_path(self, path: Path, precision: str) -> Path:
        if path.suffix.lower() != ".onnx":
            return path
        # Imported here: the engine cache (ONNX, calibration) is not needed to run an engine file.
        from fer_live.infer.engine.compile import compile_engine

        return compile_engine(path, precision=precision).path

    def _io_names(self) -> tuple[str, list[str]]:
        trt = self._lib.module
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1:
            raise ModelError(f"{self.path} must have one input, has {inputs}")
        wanted = [n for n in self.card.outputs if n in outputs]
        if len(wanted) != len(self.card.outputs):
            wanted = outputs[: len(self.card.outputs)]
        if not wanted:
            raise ModelError(f"{self.path} has no outputs")
        for name in [inputs[0], *wanted]:
            if self._engine.get_tensor_dtype(name) != trt.DataType.FLOAT:
                raise ModelError(f"{self.path}: tensor {name!r} must be float32")
        return inputs[0], wanted

    def _bind_tensors(self) -> None:
        torch = self._torch
        self._input_name, self._output_names = self._io_names()
        profile = self._engine.get_tensor_profile_shape(self._input_name, 0)
        low, high = tuple(profile[0]), tuple(profile[2])
        if tuple(low[1:]) != self.input_shape or tuple(high[1:]) != self.input_shape:
            raise ModelError(
                f"{self.path} input profile {low}..{high} does not match its card "
                f"(B, {', '.join(map(str, self.input_shape))})"
            )
        self.min_batch, self.max_batch = int(low[0]), int(high[0])
        self._inputs = torch.zeros((self.max_batch, *self.input_shape), device=self.device)
        self._context.set_input_shape(self._input_name, tuple(self._inputs.shape))
        self._outputs = []
        for name in self._output_names:
            shape = tuple(self._context.get_tensor_shape(name))
            self._outputs.append(torch.zeros(shape, device=self.device))
        self._context.set_tensor_address(self._input_name, self._inputs.data_ptr())
        for name, tensor in zip(self._output_names, self._outputs, strict=True):
            self._context.set_tensor_address(name, tensor.data_ptr())
        widths = [int(np.prod(t.shape[1:])) for t in self._outputs]
        self._staging = PinnedStaging(torch, self.max_batch, self.input_shape, widths)
        self._stream = torch.cuda.Stream(device=self.device)
        torch.cuda.synchronize(self.device)  # the zeroed buffers are ready before any call

    def _infer_impl(self, pixels: np.ndarray) -> ModelOutput:
        parts: list[list[np.ndarray]] = []
        pad = lambda rows: max(rows, self.min_batch)  # noqa: E731 - one-line policy
        with self._torch.cuda.stream(self._stream):
            for chunk in plan_chunks(len(pixels), self.max_batch, pad):
                self._staging.upload(pixels[chunk.start : chunk.stop], self._inputs)
                shape = (chunk.padded, *self.input_shape)
                self._context.set_input_shape(self._input_name, shape)
                if not self._context.execute_async_v3(self._stream.cuda_stream):
                    raise ModelError(f"TensorRT execution failed for {self.path}")
                self._staging.download(self._outputs, chunk.rows)
                self._stream.synchronize()
                parts.append(self._staging.results(chunk.rows))
        outputs = [np.concatenate(column) for column in zip(*parts, strict=True)]
        return self._named_output(outputs)

    def close(self) -> None:
        """Free the context, engine, runtime and device buffers, in that order."""
        for key in ("_context", "_engine", "_runtime", "_inputs", "_outputs", "_staging"):
            self.__dict__.pop(key, None)
