"""Reading checkpoints without running code from them.

A checkpoint is a pickle, and unpickling an untrusted one can run anything. Ours hold only
tensors, numbers and JSON strings, so every load here uses ``weights_only=True``: torch's
restricted unpickler, which refuses any other object (and the code it would run).
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from fer_live.errors import ModelError, first_line


def read_checkpoint(path: Path | str, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a fer-train checkpoint as a dict of tensors and plain values.

    Raises:
        ModelError: Missing file, not a checkpoint, or a pickle that holds anything but plain
            data (refused, never executed).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        raise ModelError(
            f"refusing to load {path}: not a plain-data checkpoint ({first_line(exc)})"
        ) from None
    if not isinstance(data, dict):
        raise ModelError(f"{path} is not a fer-train checkpoint")
    return data


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives hold ``<name>/code/``; a fer-train checkpoint (a zip too) does not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


def initial_weights(path: Path | str) -> dict[str, torch.Tensor]:
    """The network weights that start a fine-tuning run (``init`` in a recipe).

    ``path`` is a fer-train checkpoint, or a TorchScript model file written by
    ``fer-train export`` (a shipped ``weights/*.pt``), so a shipped model can be fine-tuned
    without its training run. A TorchScript file is code: name only files you trust. The
    export's wrapper keeps the network under ``inner.`` beside the folded GUS matrix, which is
    not part of the network and is left out.

    Raises:
        ModelError: Missing or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"init weights not found: {path}")
    if not _is_torchscript(path):
        return dict(read_checkpoint(path)["model"])
    try:
        with warnings.catch_warnings():  # torch.jit.load's deprecation notice is not the user's
            warnings.simplefilter("ignore", FutureWarning)
            state = torch.jit.load(str(path), map_location="cpu").state_dict()
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelError(f"cannot read model file {path}: {first_line(exc)}") from None
    if any(key.startswith("inner.") for key in state):
        state = {k[len("inner.") :]: v for k, v in state.items() if k.startswith("inner.")}
    return dict(state)
