"""TorchScript backend: a ``.pt`` file saved with ``card.json`` in its extra files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from realtime.backends.base import InferenceBackend
from realtime.card import ModelCard, read_sidecar
from realtime.errors import BackendUnavailable, ModelError, first_line
from realtime.types import ModelOutput

CARD_FILE = "card.json"


def import_torch() -> Any:
    """Import torch or raise BackendUnavailable with the install hint."""
    try:
        import torch
    except ImportError:
        raise BackendUnavailable('torch is not installed: pip install "fer-live[torch]"') from None
    return torch


def describe() -> str:
    """One line for ``fer-live info``: version and whether CUDA is usable."""
    torch = import_torch()
    cuda = "cuda available" if torch.cuda.is_available() else "cpu only"
    return f"torch {torch.__version__} ({cuda})"


class TorchBackend(InferenceBackend):
    """Runs a TorchScript model returning logits, or (logits, embedding).

    Args:
        path: The TorchScript file.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        threads: torch intra-op threads (process-wide); None leaves torch's default.

    Raises:
        ModelError: The file is missing, broken, has no card or does not match its card.
        BackendUnavailable: torch is missing, or CUDA is asked for and not available.
    """

    name = "torch"

    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None) -> None:
        torch = import_torch()
        self._torch = torch
        self.path = Path(path)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable("torch cannot see a CUDA device here; use --device cpu")
        self.device = device
        if threads is not None:
            torch.set_num_threads(int(threads))
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}")
        extra = {CARD_FILE: ""}
        try:
            self._module = torch.jit.load(str(self.path), map_location=device, _extra_files=extra)
        except Exception as exc:  # torch raises RuntimeError/ValueError with long traces
            raise ModelError(
                f"cannot load TorchScript model {self.path}: {first_line(exc)}"
            ) from None
        self._module.eval()
        self.card = self._read_card(extra[CARD_FILE])
        self._probe()

    def _read_card(self, text: str | bytes) -> ModelCard:
        if text:
            return ModelCard.from_json(text.decode() if isinstance(text, bytes) else text)
        card = read_sidecar(self.path)
        if card is None:
            raise ModelError(f"{self.path} has no model card ({CARD_FILE} extra file or sidecar)")
        return card

    def _probe(self) -> None:
        """Run one zero sample so a card/model mismatch fails at load, not mid-stream."""
        self.infer(np.zeros((1, *self.input_shape), np.float32))

    def _infer_impl(self, pixels: np.ndarray) -> ModelOutput:
        torch = self._torch
        try:
            # The profiling executor re-specializes per batch size (seconds per new size);
            # face counts vary every frame, so run the plain interpreter instead.
            with torch.inference_mode(), torch.jit.optimized_execution(False):
                result = self._module(torch.from_numpy(pixels).to(self.device))
        except Exception as exc:
            raise ModelError(f"torch inference failed for {self.path}: {first_line(exc)}") from None
        if isinstance(result, dict):
            result = tuple(result[key] for key in self.card.outputs if key in result)
        if not isinstance(result, (tuple, list)):
            result = (result,)
        logits = result[0].float().cpu().numpy()
        if logits.ndim != 2:
            raise ModelError(f"{self.path} logits must be (B, C), got shape {logits.shape}")
        embedding = None
        if len(result) > 1 and "embedding" in self.card.outputs:
            embedding = result[1].float().cpu().numpy().reshape(logits.shape[0], -1)
        return ModelOutput(logits, embedding)

    def close(self) -> None:
        """Drop the module."""
        self.__dict__.pop("_module", None)
