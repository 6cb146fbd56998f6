"""Still images the detector misses are still read: a padded retry, then the whole image.

Users feed folders of face photos that are tight crops (the face fills the picture). BlazeFace
often finds no face there, because it was trained on faces with context around them. For a still
image with no detection this stage (1) runs the detector again on a copy with a black border of
``PAD`` x the longer side, mapping boxes back; (2) for a roughly square image, takes the whole image
as the face, choosing the box so that the model's crop framing cuts exactly the image.
Every result says how its boxes were found in ``FaceBoxes.source``.

Every face found needs evidence, or a landscape, a flat colour or noise gets an expression (a
whole-image box for every square picture, a weak detector hit on a wall). A hit the detector is
sure of (``DETECT_TRUSTED``) needs none; a weaker hit, on the picture or on the padded copy, must
be found again by the detector on a copy with a wider black border (``SECOND_LOOK_BORDER``), or
MediaPipe's face landmarker (its detector at a low floor, then its face mesh's presence score)
must see a face around it (``LandmarkerEvidence``), or the model's own face probe must be sure
(``ProbeEvidence``, ``fer_live.infer.probe``). The whole-image box needs the probe (or, for a model
without one, the landmarker), and a picture under ``MIN_FACE_PX`` gets no fallback.
``benchmarks/nonface_check.py`` measures it: 200 pictures without a face got a face in 175 cases,
with the landmarker for the fallbacks only in 7 (5 from the detector itself), now in 1 (0.5 %).
FERPlus tight crops kept a face in 98.68 % (Valid) and 98.69 % (Test) with the landmarker alone
(profiles, hands over faces and drawings that neither MediaPipe model takes for a face); with the
probe 99.53 % and 99.55 %, and 600 held-out non-face pictures get a face in 9 cases, not 16
(``benchmarks/still_rules.py``). A second look is one detector call (about 5 ms on a 192 px
crop); the probe one model call (about 2 ms); the landmarker, when it runs, 1-3 calls (7-23 ms).

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

from fer_live.detect.landmarker import Landmarker
from fer_live.detect.mediapipe import fit_for_search, scale_boxes
from fer_live.detect.plan import still_tiles
from fer_live.detect.table import TilingDetector
from fer_live.infer.card import CropFraming, ModelCard
from fer_live.infer.preprocess import crop_faces, to_model_input
from fer_live.infer.probe import FaceProbe, probe_for
from fer_live.numeric import box_iou
from fer_live.types import CPU, FaceBoxes, Frame

PAD = 0.25
# Width / height range of a picture taken to be one face crop (FER2013 faces are square; ID
# photos are about 3:4).
SQUARE_ASPECT = (0.7, 1.4)
# The border is PAD x the longer side, but at most PAD x this many times the shorter side.
BORDER_MAX_ASPECT = 2.0
# A hit under DETECT_TRUSTED (the whole picture's or the padded copy's) needs a second look: the
# detector again, on the picture with a black border of SECOND_LOOK_BORDER x its longer side, must
# find it (IoU >= SECOND_LOOK_IOU) at SECOND_LOOK_MIN, or else the landmarker must see a face
# around it. Chosen on FERPlus Valid tight crops and benchmarks/nonface_check.py's pictures: 5 of
# the 7 faces found in pictures without one were the detector's own hits at 0.56-0.73, and none of
# them is found again on the bordered copy at 0.5, while 99.4 % of the Valid crops' hits under
# 0.8 are. The padded copy's hits get their second look with the wider border.
DETECT_TRUSTED = 0.75
SECOND_LOOK_BORDER = {"detector": PAD, "padded": 0.5}
SECOND_LOOK_MIN = 0.5
SECOND_LOOK_IOU = 0.3
# The landmarker looks at a box's surroundings: the box grown this many times, within the picture.
AROUND_BOX = 1.5
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
# With the model's face probe (``ProbeEvidence``): the whole picture is a face when the probe says
# so at its own threshold (the landmarker is not asked: it took 5 of 600 held-out non-face
# pictures, dark crops and cloud textures, for faces the probe put under 0.1); a weak hit is kept
# when the probe gives it PROBE_WEAK_HIT or more, and its second look counts only when the probe
# gives it at least PROBE_VETO. Chosen with benchmarks/still_rules.py on FERPlus Valid tight crops
# and 600 held-out non-face pictures (benchmarks/results/still_rules_valid.json).
PROBE_WEAK_HIT = 0.9
PROBE_VETO = 0.01


class FaceEvidence(Protocol):
    def confirms(self, image: np.ndarray) -> bool: ...


class BoxEvidence(Protocol):
    @property
    def threshold(self) -> float: ...

    def face_prob(self, image: np.ndarray, box: np.ndarray) -> float: ...


class ProbeEvidence:
    """Whether the crop the model would read around a box is a face, by the model's own
    embedding and its face probe (``fer_live.infer.probe``).

    The detector runs on the read-ahead thread while the run's backend infers on the main one.
    An ONNX Runtime session may be run from two threads, so an ONNX run's backend is shared;
    another backend (TorchScript, TensorRT) may not, and the probe then opens an ONNX Runtime
    session of its own (one thread, CPU) at its first use (about 0.4 s).

    Args:
        model_path: The model's ``.onnx`` file (the run may use its TorchScript or engine twin).
        card: The model's card (framing, input size, normalization).
        probe: The probe fitted on that model's embedding.
        shared: The run's backend when it is an ONNX Runtime one, else None.
    """

    def __init__(
        self, model_path: Path, card: ModelCard, probe: FaceProbe, shared: Any = None
    ) -> None:
        self.model_path = Path(model_path)
        self.card = card
        self.probe = probe
        self._backend: Any = shared
        self._owned = False

    def face_prob(self, image: np.ndarray, box: np.ndarray) -> float:
        """The probe's face probability for the model's crop of ``image`` (H, W, 3) around
        ``box`` (4,); 0 when the model gives no embedding."""
        if self._backend is None:
            from fer_live.infer.backends.ort import OnnxBackend

            self._backend = OnnxBackend(self.model_path, CPU, threads=1)
            self._owned = True
        pixels = to_model_input(crop_faces(image, box[None], self.card), self.card)
        embedding = self._backend.infer(pixels).embedding
        return 0.0 if embedding is None else float(self.probe.face_prob(embedding)[0])

    @property
    def threshold(self) -> float:
        """The face probability at or above which the crop is a face."""
        return self.probe.threshold

    def close(self) -> None:
        """Release the probe's session (not the run's backend it shares)."""
        backend, self._backend = self._backend, None
        if backend is not None and self._owned:
            backend.close()


class LandmarkerEvidence:
    """Whether a picture holds a face, by MediaPipe's face landmarker (Tasks API).

    Args:
        model_path: The ``.task`` bundle; None uses the shipped, checksum-verified one.

    Raises:
        BackendUnavailable: mediapipe is not installed.
        ModelError: The bundle is missing or not a face landmarker.
    """

    def __init__(self, model_path: Path | None = None) -> None:
        self._landmarker = Landmarker(
            model_path,
            num_faces=1,
            min_face_detection_confidence=EVIDENCE_DETECT_FLOOR,
            min_face_presence_confidence=EVIDENCE_PRESENCE,
        )

    def _detect(self, bgr: np.ndarray) -> bool:
        return bool(self._landmarker.detect(bgr).face_landmarks)

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
        self._landmarker.close()

    def __enter__(self) -> LandmarkerEvidence:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def still_probe(model_path: Path, card: ModelCard, backend: Any = None) -> ProbeEvidence | None:
    """The face probe of the model at ``model_path`` (any of its forms), or None without one.

    Args:
        model_path: The run's model file.
        card: Its card.
        backend: The run's backend, shared when it runs that model on ONNX Runtime.

    Raises:
        ModelError: The probe is corrupt, malformed or fitted on another model.
    """
    from fer_live.infer.backends.ort import OnnxBackend

    probe = probe_for(Path(model_path), card)
    onnx = Path(model_path).with_suffix(".onnx")
    if probe is None or not onnx.is_file():
        return None
    shared = backend if isinstance(backend, OnnxBackend) and backend.path == onnx else None
    return ProbeEvidence(onnx, card, probe, shared)


def whole_image_box(width: int, height: int, framing: CropFraming) -> np.ndarray:
    """The detector-like box (1, 4) whose framed crop is the image's inscribed square."""
    side = min(width, height)
    size = side / framing.scale
    cx = width / 2.0 - framing.shift_x * size
    cy = height / 2.0 - framing.shift_y * size
    half = size / 2.0
    return np.array([[cx - half, cy - half, cx + half, cy + half]], np.float32)


def around_box(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The square around ``box`` (4,), grown ``AROUND_BOX`` times and cut to the picture."""
    h, w = image.shape[:2]
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    half = max(box[2] - box[0], box[3] - box[1]) * AROUND_BOX / 2.0
    x0, y0 = int(max(0.0, cx - half)), int(max(0.0, cy - half))
    x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
    return image[y0:y1, x0:x1] if x1 - x0 >= 2 and y1 - y0 >= 2 else image


def bordered(image: np.ndarray, pad: int) -> np.ndarray:
    """``image`` with a black border of ``pad`` pixels on every side."""
    return cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)


class StillFallback:
    """A detector for independent still images, with the padded and whole-image fallbacks.

    Args:
        detector: The face detector.
        framing: The model card's crop framing (for the whole-image box).
        evidence: Says whether a picture holds a face, before a fallback is taken.
        tiles: Tiles across the longer side, or None to choose from each image's size
            (``still_tiles``).
        second: The detector of the second look, at the floor ``SECOND_LOOK_MIN``; None skips
            the second look (a weak hit then needs the landmarker's evidence).
        probe: Face evidence from the model's own embedding of the crop around a box: it
            decides the whole picture alone and weighs in on weak hits (``PROBE_WEAK_HIT``,
            ``PROBE_VETO``); None leaves the second look and the landmarker alone.
    """

    def __init__(
        self,
        detector: TilingDetector,
        framing: CropFraming,
        evidence: FaceEvidence,
        tiles: int | None = None,
        second: TilingDetector | None = None,
        probe: BoxEvidence | None = None,
    ) -> None:
        self.detector = detector
        self.framing = framing
        self.evidence = evidence
        self.tiles = tiles
        self.second = second
        self.probe = probe

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

    def _seen_again(self, frame: Frame, box: np.ndarray, border: float) -> bool:
        """Whether the second look finds ``box`` on a copy with a black border."""
        if self.second is None:
            return False
        pad = round(border * max(frame.image.shape[:2]))
        again = self.second.detect(replace(frame, image=bordered(frame.image, pad)), 1)
        if not len(again):
            return False
        return bool(box_iou(box[None] + np.float32(pad), again.xyxy).max() >= SECOND_LOOK_IOU)

    def _confirmed(self, frame: Frame, boxes: FaceBoxes) -> FaceBoxes:
        """The boxes the detector is sure of, or that the probe, a second look or the landmarker
        confirms."""
        border = SECOND_LOOK_BORDER[boxes.source]
        keep = [
            i
            for i, (box, score) in enumerate(zip(boxes.xyxy, boxes.score, strict=True))
            if score >= DETECT_TRUSTED or self._weak_hit_kept(frame, box, border)
        ]
        return FaceBoxes(boxes.xyxy[keep], boxes.score[keep], source=boxes.source)

    def _weak_hit_kept(self, frame: Frame, box: np.ndarray, border: float) -> bool:
        prob = None if self.probe is None else self.probe.face_prob(frame.image, box)
        if prob is not None and prob >= PROBE_WEAK_HIT:
            return True
        if (prob is None or prob >= PROBE_VETO) and self._seen_again(frame, box, border):
            return True
        return self.evidence.confirms(around_box(frame.image, box))

    def _fallbacks(self, frame: Frame) -> FaceBoxes:
        boxes = self._search(frame)
        if len(boxes):
            return self._confirmed(frame, boxes)
        h, w = frame.image.shape[:2]
        if min(h, w) < MIN_FACE_PX:
            return FaceBoxes.empty()
        pad = int(round(PAD * min(max(h, w), BORDER_MAX_ASPECT * min(h, w))))
        found = self._search(replace(frame, image=bordered(frame.image, pad)))
        if len(found):
            # Not clipped: a tight crop's face box reaches past the edges, and the crop needs
            # its true centre and size (the cut replicates the border where it leaves the image).
            shifted = FaceBoxes(found.xyxy - np.float32(pad), found.score, source="padded")
            return self._confirmed(frame, shifted)
        if not SQUARE_ASPECT[0] <= w / h <= SQUARE_ASPECT[1]:
            return FaceBoxes.empty()
        box = whole_image_box(w, h, self.framing)
        if self.probe is not None:
            face = self.probe.face_prob(frame.image, box[0]) >= self.probe.threshold
        else:
            face = self.evidence.confirms(frame.image)
        if not face:
            return FaceBoxes.empty()
        return FaceBoxes(box, np.zeros(1, np.float32), source="whole_image")
