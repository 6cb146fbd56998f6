"""Which backend ``--backend auto`` runs: a pure decision over what this machine can do.

The probing (can TensorRT build and run an engine here? does torch see a GPU?) lives in
``realtime.backends``; this module only decides, so the rules are testable on any machine.

Rules for ``auto``:

* ``.engine``/``.plan`` files only run on TensorRT.
* TorchScript (``.pt``/``.ts``) runs on the CUDA torch backend when it is usable, else on torch.
* ONNX runs on TensorRT when an engine can be built and run on this GPU, else on the CUDA torch
  backend (it needs the TorchScript ``.pt`` beside the ``.onnx``), else on ONNX Runtime.

On a CPU-only machine, or with ``--device cpu``, the GPU backends are unavailable, so ``auto``
picks exactly what the file suffix picked before: ONNX Runtime for ``.onnx``, torch for ``.pt``.
"""

from __future__ import annotations

from collections.abc import Mapping

from realtime.errors import ConfigError, ModelError

KNOWN_BACKENDS = ("onnx", "torch", "tensorrt", "cuda")
GPU_BACKENDS = ("tensorrt", "cuda")
ENGINE_SUFFIXES = (".engine", ".plan")
TORCHSCRIPT_SUFFIXES = (".pt", ".ts")
ONNX_SUFFIXES = (".onnx",)
# Preference order for each model format; the first available backend wins, the last is the
# fallback that is used even when the probe said "unavailable" (it then explains why at load).
_PREFERENCE: dict[str, tuple[str, ...]] = {
    **{suffix: ("tensorrt",) for suffix in ENGINE_SUFFIXES},
    **{suffix: ("cuda", "torch") for suffix in TORCHSCRIPT_SUFFIXES},
    **{suffix: ("tensorrt", "cuda", "onnx") for suffix in ONNX_SUFFIXES},
}


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
    if requested != "auto":
        if requested not in KNOWN_BACKENDS:
            valid = ", ".join(("auto", *KNOWN_BACKENDS))
            raise ConfigError(f"unknown backend {requested!r}; valid: {valid}")
        return [requested]
    order = _PREFERENCE.get(model_suffix.lower())
    if order is None:
        known = ", ".join(_PREFERENCE)
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
        requested: ``"auto"`` or a backend name from ``KNOWN_BACKENDS``.
        model_suffix: The model file's suffix, e.g. ``".onnx"`` (case-insensitive).

    Returns:
        A name from ``KNOWN_BACKENDS``: the first of ``candidate_backends``.

    Raises:
        ConfigError: ``requested`` is not ``auto`` or a known backend.
        ModelError: ``auto`` cannot handle this file suffix.

    Example:
        >>> choose_backend({"tensorrt": False, "cuda": True}, "auto", ".onnx")
        'cuda'
    """
    return candidate_backends(available, requested, model_suffix)[0]


def resolve_device(backend: str, device: str) -> str:
    """The device a chosen backend runs on.

    GPU backends run on the requested ``cuda[:N]``, or on ``cuda`` when the device is ``auto``
    or ``cpu`` (the flag's default; the backend's name already asks for the GPU). Other
    backends run on the requested device, or on the CPU for ``auto``.
    """
    if backend in GPU_BACKENDS:
        return device if device.startswith("cuda") else "cuda"
    return "cpu" if device == "auto" else device


def gpu_requested(device: str) -> bool:
    """Whether ``auto`` may consider the GPU backends for this ``--device``."""
    return device == "auto" or device.startswith("cuda")
