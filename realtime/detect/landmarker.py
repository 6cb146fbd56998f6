"""MediaPipe's face landmarker (Tasks API), opened from the shipped bundle.

Two stages use it: still images ask it whether a picture holds a face before a fallback is taken
(``fer_live.infer.still``), and ``--face-mesh`` reads head pose and blendshapes from it
(``fer_live.mesh``). Both open it here, so the bundle is checked (sha256) and loaded one way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_live.capture.native_log import quiet_native_stderr
from fer_live.detect.mediapipe import import_mediapipe
from fer_live.errors import ModelError, first_line


class Landmarker:
    """A FaceLandmarker in IMAGE mode: one call per picture, no state between calls.

    Args:
        model_path: The ``.task`` bundle; None uses the shipped, checksum-verified one.
        **options: ``FaceLandmarkerOptions`` fields (``num_faces``, ``output_face_blendshapes``,
            ``min_face_detection_confidence`` ...); the running mode is always IMAGE.

    Raises:
        BackendUnavailable: mediapipe is not installed.
        ModelError: The bundle is missing, corrupt or not a face landmarker.
    """

    def __init__(self, model_path: Path | None = None, **options: Any) -> None:
        from fer_live.detect.models import landmarker_path

        self._mp, base_options, vision = import_mediapipe()
        path = Path(model_path) if model_path is not None else landmarker_path()
        settings = vision.FaceLandmarkerOptions(
            base_options=base_options(model_asset_buffer=path.read_bytes()),
            running_mode=vision.RunningMode.IMAGE,
            **options,
        )
        try:
            with quiet_native_stderr():  # glog and LiteRT lines at creation and first run
                self._landmarker: Any = vision.FaceLandmarker.create_from_options(settings)
                self.detect(np.zeros((64, 64, 3), np.uint8))
        except Exception as exc:  # mediapipe raises RuntimeError/ValueError with C++ traces
            raise ModelError(f"cannot load face landmarker {path}: {first_line(exc)}") from None

    def detect(self, bgr: np.ndarray) -> Any:
        """The landmarker's result (``FaceLandmarkerResult``) for a BGR image (H, W, 3)."""
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        return self._landmarker.detect(image)

    def close(self) -> None:
        """Release the mediapipe graph (safe to call twice)."""
        landmarker = self.__dict__.pop("_landmarker", None)
        if landmarker is not None:
            with quiet_native_stderr():
                landmarker.close()
