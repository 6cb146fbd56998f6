"""What a method run saves after every epoch so ``--resume`` can continue it.

A full-scale method run takes hours on two CPU cores, so it must survive an interruption. The
checkpoint (``runs/<name>/resume.pt``) holds plain data only, so it loads with the same
restricted unpickler as every other checkpoint (``fer_live.trainer.checkpoint_io``): the model and
optimizer states, the runner's counters and generator, the (possibly relabeled) targets, the
best epoch so far and the method's own state.

A method's state is whatever its instance attributes hold, encoded generically: tensors and
plain values as they are, modules and optimizers by their ``state_dict``, generators by their
state, helper objects (a SCL queue) attribute by attribute; frozen dataclasses are settings and
come back from the config. ``options``, ``criterion`` and
``card`` are rebuilt from the run's config, so they are not saved.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fer_live.errors import ModelError
from fer_live.trainer.checkpoint_io import read_checkpoint

RESUME_FILE = "resume.pt"
_REBUILT = frozenset({"options", "criterion", "card"})
_PLAIN = (torch.Tensor, int, float, bool, str, type(None))


def encode(value: Any) -> Any:
    """``value`` as plain data (tensors, numbers, strings, lists and str-keyed dicts)."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, Path):
        return {"__path__": str(value)}
    if isinstance(value, nn.Module):
        return {"__module__": value.state_dict()}
    if isinstance(value, torch.optim.Optimizer):
        return {"__optimizer__": value.state_dict()}
    if isinstance(value, torch.Generator):
        return {"__generator__": value.get_state(), "device": str(value.device)}
    if dataclasses.is_dataclass(value) and value.__dataclass_params__.frozen:  # type: ignore[union-attr]
        return {"__config__": type(value).__name__}  # settings: rebuilt from the run's config
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if hasattr(value, "__dict__"):
        return {"__object__": {k: encode(v) for k, v in vars(value).items()}}
    raise ModelError(f"cannot save a {type(value).__name__} in a resume checkpoint")


def restore(current: Any, saved: Any) -> Any:
    """The value to hold after resuming: ``current`` updated in place where it is stateful."""
    if isinstance(saved, dict) and "__module__" in saved:
        current.load_state_dict(saved["__module__"])
        return current
    if isinstance(saved, dict) and "__optimizer__" in saved:
        current.load_state_dict(saved["__optimizer__"])
        return current
    if isinstance(saved, dict) and "__generator__" in saved:
        # Lazily created generators may not exist yet in a fresh method.
        gen = current if isinstance(current, torch.Generator) else torch.Generator(saved["device"])
        gen.set_state(saved["__generator__"])
        return gen
    if isinstance(saved, dict) and "__path__" in saved:
        return Path(saved["__path__"])
    if isinstance(saved, dict) and "__config__" in saved:
        return current
    if isinstance(saved, dict) and "__object__" in saved:
        for key, value in saved["__object__"].items():
            setattr(current, key, restore(getattr(current, key, None), value))
        return current
    if isinstance(current, tuple) and isinstance(saved, list):
        return tuple(saved)
    return saved


def method_state(method: Any) -> dict[str, Any]:
    """The method's mutable state as plain data."""
    return {k: encode(v) for k, v in vars(method).items() if k not in _REBUILT}


def load_method_state(method: Any, state: dict[str, Any]) -> None:
    """Put a saved ``method_state`` back into a freshly built method of the same run."""
    for key, value in state.items():
        setattr(method, key, restore(getattr(method, key, None), value))


def save_resume(run_dir: Path, state: dict[str, Any]) -> None:
    """Write the resume checkpoint atomically (an interrupted save keeps the previous one)."""
    tmp = run_dir / (RESUME_FILE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(run_dir / RESUME_FILE)


def load_resume(run_dir: Path) -> dict[str, Any] | None:
    """The resume checkpoint of ``run_dir``, or None when the run has none."""
    path = run_dir / RESUME_FILE
    return read_checkpoint(path) if path.is_file() else None
