"""ONNX Runtime backend: CPU, or CUDA when the CUDA execution provider is installed."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from fer_live.errors import BackendUnavailable, ModelError, first_line
from fer_live.infer.backends.base import InferenceBackend
from fer_live.infer.card import CARD_KEY, ModelCard, resolve_card
from fer_live.types import CPU, Device, ModelOutput

logger = logging.getLogger(__name__)

_CUDA_PROVIDER = "CUDAExecutionProvider"
_CPU_PROVIDER = "CPUExecutionProvider"


def import_onnxruntime() -> Any:
    """Import onnxruntime or raise BackendUnavailable with the install hint."""
    try:
        import onnxruntime
    except ImportError:
        raise BackendUnavailable(
            'onnxruntime is not installed: pip install onnxruntime (or "onnxruntime-gpu")'
        ) from None
    return onnxruntime


def describe() -> str:
    """One line for ``fer-live info``: version and execution providers."""
    ort = import_onnxruntime()
    return f"onnxruntime {ort.__version__} ({', '.join(ort.get_available_providers())})"


class OnnxBackend(InferenceBackend):
    """Runs an ``.onnx`` model whose card is in its metadata (``fer_live_card``) or sidecar.

    Args:
        path: The ``.onnx`` file.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        threads: Intra-op threads for the session; None lets onnxruntime decide.

    Raises:
        ModelError: The file is missing, broken, has no card or does not match its card.
        BackendUnavailable: onnxruntime, or the CUDA provider for a cuda device, is missing.
    """

    name = "onnx"

    def __init__(self, path: Path, device: Device = CPU, threads: int | None = None) -> None:
        ort = import_onnxruntime()
        self.path = Path(path)
        self.device = str(device)
        providers = self._providers(ort, device)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # Idle ORT threads spin by default, stealing the cores that decode and detection need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise ModelError(f"cannot load ONNX model {self.path}: {first_line(exc)}") from None
        if device.is_cuda and _CUDA_PROVIDER not in self._session.get_providers():
            logger.warning("CUDA provider failed to initialise; %s runs on the CPU", self.path)
            self.device = "cpu"
        self.card = self._read_card()
        self._input_name = self._check_input_meta()
        self._output_names = self._pick_outputs()

    @staticmethod
    def _providers(ort: Any, device: Device) -> list[Any]:
        if device.kind == "cpu":
            return [_CPU_PROVIDER]
        if not device.is_cuda:
            raise ModelError(f"onnx backend runs on cpu or cuda[:N], got device {str(device)!r}")
        if _CUDA_PROVIDER not in ort.get_available_providers():
            raise BackendUnavailable(
                "onnxruntime has no CUDA provider here: pip install onnxruntime-gpu"
            )
        return [(_CUDA_PROVIDER, {"device_id": device.index or 0}), _CPU_PROVIDER]

    def _read_card(self) -> ModelCard:
        meta = self._session.get_modelmeta().custom_metadata_map
        embedded = ModelCard.from_json(meta[CARD_KEY]) if CARD_KEY in meta else None
        return resolve_card(self.path, embedded, f"'{CARD_KEY}' metadata")

    def _check_input_meta(self) -> str:
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"{self.path} must have one input, has {len(inputs)}")
        meta = inputs[0]
        if meta.type != "tensor(float)":
            raise ModelError(f"{self.path} input must be float32, is {meta.type}")
        shape = list(meta.shape)
        want = self.input_shape
        fixed_ok = len(shape) == 4 and all(
            not isinstance(got, int) or got == exp for got, exp in zip(shape[1:], want, strict=True)
        )
        if not fixed_ok:
            raise ModelError(
                f"{self.path} input shape {shape} does not match its card (B, {want[0]}, "
                f"{want[1]}, {want[2]})"
            )
        return str(meta.name)

    def _pick_outputs(self) -> list[str]:
        names = [out.name for out in self._session.get_outputs()]
        wanted = list(self.card.outputs)
        if not set(wanted) <= set(names):
            if len(names) < len(wanted):
                raise ModelError(f"{self.path} has outputs {names}, its card expects {wanted}")
            wanted = names[: len(wanted)]
        width = self._session.get_outputs()[names.index(wanted[0])].shape[-1]
        if isinstance(width, int) and width != self.card.num_classes:
            raise ModelError(
                f"{self.path} outputs {width} logits, its card has {self.card.num_classes} labels"
            )
        return wanted

    def _infer_impl(self, pixels: np.ndarray) -> ModelOutput:
        try:
            results = self._session.run(self._output_names, {self._input_name: pixels})
        except Exception as exc:
            raise ModelError(f"ONNX inference failed for {self.path}: {first_line(exc)}") from None
        return self._named_output(results)

    def close(self) -> None:
        """Drop the session (onnxruntime frees it when the last reference goes)."""
        self.__dict__.pop("_session", None)
