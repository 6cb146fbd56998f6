"""Still images the detector misses are still read: a padded retry, then the whole image.

Users feed folders of face photos that are tight crops (the face fills the picture). BlazeFace
often finds no face there, because it was trained on faces with context around them. For a still
image with no detection this stage (1) runs the detector again on a copy with a black border of
``PAD`` x the longer side, mapping boxes back; (2) for a roughly square image, takes the whole image
as the face, choosing the box so that the model's crop framing cuts exactly the image.
Every result says how its boxes were found in ``FaceBoxes.source``.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from fer_live.detect.plan import still_tiles
from fer_live.detect.table import TilingDetector
from fer_live.infer.card import CropFraming
from fer_live.types import FaceBoxes, Frame

PAD = 0.25
# Width / height range of a picture taken to be one face crop (FER2013 faces are square; ID
# photos are about 3:4).
SQUARE_ASPECT = (0.7, 1.4)


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
        tiles: Tiles across the longer side, or None to choose from each image's size
            (``still_tiles``).
    """

    def __init__(
        self, detector: TilingDetector, framing: CropFraming, tiles: int | None = None
    ) -> None:
        self.detector = detector
        self.framing = framing
        self.tiles = tiles

    def _search(self, frame: Frame) -> FaceBoxes:
        h, w = frame.image.shape[:2]
        return self.detector.detect(frame, self.tiles or still_tiles(w, h))

    def detect(self, frame: Frame) -> FaceBoxes:
        boxes = self._search(frame)
        if len(boxes):
            return boxes
        h, w = frame.image.shape[:2]
        pad = int(round(PAD * max(h, w)))
        padded = cv2.copyMakeBorder(frame.image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        found = self._search(replace(frame, image=padded))
        if len(found):
            # Not clipped: a tight crop's face box reaches past the edges, and the crop needs
            # its true centre and size (the cut replicates the border where it leaves the image).
            return FaceBoxes(found.xyxy - np.float32(pad), found.score, source="padded")
        if SQUARE_ASPECT[0] <= w / h <= SQUARE_ASPECT[1]:
            box = whole_image_box(w, h, self.framing)
            return FaceBoxes(box, np.zeros(1, np.float32), source="whole_image")
        return FaceBoxes.empty()
