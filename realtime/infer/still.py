"""Still images the detector misses are still read: a padded retry, then the whole image.

Users feed folders of face photos that are tight crops (the face fills the picture). BlazeFace
often finds no face there, because it was trained on faces with context around them. For a still
image with no detection this stage (1) runs the detector again on a copy with a black border of
``PAD`` x the longer side, mapping boxes back; (2) for a roughly square image, takes the whole image
as the face, choosing the box so that the model's crop framing cuts exactly the image.
Every result says how its boxes were found in ``FaceBoxes.source``.

Both fallbacks need face evidence, or a landscape, a flat colour or noise gets an expression
(a whole-image box for every square picture): MediaPipe's face landmarker (its detector at a low
floor, then its face mesh's presence score) must find a face in the picture with a black border
(``LandmarkerEvidence``). A padded hit the detector is sure of (``PADDED_TRUSTED``) needs none,
and a picture under ``MIN_FACE_PX`` gets no fallback. ``benchmarks/nonface_check.py`` measures
it: 200 pictures without a face got a face in 175 cases, now in 7 (5 from the detector itself);
FERPlus Test tight crops keep a face in 98.98 % (it was 100 %; most of the 32 lost are profiles,
hands over faces and drawings that neither MediaPipe model takes for a face). The check costs
1-3 landmarker calls (9-23 ms) for a still that reaches a fallback.

A large still is searched on a copy shrunk to ``SEARCH_MAX_PX`` (``fer_live.detect.mediapipe``), and
the border of a long, thin picture follows its shorter side (a face is no taller than the picture),
so the copies a search makes stay small next to the picture itself: a 20,000 x 50 px picture got a
30,000 x 10,050 px bordered copy (3.4 GB of memory at its peak).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import cv2
import numpy as np

from fer_live.capture.native_log import quiet_native_stderr
from fer_live.detect.mediapipe import fit_for_search, import_mediapipe, scale_boxes
from fer_live.detect.plan import still_tiles
from fer_live.errors import ModelError, first_line
from fer_live.infer.card import CropFraming
from fer_live.types import FaceBoxes, Frame

PAD = 0.25
# Width / height range of a picture taken to be one face crop (FER2013 faces are square; ID
# photos are about 3:4).
SQUARE_ASPECT = (0.7, 1.4)
# The border is PAD x the longer side, but at most PAD x this many times the shorter side.
BORDER_MAX_ASPECT = 2.0
# A padded hit at least this sure needs no evidence (FERPlus Valid: the landmarker confirms 81 %
# of the padded hits, and the unconfirmed hits under 0.6 were mostly textures and crops of walls).
PADDED_TRUSTED = 0.6
# Under this many pixels on the shorter side a picture gets no fallback: no face to read there
# (a 3 x 3 or 8 x 8 picture got a padded "face").
MIN_FACE_PX = 20
# The landmarker looks at the picture shrunk to EVIDENCE_MAX_PX with these black borders (x the
# longer side), until one shows a face: a tight crop needs room around it to be detected.
EVIDENCE_MAX_PX = 256
EVIDENCE_BORDERS = (0.25, 0.5, 1.0)
# Its detector's floor is low on purpose: the face mesh's presence score decides.
EVIDENCE_DETECT_FLOOR = 0.05
EVIDENCE_PRESENCE = 0.8


class _Detector(Protocol):
    def detect(self, frame: Frame, tiles: int | None = None) -> FaceBoxes: ...


class FaceEvidence(Protocol):
    def confirms(self, image: np.ndarray) -> bool: ...


class LandmarkerEvidence:
    """Whether a picture holds a face, by MediaPipe's face landmarker (Tasks API).

    Args:
        model_path: The ``.task`` bundle; None uses the shipped, checksum-verified one.

    Raises:
        BackendUnavailable: mediapipe is not installed.
        ModelError: The bundle is missing or not a face landmarker.
    """

    def __init__(self, model_path: Path | None = None) -> None:
        from fer_live.detect.models import landmarker_path

        self._mp, base_options, vision = import_mediapipe()
        path = Path(model_path) if model_path is not None else landmarker_path()
        options = vision.FaceLandmarkerOptions(
            base_options=base_options(model_asset_buffer=path.read_bytes()),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=1,
            min_face_detection_confidence=EVIDENCE_DETECT_FLOOR,
            min_face_presence_confidence=EVIDENCE_PRESENCE,
        )
        try:
            with quiet_native_stderr():  # glog and LiteRT lines at creation and first run
                self._landmarker: Any = vision.FaceLandmarker.create_from_options(options)
                self._detect(np.zeros((64, 64, 3), np.uint8))
        except Exception as exc:  # mediapipe raises RuntimeError/ValueError with C++ traces
            raise ModelError(f"cannot load face landmarker {path}: {first_line(exc)}") from None

    def _detect(self, bgr: np.ndarray) -> bool:
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        return bool(self._landmarker.detect(image).face_landmarks)

    def confirms(self, image: np.ndarray) -> bool:
        """Whether the landmarker finds a face in the BGR ``image`` (H, W, 3) with a border."""
        h, w = image.shape[:2]
        scale = min(1.0, EVIDENCE_MAX_PX / max(h, w))
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        side = max(image.shape[:2])
        for border in EVIDENCE_BORDERS:
            pad = round(border * side)
            framed = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
            if self._detect(framed):
                return True
        return False

    def close(self) -> None:
        """Release the mediapipe graph."""
        landmarker = self.__dict__.pop("_landmarker", None)
        if landmarker is not None:
            with quiet_native_stderr():
                landmarker.close()

    def __enter__(self) -> LandmarkerEvidence:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def whole_image_box(width: int, height: int, framing: CropFraming) -> np.ndarray:
    """The detector-like box (1, 4) whose framed crop is the image's inscribed square."""
    side = min(width, height)
    size = side / framing.scale
    cx = width / 2.0 - framing.shift_x * size
    cy = height / 2.0 - framing.shift_y * size
    half = size / 2.0
    return np.array([[cx - half, cy - half, cx + half, cy + half]], np.float32)


class StillFallback:
    """A detector for independent still images, with the padded and whole-image fallbacks.

    Args:
        detector: The face detector.
        framing: The model card's crop framing (for the whole-image box).
        evidence: Says whether a picture holds a face, before a fallback is taken.
        tiles: Tiles across the longer side, or None to choose from each image's size
            (``still_tiles``).
    """

    def __init__(
        self,
        detector: _Detector,
        framing: CropFraming,
        evidence: FaceEvidence,
        tiles: int | None = None,
    ) -> None:
        self.detector = detector
        self.framing = framing
        self.evidence = evidence
        self.tiles = tiles

    def _search(self, frame: Frame) -> FaceBoxes:
        h, w = frame.image.shape[:2]
        return self.detector.detect(frame, self.tiles or still_tiles(w, h))

    def detect(self, frame: Frame) -> FaceBoxes:
        """The faces of one still: found, found on a bordered copy, or the whole picture."""
        search = fit_for_search(frame.image)
        boxes = self._fallbacks(replace(frame, image=search))
        if search is frame.image or not len(boxes):
            return boxes
        xyxy = scale_boxes(boxes.xyxy, search.shape[:2], frame.image.shape[:2])
        return FaceBoxes(xyxy, boxes.score, source=boxes.source)

    def _fallbacks(self, frame: Frame) -> FaceBoxes:
        boxes = self._search(frame)
        if len(boxes):
            return boxes
        h, w = frame.image.shape[:2]
        if min(h, w) < MIN_FACE_PX:
            return FaceBoxes.empty()
        pad = int(round(PAD * min(max(h, w), BORDER_MAX_ASPECT * min(h, w))))
        padded = cv2.copyMakeBorder(frame.image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        found = self._search(replace(frame, image=padded))
        sure = len(found) > 0 and float(found.score.max()) >= PADDED_TRUSTED
        square = SQUARE_ASPECT[0] <= w / h <= SQUARE_ASPECT[1]
        if not (sure or ((len(found) or square) and self.evidence.confirms(frame.image))):
            return FaceBoxes.empty()
        if len(found):
            # Not clipped: a tight crop's face box reaches past the edges, and the crop needs
            # its true centre and size (the cut replicates the border where it leaves the image).
            return FaceBoxes(found.xyxy - np.float32(pad), found.score, source="padded")
        box = whole_image_box(w, h, self.framing)
        return FaceBoxes(box, np.zeros(1, np.float32), source="whole_image")
