"""Which backend ``--backend auto`` runs: a pure decision over what this machine can do.

The probing (can TensorRT build and run an engine here? does torch see a GPU?) lives in
``fer_live.infer.backends``; this module only decides, so the rules are testable on any machine.

Rules for ``auto``, as the suffixes and ranks in ``fer_live.infer.backends.table`` give them (the
backends that read the file in rising rank; the last is the fallback):

* ``.engine``/``.plan`` files only run on TensorRT.
* TorchScript (``.pt``/``.ts``) runs on the CUDA torch backend when it is usable, else on torch.
* ONNX runs on TensorRT when an engine can be built and run on this GPU, else on the CUDA torch
  backend (it needs the TorchScript ``.pt`` beside the ``.onnx``), else on ONNX Runtime.

On a CPU-only machine, or with ``--device cpu``, the GPU backends are unavailable, so ``auto``
picks exactly what the file suffix picked before: ONNX Runtime for ``.onnx``, torch for ``.pt``.
"""

from __future__ import annotations

from collections.abc import Mapping

from fer_live.errors import ModelError
from fer_live.infer.backends import table as backend_table
from fer_live.types import CPU, CUDA, Device


def candidate_backends(
    available: Mapping[str, bool], requested: str, model_suffix: str
) -> list[str]:
    """The backends to try, in order: the available preferred ones, then the fallback.

    Arguments as for ``choose_backend``; an explicit (non-``auto``) request is the only
    candidate. ``open_backend`` tries them in order, so a model that TensorRT cannot build
    still runs on the next backend.

    Raises:
        ConfigError: ``requested`` is not ``auto`` or a known backend.
        ModelError: ``auto`` cannot handle this file suffix.
    """
    if backend_table.check_backend(requested) != backend_table.AUTO:
        return [requested]
    order = backend_table.preference(model_suffix)
    if not order:
        known = ", ".join(backend_table.model_suffixes())
        raise ModelError(
            f"cannot pick a backend for a {model_suffix!r} file: suffix not one of {known}"
        )
    chosen = [name for name in order[:-1] if available.get(name, False)]
    return [*chosen, order[-1]]


def choose_backend(available: Mapping[str, bool], requested: str, model_suffix: str) -> str:
    """Pick the backend that runs a model.

    Args:
        available: For each backend name, whether it can run this model on the requested
            device (missing names count as unavailable).
        requested: ``"auto"`` or a backend name from ``backend_table.BACKENDS``.
        model_suffix: The model file's suffix, e.g. ``".onnx"`` (case-insensitive).

    Returns:
        A backend name: the first of ``candidate_backends``.

    Raises:
        ConfigError: ``requested`` is not ``auto`` or a known backend.
        ModelError: ``auto`` cannot handle this file suffix.

    Example:
        >>> choose_backend({"tensorrt": False, "cuda": True}, "auto", ".onnx")
        'cuda'
    """
    return candidate_backends(available, requested, model_suffix)[0]


def resolve_device(backend: str, device: Device) -> Device:
    """The device a chosen backend runs on.

    GPU backends run on the requested ``cuda[:N]``, or on ``cuda`` when the device is ``auto``
    or ``cpu`` (the flag's default; the backend's name already asks for the GPU). Other
    backends run on the requested device, or on the CPU for ``auto``.
    """
    if backend in backend_table.gpu_backends():
        return device if device.is_cuda else CUDA
    return CPU if device.kind == "auto" else device


def gpu_requested(device: Device) -> bool:
    """Whether ``auto`` may consider the GPU backends for this ``--device``."""
    return device.kind != "cpu"
