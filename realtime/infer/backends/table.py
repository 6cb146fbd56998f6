"""The one table of inference backends; every list of backends elsewhere is derived from it.

Adding a backend is one ``BackendEntry`` in ``BACKENDS`` plus its class. The names accepted by
``--backend``, the suffixes ``auto`` understands, the ``auto`` preference per suffix, which
backends need a GPU and the ``fer-live info`` rows all come from here. Classes, descriptions
and probes are named by import path (``"module:attribute"``) and imported only when used, so
the CLI checks ``--backend`` without loading onnxruntime, torch or TensorRT. This module imports
only the shared errors.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fer_live.errors import ConfigError

if TYPE_CHECKING:  # typing only: the backends import numpy and the card machinery
    from fer_live.infer.backends.base import InferenceBackend
    from fer_live.types import Device

AUTO = "auto"


class BackendClass(Protocol):
    """What ``open_backend`` calls: a backend class's constructor."""

    def __call__(
        self, path: Path, device: Device, threads: int | None
    ) -> InferenceBackend: ...  # pragma: no cover


@dataclass(frozen=True)
class BackendEntry:
    """One inference backend.

    Attributes:
        name: The ``--backend`` value.
        backend: The ``InferenceBackend`` subclass, or its ``"module:Class"`` import path.
        suffixes: Model file suffixes it reads (lower case, with the dot).
        rank: ``auto`` tries the backends that read a file in rising rank; the last one tried
            is the fallback, used even when its probe says no (its load error then says why).
        needs_gpu: Runs on a CUDA GPU only; ``auto`` considers it only for a GPU device.
        describe: ``() -> str`` for ``fer-live info``, or its import path.
        probe: For a GPU backend, ``(model path, cuda device) -> bool``: whether it can run
            that model here (or its import path). None counts as "cannot".
    """

    name: str
    backend: BackendClass | str
    suffixes: tuple[str, ...]
    rank: int
    needs_gpu: bool
    describe: Callable[[], str] | str
    probe: Callable[[Path, Device], bool] | str | None = None

    def load_class(self) -> BackendClass:
        """The backend class (imported now when the entry names it by path)."""
        return _resolve(self.backend)

    def load_describe(self) -> Callable[[], str]:
        return _resolve(self.describe)

    def load_probe(self) -> Callable[[Path, Device], bool] | None:
        return None if self.probe is None else _resolve(self.probe)


def _resolve(target: Any) -> Any:
    if not isinstance(target, str):
        return target
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


# Order is the order of ``--backend`` choices and of ``fer-live info`` rows.
BACKENDS: dict[str, BackendEntry] = {
    "onnx": BackendEntry(
        "onnx",
        "fer_live.infer.backends.ort:OnnxBackend",
        (".onnx",),
        rank=2,
        needs_gpu=False,
        describe="fer_live.infer.backends.ort:describe",
    ),
    "torch": BackendEntry(
        "torch",
        "fer_live.infer.backends.torch_backend:TorchBackend",
        (".pt", ".ts"),
        rank=2,
        needs_gpu=False,
        describe="fer_live.infer.backends.torch_backend:describe",
    ),
    "tensorrt": BackendEntry(
        "tensorrt",
        "fer_live.infer.backends.trt:TensorRTBackend",
        (".engine", ".plan", ".onnx"),  # an .onnx model is compiled through the engine cache
        rank=0,
        needs_gpu=True,
        describe="fer_live.infer.backends.trt:describe",
        probe="fer_live.infer.backends.trt:can_run",
    ),
    "cuda": BackendEntry(
        "cuda",
        "fer_live.infer.backends.cuda_torch:CudaTorchBackend",
        (".pt", ".ts", ".onnx"),  # for an .onnx model it runs the TorchScript .pt beside it
        rank=1,
        needs_gpu=True,
        describe="fer_live.infer.backends.cuda_torch:describe",
        probe="fer_live.infer.backends.cuda_torch:can_run",
    ),
}


def backend_names() -> tuple[str, ...]:
    """The backend names, in table order."""
    return tuple(BACKENDS)


def backend_choices() -> tuple[str, ...]:
    """What ``--backend`` accepts: ``auto`` and every backend name."""
    return (AUTO, *BACKENDS)


def check_backend(name: str) -> str:
    """``name``, when ``--backend`` accepts it.

    Raises:
        ConfigError: Neither ``auto`` nor a backend name (the message lists them).
    """
    if name != AUTO and name not in BACKENDS:
        raise ConfigError(f"--backend must be one of {', '.join(backend_choices())}, got {name!r}")
    return name


def gpu_backends() -> tuple[str, ...]:
    """The backends that run on a CUDA GPU only."""
    return tuple(name for name, entry in BACKENDS.items() if entry.needs_gpu)


def model_suffixes() -> tuple[str, ...]:
    """Every suffix some backend reads, in table order without repeats."""
    return tuple(dict.fromkeys(s for entry in BACKENDS.values() for s in entry.suffixes))


def preference(suffix: str) -> tuple[str, ...]:
    """The backends that read ``suffix`` in ``auto``'s order (rising rank); empty if none."""
    readers = [entry for entry in BACKENDS.values() if suffix.lower() in entry.suffixes]
    return tuple(entry.name for entry in sorted(readers, key=lambda entry: entry.rank))


def backend_help() -> str:
    """The ``--backend`` help text."""
    *first, last = backend_choices()
    order = ", else ".join(preference(".onnx"))
    return f"{', '.join(first)} or {last} (auto on a GPU device: {order})."
