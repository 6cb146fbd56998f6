"""TorchScript backend: a ``.pt`` file saved with ``card.json`` in its extra files.

Loading TorchScript runs the file's code, so a file is loaded only once a valid card was read
for it: ``card.json`` straight from the zip archive (no torch involved), or a verified sidecar.
"""

from __future__ import annotations

import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from fer_live.errors import BackendUnavailable, ModelError, first_line
from fer_live.infer.backends.base import InferenceBackend
from fer_live.infer.card import ModelCard, resolve_card
from fer_live.infer.json_checks import short
from fer_live.types import CPU, Device, ModelOutput

CARD_FILE = "card.json"
_MAX_CARD_BYTES = 1 << 20
# zipfile raises these (besides OSError) on corrupt, encrypted or exotic archives.
_ZIP_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error, NotImplementedError,
               RuntimeError, OverflowError)  # fmt: skip


def load_torchscript(torch: Any, path: Path, device: str) -> Any:
    """``torch.jit.load`` without the FutureWarning that recent torch (2.14) gives every call.

    The warning asks developers to move to ``torch.export``; users of a shipped ``.pt`` can do
    nothing about it. Only that message is silenced, only here: the Python 3.14 one ("not
    supported ... may break") and every other warning still show.

    Raises:
        ModelError: torch cannot load the file (its first line, not the long trace).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.load` is deprecated", category=FutureWarning
        )
        try:
            return torch.jit.load(str(path), map_location=device)
        except Exception as exc:  # torch raises RuntimeError/ValueError with long traces
            raise ModelError(f"cannot load TorchScript model {path}: {first_line(exc)}") from None


def import_torch() -> Any:
    """Import torch or raise BackendUnavailable with the install hint."""
    try:
        import torch
    except ImportError:
        raise BackendUnavailable('torch is not installed: pip install "fer-live[torch]"') from None
    return torch


def read_torchscript_card(path: Path) -> ModelCard:
    """The card of a TorchScript file, read before torch loads (and so runs) any of it.

    A TorchScript file is a zip archive holding its extra files at ``<archive>/extra/<name>``;
    ``card.json`` is read from there with ``zipfile``. Without it, a verified sidecar
    ``<stem>.json`` is the card.

    Raises:
        ModelError: The file is not a zip archive, or has no valid card (extra file or sidecar).
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            text = _card_member(archive)
    except _ZIP_ERRORS as exc:
        reason = short(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc), 200)
        raise ModelError(
            f"cannot load TorchScript model {path}: not a TorchScript archive ({reason})"
        ) from None
    embedded = None
    if text is not None:
        try:
            embedded = ModelCard.from_json(text)
        except ModelError as exc:
            raise ModelError(f"{path} {CARD_FILE}: {exc}") from None
    try:
        return resolve_card(path, embedded, f"{CARD_FILE} extra file")
    except ModelError as exc:
        # loading TorchScript runs its code: say why a file without a valid card is refused
        raise ModelError(f"{exc}; refusing to load it") from None


def _card_member(archive: zipfile.ZipFile) -> str | None:
    """``<archive>/extra/card.json`` as text, or None when the archive has none."""
    members = [
        info for info in archive.infolist()
        if info.filename.count("/") == 2 and info.filename.endswith(f"/extra/{CARD_FILE}")
    ]  # fmt: skip
    if not members:
        return None
    if len(members) > 1 or members[0].file_size > _MAX_CARD_BYTES:
        raise ModelError(f"{archive.filename}: {CARD_FILE} is duplicated or over 1 MiB")
    with archive.open(members[0]) as handle:
        data = handle.read(_MAX_CARD_BYTES + 1)
    if len(data) > _MAX_CARD_BYTES:
        raise ModelError(f"{archive.filename}: {CARD_FILE} is over 1 MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelError(f"{archive.filename}: {CARD_FILE} is not UTF-8 text") from None


def describe() -> str:
    """One line for ``fer-live info``: version and whether CUDA is usable."""
    torch = import_torch()
    cuda = "cuda available" if torch.cuda.is_available() else "cpu only"
    return f"torch {torch.__version__} ({cuda})"


class TorchBackend(InferenceBackend):
    """Runs a TorchScript model returning logits, or (logits, embedding).

    Args:
        path: The TorchScript file.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        threads: torch intra-op threads (process-wide); None leaves torch's default.

    Raises:
        ModelError: The file is missing, broken, has no card or does not match its card.
        BackendUnavailable: torch is missing, or CUDA is asked for and not available.
    """

    name = "torch"

    def __init__(self, path: Path, device: Device = CPU, threads: int | None = None) -> None:
        torch = import_torch()
        self._torch = torch
        self.path = Path(path)
        if device.is_cuda and not torch.cuda.is_available():
            raise BackendUnavailable("torch cannot see a CUDA device here; use --device cpu")
        self.device = str(device)
        if threads is not None:
            torch.set_num_threads(int(threads))
        self.card = read_torchscript_card(self.path)  # before torch runs any of the file
        self._module = load_torchscript(torch, self.path, self.device)
        self._module.eval()
        self._probe()

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
        return self._named_output([out.float().cpu().numpy() for out in result])

    def close(self) -> None:
        """Drop the module."""
        self.__dict__.pop("_module", None)
