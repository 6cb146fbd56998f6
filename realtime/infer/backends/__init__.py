"""Inference backends and ``open_backend``, which picks one by name, or for ``auto`` by what
this machine can run (``fer_live.infer.backends.select``)."""

from __future__ import annotations

import logging
from pathlib import Path

from fer_live.errors import BackendUnavailable, ConfigError, FerLiveError, ModelError
from fer_live.infer.backends import cuda_torch
from fer_live.infer.backends import select as backend_select
from fer_live.infer.backends.base import InferenceBackend
from fer_live.infer.backends.cuda_torch import CudaTorchBackend
from fer_live.infer.backends.ort import OnnxBackend
from fer_live.infer.backends.table import BACKENDS, gpu_backends
from fer_live.infer.backends.torch_backend import TorchBackend
from fer_live.infer.backends.trt import TensorRTBackend
from fer_live.types import CPU, CUDA, Device

__all__ = [
    "BACKENDS",
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


def available_backends() -> dict[str, str]:
    """Each backend's status for ``fer-live info``: version line, or why it is unavailable."""
    status = {}
    for name, entry in BACKENDS.items():
        try:
            status[name] = entry.load_describe()()
        except FerLiveError as exc:
            status[name] = f"unavailable: {exc}"
    return status


def _cuda_usable(device: Device) -> bool:
    try:
        cuda_torch.import_torch_cuda(device)
    except BackendUnavailable:
        return False
    return True


def probe_gpu_backends(path: Path, device: Device) -> dict[str, bool]:
    """Whether each GPU backend can run ``path`` on ``device`` (all False for ``cpu``).

    Each GPU backend's table entry has the probe: TensorRT counts when an engine built by the
    installed library runs on this GPU (a cached probe); the CUDA torch backend when torch sees
    the GPU and the TorchScript file exists.
    """
    names = gpu_backends()
    if not backend_select.gpu_requested(device):
        return dict.fromkeys(names, False)
    gpu = CUDA if device.kind == "auto" else device
    if not _cuda_usable(gpu):
        return dict.fromkeys(names, False)
    available = {}
    for name in names:
        probe = BACKENDS[name].load_probe()
        available[name] = probe is not None and probe(Path(path), gpu)
    return available


def auto_choice(path: Path, device: Device) -> tuple[str, str]:
    """(backend, device) that ``--backend auto`` picks first for ``path`` on ``device``."""
    available = probe_gpu_backends(path, device)
    name = backend_select.choose_backend(available, "auto", Path(path).suffix)
    return name, str(backend_select.resolve_device(name, device))


def auto_summary(model: Path) -> dict[str, str]:
    """``fer-live info`` rows: what ``--backend auto`` runs ``model`` with, and the engine cache."""
    rows = {}
    for device in (CPU, CUDA):
        try:
            name, run_on = auto_choice(model, device)
        except FerLiveError as exc:
            rows[f"backend auto (--device {device})"] = f"unavailable: {exc}"
            continue
        missed = device == "cuda" and name not in gpu_backends()
        note = " (no GPU backend usable here)" if missed else ""
        rows[f"backend auto (--device {device})"] = f"{name} on {run_on}{note}"
    from fer_live.infer.engine.compile import default_cache_dir  # not on the run path

    rows["engine cache"] = str(default_cache_dir())
    return rows


def open_backend(
    path: Path, backend: str = "auto", device: Device = CPU, threads: int | None = None
) -> InferenceBackend:
    """Load a model file with the named backend, or the best one this machine runs.

    With ``auto`` and a CUDA (or ``auto``) device, an ``.onnx`` model runs on TensorRT when an
    engine runs on this GPU (built once into the engine cache), else on the CUDA torch backend
    (the ``.pt`` beside it), else on ONNX Runtime; a backend that fails to load falls through
    to the next. With ``--device cpu`` ``auto`` picks by suffix: onnx or torch.

    Args:
        path: Model file (``.onnx``, TorchScript ``.pt``/``.ts``, engine ``.engine``/``.plan``);
            ``fer_live.infer.assets.resolve_model_path`` has checked that it is one.
        backend: ``"auto"`` or a key of ``BACKENDS`` (``fer_live.infer.backends.table``).
        device: Where to run: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
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
    for name in names[:-1]:
        try:
            return _open(name, path, device, threads)
        except (BackendUnavailable, ModelError) as exc:
            logger.warning("%s backend cannot run %s (%s); trying the next", name, path.name, exc)
    return _open(names[-1], path, device, threads)


def _open(name: str, path: Path, device: Device, threads: int | None) -> InferenceBackend:
    run_on = backend_select.resolve_device(name, device)
    logger.info("backend %s on %s for %s", name, run_on, path.name)
    return BACKENDS[name].load_class()(path, device=run_on, threads=threads)
