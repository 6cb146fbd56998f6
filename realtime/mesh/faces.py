"""The face mesh stage: MediaPipe's face landmarker on each tracked face.

Each tracked box becomes a square crop, ``MARGIN`` times the box's longer side, centred on the
box and filled black where it leaves the frame, shrunk to at most ``MESH_PX``. The landmarker
(IMAGE mode, one face per crop) then finds the face again and gives its 478-point mesh, the 52
blendshape scores and the facial transformation matrix, whose rotation is the head pose
(``fer_live.mesh.pose``). An axis-aligned crop, scaled equally along both axes, keeps the angles
of the image plane, so the roll is the roll in the whole frame.

Each crop is read twice, as it is and mirrored left-right; the mirrored reading is mirrored back
(the rotation conjugated by x -> -x, the Left and Right blendshapes swapped) and the two are
averaged. The model is not left-right symmetric: read once, a face and its mirror image got yaws
up to 4 degrees apart from opposite (mean 1.2); averaged, they agree exactly. A face found in
only one of the two readings keeps that one. A face tilted more than ``UPRIGHT_ABOVE`` degrees is
read again (both ways) on the crop turned upright, and that reading is turned back: the
landmarker's roll lags on strongly tilted faces (``benchmarks/pose_check.py`` has the errors).

Yaw and pitch are measured against the line of sight to the face (the crop's centre), not the
camera's axis: a face at the frame's edge that looks at the camera reads about 0 degrees.

Two landmarker calls per face, four for a tilted one (``fer-live bench --face-mesh`` shows the
stage's cost per face).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from fer_live.detect.landmarker import Landmarker
from fer_live.errors import ModelError
from fer_live.mesh.pose import pose_from_matrix, rotation_of
from fer_live.types import FaceMesh, FacePose, Frame, Tracks

# x -> -x: a rotation seen in a mirror is MIRROR @ R @ MIRROR.
MIRROR = np.diag([-1.0, 1.0, 1.0])

# The crop around a tracked box: BlazeFace's box is tight (brows to chin), and the landmarker's
# own detector needs the head with some room around it, also when the head is turned 30 degrees.
MARGIN = 2.0
# Bigger crops are shrunk to this side: the landmarker reads a 256 px face mesh input anyway.
MESH_PX = 256
# A face tilted more than this many degrees (roll) is read again on the crop turned upright: at
# 60 degrees and more the landmarker's roll lags (turning such a face 30 degrees further moved its
# roll 3-5.5 degrees too little; read upright, within 1.9).
UPRIGHT_ABOVE = 25.0
# A box under this many pixels on its longer side holds no face to measure.
MIN_BOX_PX = 8
# The 52 blendshape names of MediaPipe's face landmarker v2, in the model's order (the record
# fields and CSV columns; ``FaceMesher`` refuses a bundle that gives others).
BLENDSHAPES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)  # fmt: skip


# Where each blendshape goes in a mirror image: the face's left side becomes its right side.
def _mirror_name(name: str) -> str:
    return name.replace("Left", "\0").replace("Right", "Left").replace("\0", "Right")


MIRRORED = np.array([BLENDSHAPES.index(_mirror_name(name)) for name in BLENDSHAPES])


def turned(crop: np.ndarray, degrees: float) -> np.ndarray:
    """The square crop turned about its centre, counterclockwise on the screen for degrees > 0
    (black where the turn uncovers it)."""
    side = crop.shape[0]
    centre = ((side - 1) / 2.0, (side - 1) / 2.0)
    turn = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    return cv2.warpAffine(crop, turn, (side, side), flags=cv2.INTER_LINEAR)


def square_crop(image: np.ndarray, box: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    """The square (S, S, 3) around ``box`` (4,) xyxy, ``margin`` x its longer side, black where
    it leaves ``image``, shrunk to at most ``MESH_PX`` on a side."""
    h, w = image.shape[:2]
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    side = max(2, round(margin * float(max(box[2] - box[0], box[3] - box[1]))))
    x0, y0 = round(cx - side / 2.0), round(cy - side / 2.0)
    x1, y1 = x0 + side, y0 + side
    inside = image[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
    if inside.size == 0:
        return np.zeros((min(side, MESH_PX),) * 2 + (3,), np.uint8)
    pads = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
    crop = cv2.copyMakeBorder(inside, *pads, cv2.BORDER_CONSTANT, value=0)
    if side > MESH_PX:
        crop = cv2.resize(crop, (MESH_PX, MESH_PX), interpolation=cv2.INTER_AREA)
    return crop


class FaceMesher:
    """Head pose and blendshapes of the tracked faces, by MediaPipe's face landmarker.

    Args:
        model_path: The ``.task`` bundle; None uses the shipped, checksum-verified one.

    Raises:
        BackendUnavailable: mediapipe is not installed.
        ModelError: The bundle is missing, corrupt or not a face landmarker.
    """

    def __init__(self, model_path: Path | None = None) -> None:
        self._landmarker = Landmarker(
            model_path,
            num_faces=1,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )

    def measure(self, frame: Frame, tracks: Tracks) -> dict[int, FaceMesh | None]:
        """Each track's id -> its pose and blendshapes, or None where no face was found."""
        return {
            int(tid): self.measure_box(frame.image, box)
            for tid, box in zip(tracks.track_id, tracks.xyxy, strict=True)
        }

    def measure_box(self, image: np.ndarray, box: np.ndarray) -> FaceMesh | None:
        """The pose and blendshapes of the face in ``box`` (4,) xyxy of the BGR ``image``: the
        crop's reading averaged with its mirror image's, read again upright when tilted.

        Raises:
            ModelError: The bundle's blendshapes are not ``BLENDSHAPES``.
        """
        if not np.isfinite(box).all() or max(box[2] - box[0], box[3] - box[1]) < MIN_BOX_PX:
            return None
        crop = square_crop(image, box)
        reading = self._read_both(crop)
        if reading is None:
            return None
        rotation, scores = reading
        roll = pose_from_matrix(rotation).roll
        if abs(roll) > UPRIGHT_ABOVE:
            upright = self._read_both(turned(crop, -roll))
            if upright is not None:  # turn the upright reading back by the roll taken out
                rotation = rotation_of(FacePose(0.0, 0.0, roll)) @ upright[0]
                scores = upright[1]
        return FaceMesh(
            pose_from_matrix(rotation), dict(zip(BLENDSHAPES, scores.tolist(), strict=True))
        )

    def _read_both(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The crop's reading and its mirror image's, mirrored back: the sum of their rotations
        (its nearest rotation is their mean) and their mean blendshape scores."""
        readings = [self._read(crop)]
        mirrored = self._read(np.ascontiguousarray(crop[:, ::-1]))
        if mirrored is not None:
            rotation, scores = mirrored
            readings.append((MIRROR @ rotation @ MIRROR, scores[MIRRORED]))
        found = [r for r in readings if r is not None]
        if not found:
            return None
        rotations = np.sum([r for r, _ in found], axis=0)
        return rotations, np.mean([s for _, s in found], axis=0)

    def _read(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The rotation (3, 3) and blendshape scores (52,) the landmarker reads in a crop."""
        result = self._landmarker.detect(crop)
        if not result.face_landmarks or not result.facial_transformation_matrixes:
            return None
        categories = result.face_blendshapes[0]
        names = tuple(c.category_name for c in categories)
        if names != BLENDSHAPES:
            raise ModelError(f"the face landmarker gives other blendshapes: {names[:3]} ...")
        rotation = np.asarray(result.facial_transformation_matrixes[0], np.float64)[:3, :3]
        return rotation, np.array([c.score for c in categories], np.float64)

    def close(self) -> None:
        """Release the landmarker (safe to call twice)."""
        self._landmarker.close()

    def __enter__(self) -> FaceMesher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
