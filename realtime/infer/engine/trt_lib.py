"""Loading TensorRT: full ``tensorrt`` or TensorRT-RTX, a logger, plan deserialization.

Two libraries share (nearly) one Python API: the full ``tensorrt`` package for datacenter GPUs
(``tensorrt_bindings`` when only its bindings wheel is installed), and TensorRT-RTX for
GeForce/RTX GPUs, whose bindings import as ``tensorrt_rtx`` or ``tensorrt_rtx_bindings``.
``import_tensorrt`` tries them in that order (``FER_LIVE_TRT`` names one module to use). The
TensorRT backend and the engine builder both start here, so this module imports nothing of ours
but the error types: neither side can pull the other in through it.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from typing import Any

from fer_live.errors import BackendUnavailable, first_line

logger = logging.getLogger(__name__)

TRT_MODULES = ("tensorrt", "tensorrt_bindings", "tensorrt_rtx", "tensorrt_rtx_bindings")
FULL_TRT = ("tensorrt", "tensorrt_bindings")
TRT_ENV = "FER_LIVE_TRT"
INSTALL_HINT = (
    "TensorRT not installed: pip install tensorrt (datacenter GPUs) or tensorrt-rtx (RTX GPUs)"
)


@dataclass(frozen=True)
class TrtLib:
    """An imported TensorRT library.

    Attributes:
        module: The imported Python module.
        name: ``tensorrt`` or ``tensorrt_rtx``.
        version: The library version, e.g. ``1.7.1.116``.
    """

    module: Any
    name: str
    version: str

    @property
    def rtx(self) -> bool:
        return self.name != "tensorrt"

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


def import_tensorrt() -> TrtLib:
    """Import full TensorRT, else TensorRT-RTX (``FER_LIVE_TRT`` picks one module).

    Raises:
        BackendUnavailable: None of them imports (the message has the install hint).
    """
    forced = os.environ.get(TRT_ENV, "").strip()
    errors = []
    for name in (forced,) if forced else TRT_MODULES:
        try:
            module = importlib.import_module(name)
        except (ImportError, OSError) as exc:  # OSError: the shared libraries do not load
            errors.append(f"{name}: {first_line(exc)}")
            continue
        label = "tensorrt" if name in FULL_TRT else "tensorrt_rtx"
        return TrtLib(module, label, str(getattr(module, "__version__", "unknown")))
    logger.debug("TensorRT imports failed: %s", "; ".join(errors))
    raise BackendUnavailable(INSTALL_HINT)


def make_logger(trt: Any) -> Any:
    """A TensorRT logger that forwards to ``logging`` and keeps the last error message."""

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.last_error = ""

        def log(self, severity: Any, msg: str) -> None:
            level = int(severity)
            if level <= int(trt.ILogger.Severity.ERROR):
                self.last_error = msg
                logger.debug("TensorRT: %s", msg)
            elif level == int(trt.ILogger.Severity.WARNING):
                logger.info("TensorRT: %s", msg)

    return _Logger()


def deserialize(lib: TrtLib, plan: bytes, source: str) -> tuple[Any, Any]:
    """Deserialize a plan; returns (runtime, engine); the runtime must outlive the engine.

    Raises:
        BackendUnavailable: The runtime refuses the plan on this GPU (e.g. an unsupported
            compute capability, or an engine built for another GPU or TensorRT version).
    """
    trt_logger = make_logger(lib.module)
    runtime = lib.module.Runtime(trt_logger)
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        reason = trt_logger.last_error or "deserialize_cuda_engine returned None"
        reason = first_line(reason)
        raise BackendUnavailable(f"{lib.label} cannot load {source} on this GPU: {reason}")
    return runtime, engine
