"""The recognizer's shipped models: the default per backend, the ``--model`` aliases, and
``resolve_model_path``, which turns ``--model`` into the model file every later step reads.

The weights folder and the detector's models are in ``fer_live.detect.models``.
"""

from __future__ import annotations

from pathlib import Path

from fer_live.detect.models import weights_dir
from fer_live.errors import ModelError, not_a_file
from fer_live.infer.card import read_sidecar

# The shipped default model in the format each backend reads ("auto" takes ONNX).
DEFAULT_MODEL_FILES = {
    "auto": "fer_default.onnx",
    "onnx": "fer_default.onnx",
    "torch": "fer_default.pt",
}
# Names ``--model`` accepts for shipped models: name -> file stem in the weights folder.
MODEL_ALIASES = {
    "default": "fer_default",
    "accurate": "fer_accurate",
}


def default_model_path(backend: str = "auto") -> Path:
    """The shipped default model file for ``backend`` (ONNX for unknown names)."""
    return weights_dir() / DEFAULT_MODEL_FILES.get(backend, DEFAULT_MODEL_FILES["auto"])


def alias_path(alias: str, backend: str = "auto") -> Path:
    """The shipped file of a model alias (``accurate``) in the backend's format.

    Raises:
        ModelError: The alias is known but its file is not installed.
    """
    suffix = Path(DEFAULT_MODEL_FILES.get(backend, DEFAULT_MODEL_FILES["auto"])).suffix
    path = weights_dir() / f"{MODEL_ALIASES[alias]}{suffix}"
    if not path.is_file():
        raise ModelError(f"model '{alias}' is not installed: {path} is missing")
    return path


def resolve_model_path(model: Path | None, backend: str = "auto") -> Path:
    """The ``--model`` file, a shipped model's alias (``accurate``), or the default model.

    The one place a model path is checked: what it returns is a regular file, so the backends
    and the engine builder read it without checking again.

    Raises:
        ModelError: The file is missing or not a regular file (a folder), a name without a
            suffix is neither a file nor a shipped model, no model was given and the default
            model is not installed, or an alias names a model that is not installed.
    """
    if model is None:
        path = default_model_path(backend)
        if not path.is_file():
            raise ModelError(
                f"no default model at {path}; pass --model PATH (an .onnx or .pt file)"
            )
        return path
    why = None if model.is_file() else not_a_file(model)
    if why == "no such file":
        name = str(model).lower()
        if name in MODEL_ALIASES:
            return alias_path(name, backend)
        if not model.suffix:  # a mistyped name, not a path to some model file
            names = ", ".join(MODEL_ALIASES)
            raise ModelError(f"no model file '{model}', and it is not a shipped model ({names})")
        raise ModelError(f"model file not found: {model}")
    if why is not None:
        raise ModelError(f"cannot load model '{model}': {why}")
    return model


def shipped_models() -> dict[str, Path]:
    """Alias -> ONNX file of every shipped model that is installed."""
    found = {}
    for alias, stem in MODEL_ALIASES.items():
        path = weights_dir() / f"{stem}.onnx"
        if path.is_file():
            found[alias] = path
    return found


def describe_model(path: Path) -> str:
    """One line about a shipped model from its sidecar card (file, arch, input, Test accuracy)."""
    try:
        card = read_sidecar(path)
    except ModelError as exc:
        return f"{path.name}: {exc}"
    if card is None:
        return f"{path.name} (no card beside it)"
    acc = card.metrics.get("ferplus_test_acc")
    tested = f", FERPlus test {100 * acc:.2f} %" if isinstance(acc, (int, float)) else ""
    rule = "" if card.decision.is_identity else ", decision rule"
    return f"{path.name}: {card.arch} {card.input_size} px x{card.channels}{tested}{rule}"
