"""Where the shipped model files live, their checksums, and the face detector's models.

The detector is the first stage that reads a shipped file, so the weights folder and the checksum
live here; the recognizer's shipped models (``fer_live.infer.assets``) and the model card build on
them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from fer_live.errors import ModelError

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


def weights_dir() -> Path:
    """The folder of shipped weights; ``FER_LIVE_WEIGHTS`` overrides it."""
    override = os.environ.get("FER_LIVE_WEIGHTS")
    if override:
        return Path(override)
    try:
        import fer_live.weights

        return Path(fer_live.weights.__file__).parent
    except ImportError:  # running from a source tree without installing
        return Path(__file__).resolve().parents[2] / "weights"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
