"""CUDA torch backend: the TorchScript model in fp16, channels_last, replayed as CUDA graphs.

The GPU path that runs on every NVIDIA GPU torch supports. One CUDA graph is captured per batch
size in ``sizes`` (largest first, sharing one memory pool); a call's faces are padded to the next
captured size (``pad_to_captured``), and batches above the largest size run in chunks. Each graph
takes float32 NCHW on the device and does the fp16/channels_last conversion and the float32
outputs itself, so a call is: copy into pinned memory, one non-blocking upload, one replay, one
non-blocking download, one stream sync.

An ``.onnx`` path runs the TorchScript ``.pt`` beside it (the trainer exports both).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fer_live.errors import ConfigError, ModelError, first_line
from fer_live.infer.backends.base import InferenceBackend
from fer_live.infer.backends.torch_backend import load_torchscript, read_torchscript_card
from fer_live.infer.card import ModelCard
from fer_live.infer.gpu import (
    PinnedStaging,
    cuda_device_name,
    import_torch_cuda,
    pad_to_captured,
    plan_chunks,
)
from fer_live.types import CUDA, Device, ModelOutput

__all__ = ["CAPTURE_SIZES", "CudaTorchBackend", "describe", "pad_to_captured", "torchscript_for"]

logger = logging.getLogger(__name__)

CAPTURE_SIZES = (1, 2, 4, 8, 16, 32, 64)
_WARMUP_RUNS = 3


def torchscript_for(path: Path) -> Path:
    """The TorchScript file to run for ``path``: itself, or the ``.pt`` beside an ``.onnx``."""
    path = Path(path)
    return path.with_suffix(".pt") if path.suffix.lower() == ".onnx" else path


def can_run(path: Path, device: Device) -> bool:
    """The ``auto`` probe: the TorchScript file for ``path`` exists (torch's CUDA is checked)."""
    return torchscript_for(path).is_file()


def describe() -> str:
    """One line for ``fer-live info``: the GPU this backend would use, or why it cannot run."""
    torch = import_torch_cuda(CUDA)
    return f"torch {torch.__version__}, fp16 CUDA graphs on {cuda_device_name(torch, CUDA)}"


def _as_outputs(result: Any) -> tuple[Any, ...]:
    if isinstance(result, dict):
        return tuple(result.values())
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


class _GraphModel:
    """The module in fp16/channels_last, eager or as one captured CUDA graph per batch size."""

    def __init__(self, torch: Any, module: Any, half: bool) -> None:
        self._torch = torch
        self._module = module
        self._half = half

    def forward(self, x: Any) -> tuple[Any, ...]:
        """float32 NCHW in, float32 outputs; the dtype/layout conversions run on the GPU."""
        torch = self._torch
        x = x.to(memory_format=torch.channels_last)
        if self._half:
            x = x.half()
        with torch.jit.optimized_execution(False):
            outputs = _as_outputs(self._module(x))
        return tuple(out.float() for out in outputs)

    def capture(self, inputs: Any, stream: Any, pool: Any) -> tuple[Any, tuple[Any, ...]]:
        """Warm up on ``stream``, then capture ``forward(inputs)`` as a CUDA graph."""
        torch = self._torch
        with torch.inference_mode():
            with torch.cuda.stream(stream):
                for _ in range(_WARMUP_RUNS):
                    self.forward(inputs)
            stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool, stream=stream):
                outputs = self.forward(inputs)
        return graph, outputs


class CudaTorchBackend(InferenceBackend):
    """Runs a TorchScript classifier on a CUDA GPU in fp16 with CUDA-graph replay.

    Args:
        path: The TorchScript ``.pt``/``.ts`` file, or an ``.onnx`` file with its ``.pt`` beside.
        device: ``"cuda"`` or ``"cuda:N"``.
        threads: Unused (the GPU does the work); accepted for the common backend signature.
        sizes: Batch sizes to capture; calls are padded to the next one.
        graphs: Capture CUDA graphs (False runs the same fp16 model eagerly).
        half: Run in fp16 (False keeps fp32).

    Raises:
        BackendUnavailable: torch or CUDA is missing.
        ModelError: The TorchScript file is missing, broken or does not match its card.
        ConfigError: A capture size is below 1.
    """

    name = "cuda"

    def __init__(
        self,
        path: Path,
        device: Device = CUDA,
        threads: int | None = None,
        *,
        sizes: Sequence[int] = CAPTURE_SIZES,
        graphs: bool = True,
        half: bool = True,
    ) -> None:
        self.device = str(device)
        torch = import_torch_cuda(device)
        self._torch = torch
        self.path = torchscript_for(path)
        self.sizes = tuple(sorted(set(sizes)))
        if not self.sizes or self.sizes[0] < 1:
            raise ConfigError(f"capture sizes must be >= 1, got {list(sizes)}")
        module, self.card = self._load(torch, half)
        self._model = _GraphModel(torch, module, half)
        self._stream = torch.cuda.Stream(device=self.device)
        self._inputs = torch.zeros((self.sizes[-1], *self.input_shape), device=self.device)
        self._stream.wait_stream(torch.cuda.current_stream(self.device))
        self._graphs: dict[int, tuple[Any, tuple[Any, ...]]] = {}
        widths = self._probe()
        if graphs:
            self._graphs = self._capture_all()
        self._staging = PinnedStaging(torch, self.sizes[-1], self.input_shape, widths)

    def _probe(self) -> list[int]:
        """Run one eager batch so a model/card mismatch fails at load; returns output widths."""
        try:
            with self._torch.cuda.stream(self._stream):
                outputs = self._run(self.sizes[0])
            self._stream.synchronize()
        except Exception as exc:
            reason = first_line(exc)
            raise ModelError(f"{self.path} does not run on its card's input: {reason}") from None
        if outputs[0].ndim != 2 or outputs[0].shape[1] != self.card.num_classes:
            raise ModelError(
                f"{self.path} returns logits of shape {tuple(outputs[0].shape)}, its card has"
                f" {self.card.num_classes} labels"
            )
        return [int(np.prod(out.shape[1:])) for out in outputs]

    def _load(self, torch: Any, half: bool) -> tuple[Any, ModelCard]:
        if not self.path.is_file():
            raise ModelError(f"TorchScript model not found: {self.path} (the cuda backend runs it)")
        card = read_torchscript_card(self.path)  # before torch runs any of the file
        module = load_torchscript(torch, self.path, self.device)
        module.eval()
        if half:
            module.half()
        module.to(memory_format=torch.channels_last)
        return module, card

    def _capture_all(self) -> dict[int, tuple[Any, tuple[Any, ...]]]:
        """One graph per size, largest first so the smaller ones reuse its memory pool."""
        torch = self._torch
        graphs: dict[int, tuple[Any, tuple[Any, ...]]] = {}
        pool = None
        try:
            for size in reversed(self.sizes):
                graphs[size] = self._model.capture(self._inputs[:size], self._stream, pool)
                pool = graphs[size][0].pool()
        except Exception as exc:  # capture fails for models with host syncs or dynamic control
            reason = first_line(exc)
            raise ModelError(f"cannot capture {self.path} as a CUDA graph: {reason}") from None
        torch.cuda.synchronize(self.device)
        return graphs

    def _run(self, size: int) -> tuple[Any, ...]:
        """Run the model on the first ``size`` rows of the device input (on the stream)."""
        torch = self._torch
        if size in self._graphs:
            graph, outputs = self._graphs[size]
            graph.replay()
            return outputs
        with torch.inference_mode():
            return self._model.forward(self._inputs[:size])

    def _infer_impl(self, pixels: np.ndarray) -> ModelOutput:
        torch = self._torch
        parts: list[list[np.ndarray]] = []
        pad = lambda rows: pad_to_captured(rows, self.sizes)  # noqa: E731 - one-line policy
        try:
            with torch.cuda.stream(self._stream):
                for chunk in plan_chunks(len(pixels), self.sizes[-1], pad):
                    self._staging.upload(pixels[chunk.start : chunk.stop], self._inputs)
                    self._staging.download(self._run(chunk.padded), chunk.rows)
                    self._stream.synchronize()
                    parts.append(self._staging.results(chunk.rows))
        except Exception as exc:
            raise ModelError(f"cuda inference failed for {self.path}: {first_line(exc)}") from None
        outputs = [np.concatenate(column) for column in zip(*parts, strict=True)]
        return self._named_output(outputs)

    def close(self) -> None:
        """Drop the graphs, buffers and module (torch frees the device memory)."""
        for key in ("_graphs", "_model", "_inputs", "_staging"):
            self.__dict__.pop(key, None)
