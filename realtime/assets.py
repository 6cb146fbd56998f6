"""Where the shipped model files live, and their checksums."""

from __future__ import annotations

import os
from pathlib import Path

from realtime.card import read_sidecar, sha256_file
from realtime.errors import ModelError

DETECTOR_FILE = "blaze_face_short_range.tflite"
# sha256 of face_detection_short_range.tflite in the PyPI wheel mediapipe==0.10.14.
DETECTOR_SHA256 = "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
# ``--detector`` name -> (file, sha256); both files are byte-identical to the wheel's
# mediapipe/modules/face_detection/*.tflite (mediapipe==0.10.14).
DETECTOR_MODELS = {
    "short": (DETECTOR_FILE, DETECTOR_SHA256),
    "full": (
        "face_detection_full_range_sparse.tflite",
        "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
    ),
}
# MediaPipe's FaceLandmarker v2 bundle, unchanged (still images' face evidence).
LANDMARKER_FILE = "face_landmarker.task"
LANDMARKER_SHA256 = "b261925d4aad812b47a0e8d58c1baa1223270a5d1f663d78338bc881c003879d"
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


def weights_dir() -> Path:
    """The folder of shipped weights; ``FER_LIVE_WEIGHTS`` overrides it."""
    override = os.environ.get("FER_LIVE_WEIGHTS")
    if override:
        return Path(override)
    try:
        import fer_live_weights

        return Path(fer_live_weights.__file__).parent
    except ImportError:  # running from a source tree without installing
        return Path(__file__).resolve().parent.parent / "weights"


def detector_path(name: str = "short") -> Path:
    """Path of a shipped BlazeFace model (``short`` or ``full`` range), checked by sha256.

    Raises:
        ModelError: The file is missing or its sha256 is not the known one.
    """
    file_name, sha256 = DETECTOR_MODELS[name]
    return _checked(file_name, sha256, "face detector")


def landmarker_path() -> Path:
    """Path of the shipped MediaPipe face landmarker bundle, checked by sha256.

    Raises:
        ModelError: The file is missing or its sha256 is not the known one.
    """
    return _checked(LANDMARKER_FILE, LANDMARKER_SHA256, "face landmarker")


def _checked(file_name: str, sha256: str, what: str) -> Path:
    path = weights_dir() / file_name
    if not path.is_file():
        raise ModelError(f"{what} model not found: {path}")
    if sha256_file(path) != sha256:
        raise ModelError(f"{what} model {path} is corrupt (sha256 mismatch)")
    return path


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
