"""Inference backends and ``open_backend``, which picks one by name, or for ``auto`` by what
this machine can run (``realtime.backend_select``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from realtime import backend_select
from realtime.backends import cuda_torch, ort, torch_backend, trt
from realtime.backends.base import InferenceBackend
from realtime.backends.cuda_torch import CudaTorchBackend
from realtime.backends.ort import OnnxBackend
from realtime.backends.torch_backend import TorchBackend
from realtime.backends.trt import TensorRTBackend
from realtime.errors import BackendUnavailable, ConfigError, FerLiveError, ModelError

__all__ = [
    "BACKENDS",
    "SUFFIXES",
    "CudaTorchBackend",
    "InferenceBackend",
    "OnnxBackend",
    "TensorRTBackend",
    "TorchBackend",
    "auto_choice",
    "auto_summary",
    "available_backends",
    "open_backend",
    "probe_gpu_backends",
]

logger = logging.getLogger(__name__)

BACKENDS: dict[str, type[InferenceBackend]] = {
    "onnx": OnnxBackend,
    "torch": TorchBackend,
    "tensorrt": TensorRTBackend,
    "cuda": CudaTorchBackend,
}
SUFFIXES: dict[str, str] = {
    ".onnx": "onnx",
    ".pt": "torch",
    ".ts": "torch",
    ".engine": "tensorrt",
    ".plan": "tensorrt",
}
_DESCRIBE: dict[str, Callable[[], str]] = {
    "onnx": ort.describe,
    "torch": torch_backend.describe,
    "tensorrt": trt.describe,
    "cuda": cuda_torch.describe,
}


def available_backends() -> dict[str, str]:
    """Each backend's status for ``fer-live info``: version line, or why it is unavailable."""
    status = {}
    for name, describe in _DESCRIBE.items():
        try:
            status[name] = describe()
        except FerLiveError as exc:
            status[name] = f"unavailable: {exc}"
    return status


def _cuda_usable(device: str) -> bool:
    try:
        cuda_torch.import_torch_cuda(device)
    except BackendUnavailable:
        return False
    return True


def probe_gpu_backends(path: Path, device: str) -> dict[str, bool]:
    """Whether the GPU backends can run ``path`` on ``device`` (all False for ``cpu``).

    TensorRT counts when an engine built by the installed library runs on this GPU (a cached
    probe); the CUDA torch backend when torch sees the GPU and the TorchScript file exists.
    """
    if not backend_select.gpu_requested(device):
        return {"tensorrt": False, "cuda": False}
    gpu = "cuda" if device == "auto" else device
    if not _cuda_usable(gpu):
        return {"tensorrt": False, "cuda": False}
    return {
        "tensorrt": trt.runs_here(gpu)[0],
        "cuda": cuda_torch.torchscript_for(path).is_file(),
    }


def auto_choice(path: Path, device: str) -> tuple[str, str]:
    """(backend, device) that ``--backend auto`` picks first for ``path`` on ``device``."""
    available = probe_gpu_backends(path, device)
    name = backend_select.choose_backend(available, "auto", Path(path).suffix)
    return name, backend_select.resolve_device(name, device)


def auto_summary(model: Path) -> dict[str, str]:
    """``fer-live info`` rows: what ``--backend auto`` runs ``model`` with, and the engine cache."""
    from realtime.compile import default_cache_dir

    rows = {}
    for device in ("cpu", "cuda"):
        try:
            name, run_on = auto_choice(model, device)
        except FerLiveError as exc:
            rows[f"backend auto (--device {device})"] = f"unavailable: {exc}"
            continue
        missed = device == "cuda" and name not in backend_select.GPU_BACKENDS
        note = " (no GPU backend usable here)" if missed else ""
        rows[f"backend auto (--device {device})"] = f"{name} on {run_on}{note}"
    rows["engine cache"] = str(default_cache_dir())
    return rows


def open_backend(
    path: Path, backend: str = "auto", device: str = "cpu", threads: int | None = None
) -> InferenceBackend:
    """Load a model file with the named backend, or the best one this machine runs.

    With ``auto`` and a CUDA (or ``auto``) device, an ``.onnx`` model runs on TensorRT when an
    engine runs on this GPU (built once into the engine cache), else on the CUDA torch backend
    (the ``.pt`` beside it), else on ONNX Runtime; a backend that fails to load falls through
    to the next. With ``--device cpu`` ``auto`` picks by suffix: onnx or torch.

    Args:
        path: Model file (``.onnx``, TorchScript ``.pt``/``.ts``, engine ``.engine``/``.plan``).
        backend: ``"auto"`` or a key of ``BACKENDS``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
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
    available = probe_gpu_backends(path, device) if backend == "auto" else {}
    names = backend_select.candidate_backends(available, backend, path.suffix)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    for name in names[:-1]:
        try:
            return _open(name, path, device, threads)
        except (BackendUnavailable, ModelError) as exc:
            logger.warning("%s backend cannot run %s (%s); trying the next", name, path.name, exc)
    return _open(names[-1], path, device, threads)


def _open(name: str, path: Path, device: str, threads: int | None) -> InferenceBackend:
    run_on = backend_select.resolve_device(name, device)
    logger.info("backend %s on %s for %s", name, run_on, path.name)
    return BACKENDS[name](path, device=run_on, threads=threads)
