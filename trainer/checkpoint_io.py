"""Reading checkpoints without running code from them.

A checkpoint is a pickle, and unpickling an untrusted one can run anything. Ours hold only
tensors, numbers and JSON strings, so every load here uses ``weights_only=True``: torch's
restricted unpickler, which refuses any other object (and the code it would run).
"""

from __future__ import annotations

import pickle
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
