"""Inference backends and ``open_backend``, which picks one by name or file suffix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from realtime.backends import ort, torch_backend
from realtime.backends.base import InferenceBackend
from realtime.backends.ort import OnnxBackend
from realtime.backends.torch_backend import TorchBackend
from realtime.errors import ConfigError, FerLiveError, ModelError

__all__ = [
    "BACKENDS",
    "SUFFIXES",
    "InferenceBackend",
    "OnnxBackend",
    "TorchBackend",
    "available_backends",
    "open_backend",
]

BACKENDS: dict[str, type[InferenceBackend]] = {"onnx": OnnxBackend, "torch": TorchBackend}
SUFFIXES: dict[str, str] = {".onnx": "onnx", ".pt": "torch", ".ts": "torch"}
_DESCRIBE: dict[str, Callable[[], str]] = {"onnx": ort.describe, "torch": torch_backend.describe}


def available_backends() -> dict[str, str]:
    """Each backend's status for ``fer-live info``: version line, or why it is unavailable."""
    status = {}
    for name, describe in _DESCRIBE.items():
        try:
            status[name] = describe()
        except FerLiveError as exc:
            status[name] = f"unavailable: {exc}"
    return status


def _resolve_name(path: Path, backend: str) -> str:
    if backend != "auto":
        if backend not in BACKENDS:
            valid = ", ".join(["auto", *BACKENDS])
            raise ConfigError(f"unknown backend {backend!r}; valid: {valid}")
        return backend
    name = SUFFIXES.get(path.suffix.lower())
    if name is None:
        known = ", ".join(SUFFIXES)
        raise ModelError(f"cannot pick a backend for {path.name}: suffix not one of {known}")
    return name


def open_backend(
    path: Path, backend: str = "auto", device: str = "cpu", threads: int | None = None
) -> InferenceBackend:
    """Load a model file with the named backend, or pick one from the file suffix.

    Args:
        path: Model file (``.onnx``, or TorchScript ``.pt``/``.ts``).
        backend: ``"auto"`` or a key of ``BACKENDS``.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        threads: Intra-op threads; None lets the runtime decide.

    Returns:
        The loaded backend; use it as a context manager.

    Raises:
        ConfigError: Unknown backend name or a bad thread count.
        ModelError: The file is missing, broken or does not match its card.
        BackendUnavailable: The backend's package or the device is not available.

    Example:
        >>> with open_backend(Path("weights/fer_default.onnx")) as model:  # doctest: +SKIP
        ...     output = model.infer(pixels)
    """
    path = Path(path)
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    name = _resolve_name(path, backend)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    return BACKENDS[name](path, device=device, threads=threads)
