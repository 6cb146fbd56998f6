"""Face detection with MediaPipe's BlazeFace (Tasks API); its output is converted here only.

BlazeFace sees the image at its input size (128 x 128 short-range, 192 x 192 full-range) and finds
faces of at least about 16 % of the searched image's longer side. For small or far faces,
``tiles=N`` also searches overlapping tiles, N across the longer side and as many along the
shorter side as keep them about square (the model pads a tile to a square, so square tiles waste
least of its input), and merges the boxes. Which tiles a frame gets is chosen per call, from its
size, in ``fer_live.detect.plan``.

With ``recheck`` a tile hit too weak to trust on its own, and (unless ``recheck_covered``) not
already covered by a trusted box, is searched again in a crop of twice its size around it, where
the face fills the detector's view as it was trained to see faces; the hit is kept only if that
second look is confident.
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np

from fer_live.capture.native_log import quiet_native_stderr
from fer_live.detect.deferred import deferred
from fer_live.errors import BackendUnavailable, ConfigError, ModelError, first_line
from fer_live.numeric import box_iou
from fer_live.types import FaceBoxes, Frame

logger = logging.getLogger(__name__)

TILE_OVERLAP = 0.25
NMS_IOU = 0.3
# Tiles see little context, so weak tile hits are mostly false positives (e.g. a suit at 0.52).
TILE_MIN_SCORE = 0.7
# A box mostly inside a better one is the same face cut by a tile border.
CONTAINED = 0.6
ALIGN_BYTES = 64
MUTED_FIRST_FRAMES = 5
# Rechecked tile hits: from this score up, re-searched in a crop RECHECK_ZOOM x the box. On FERPlus
# faces pasted at 60-80 px into 640 x 360 frames (benchmarks/robustness.py), 4 tiles find 85 % at
# TILE_MIN_SCORE; with the recheck 95 %, and no more hits on the faceless frames. In a 1080p
# frame on 2 tiles, 160 px faces go from 48 % found to 94 % (benchmarks/face_sizes.py).
RECHECK_FROM = 0.4
RECHECK_ZOOM = 2.0
RECHECK_IOU = 0.3
# Frames are searched at most this long on their longer side. MediaPipe's image transform aborts
# the process (an OpenCV assertion) on a side of 32,767 px or more, and BlazeFace reads a tile at
# 128 px (at most 4 tiles across), so more pixels find no more faces.
SEARCH_MAX_PX = 4096


def import_mediapipe() -> Any:
    """The mediapipe module, its BaseOptions and its vision tasks (BackendUnavailable if absent)."""
    try:
        # Its plotting and microphone helpers, never called here, cost ~0.9 s of start-up.
        with deferred("matplotlib.pyplot", "sounddevice"):
            import mediapipe
            from mediapipe.tasks.python import BaseOptions, vision
    except ImportError:
        raise BackendUnavailable("mediapipe is not installed: pip install mediapipe") from None
    return mediapipe, BaseOptions, vision


def _intersection_over_smaller(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection of ``box`` (4,) with each of ``others`` (M, 4) over the smaller area (M,)."""
    wh = np.minimum(box[2:], others[:, 2:]) - np.maximum(box[:2], others[:, :2])
    inter = np.clip(wh, 0, None).prod(axis=1)
    areas = (others[:, 2:] - others[:, :2]).prod(axis=1)
    smaller = np.minimum(areas, (box[2:] - box[:2]).prod())
    return np.where(smaller > 0, inter / np.maximum(smaller, 1e-9), 0.0)


def _covered(box: np.ndarray, others: np.ndarray) -> bool:
    """Whether ``box`` is the same face as one of ``others`` by ``nms``'s two criteria."""
    if box_iou(box[None], others).max() >= NMS_IOU:
        return True
    return bool(_intersection_over_smaller(box, others).max() >= CONTAINED)


def nms(xyxy: np.ndarray, score: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first.

    A box is also dropped when it lies mostly (``CONTAINED``) inside a kept one: a face cut by a
    tile border gives a part box whose IoU with the whole one is small.
    """
    order = np.argsort(-score, kind="stable")
    keep: list[int] = []
    for i in order:
        if keep:
            kept = xyxy[keep]
            if box_iou(xyxy[i : i + 1], kept).max() >= iou_threshold:
                continue
            if _intersection_over_smaller(xyxy[i], kept).max() >= CONTAINED:
                continue
        keep.append(int(i))
    return np.asarray(keep, np.int64)


def tile_grid(height: int, width: int, tiles: int) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles (x0, y0, x1, y1): ``tiles`` across the longer side, about square.

    A 1920 x 1080 frame gets 2 x 1 tiles for ``tiles=2`` and 3 x 2 for ``tiles=3``; a square
    image gets N x N.
    """
    step = 1.0 - TILE_OVERLAP
    side = max(height, width) / (tiles - (tiles - 1) * TILE_OVERLAP)
    across = max(1, math.ceil((min(height, width) / side - TILE_OVERLAP) / step - 1e-6))
    cols, rows = (tiles, across) if width >= height else (across, tiles)
    tw = width / (cols - (cols - 1) * TILE_OVERLAP)
    th = height / (rows - (rows - 1) * TILE_OVERLAP)
    out = []
    for row in range(rows):
        for col in range(cols):
            x0 = int(round(col * tw * step))
            y0 = int(round(row * th * step))
            out.append((x0, y0, min(width, int(round(x0 + tw))), min(height, int(round(y0 + th)))))
    return out


def _aligned_empty(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised uint8 array in a 64-byte aligned buffer.

    LiteRT copies (and logs a warning for) input buffers that are not 64-byte aligned; numpy only
    guarantees 16.
    """
    size = int(np.prod(shape))
    raw = np.empty(size + ALIGN_BYTES, np.uint8)
    offset = -raw.ctypes.data % ALIGN_BYTES
    return raw[offset : offset + size].reshape(shape)


def _cut(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """A 64-byte aligned copy of the region (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    out = _aligned_empty((y1 - y0, x1 - x0, 3))
    out[...] = rgb[y0:y1, x0:x1]
    return out


def fit_for_search(image: np.ndarray) -> np.ndarray:
    """The image, or a copy shrunk (area-averaged) to ``SEARCH_MAX_PX`` on its longer side."""
    h, w = image.shape[:2]
    scale = SEARCH_MAX_PX / max(h, w)
    if scale >= 1.0:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def scale_boxes(xyxy: np.ndarray, searched: tuple[int, int], full: tuple[int, int]) -> np.ndarray:
    """Boxes (N, 4) found in an image of ``searched`` (H, W) mapped onto one of ``full`` (H, W)."""
    if searched == full:
        return xyxy
    fy, fx = full[0] / searched[0], full[1] / searched[1]
    return (xyxy * np.array([fx, fy, fx, fy])).astype(xyxy.dtype)


def _aligned_rgb(bgr: np.ndarray) -> np.ndarray:
    """RGB copy of a BGR image, 64-byte aligned."""
    rgb = _aligned_empty(bgr.shape)
    cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=rgb)
    return rgb


class MediapipeDetector:
    """BlazeFace face detector.

    Args:
        model_path: The ``.tflite`` model; None uses the shipped, checksum-verified ``model``.
        min_score: Minimum detection confidence in [0, 1].
        max_faces: Keep at most this many faces (highest scores first).
        model: The shipped model: ``short`` (short-range) or ``full`` (full-range, sparse).
        recheck: Keep weak tile hits that a closer look confirms (one more detector call per
            weak hit that no trusted box covers).
        recheck_covered: Also look again at weak hits a trusted box covers (stills): the closer
            look's box is better framed, and wins the merge when it scores higher.

    Raises:
        BackendUnavailable: mediapipe is not installed.
        ModelError: The model file is missing or not a valid detector.
        ConfigError: An argument is out of range.

    Example:
        >>> with MediapipeDetector() as detector:  # doctest: +SKIP
        ...     boxes = detector.detect(frame)
    """

    def __init__(
        self,
        model_path: Path | None = None,
        min_score: float = 0.5,
        max_faces: int = 32,
        model: str = "short",
        recheck: bool = False,
        recheck_covered: bool = False,
    ) -> None:
        from fer_live.detect.models import DETECTOR_MODELS, detector_path

        if model not in DETECTOR_MODELS:
            raise ConfigError(f"model must be one of {', '.join(DETECTOR_MODELS)}, got {model!r}")
        if not 0.0 <= min_score <= 1.0:
            raise ConfigError(f"min_score must be in [0, 1], got {min_score}")
        if max_faces < 1:
            raise ConfigError(f"max_faces must be >= 1, got {max_faces}")
        self.min_score = min_score
        self.max_faces = max_faces
        self.recheck_covered = recheck_covered
        self._muted_frames = MUTED_FIRST_FRAMES
        self._mp, base_options, vision = import_mediapipe()
        if model_path is None:
            model_path = detector_path(model)
        self.model_path = Path(model_path)
        self._detector = self._create(base_options, vision, min_score)
        # A second graph that also returns weak hits, so the whole-frame search stays as it is
        # (BlazeFace's weighted NMS would blend weak boxes into strong ones).
        self._weak = self._create(base_options, vision, RECHECK_FROM) if recheck else None

    def _create(self, base_options: Any, vision: Any, min_score: float) -> Any:
        if not self.model_path.is_file():
            raise ModelError(f"face detector model not found: {self.model_path}")
        options = vision.FaceDetectorOptions(
            base_options=base_options(model_asset_buffer=self.model_path.read_bytes()),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=min_score,
        )
        try:
            with quiet_native_stderr():
                detector = vision.FaceDetector.create_from_options(options)
                # The first run logs native warnings once (glog's "before InitGoogle" and
                # LiteRT's misaligned-input copy): run it here, muted, on a blank image that is
                # misaligned on purpose, so both are spent now whatever the allocator returned.
                raw = np.zeros(64 * 64 * 3 + ALIGN_BYTES + 1, np.uint8)
                start = (-raw.ctypes.data % ALIGN_BYTES) + 1
                misaligned = raw[start : start + 64 * 64 * 3].reshape(64, 64, 3)
                blank = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=misaligned)
                detector.detect(blank)
            return detector
        except Exception as exc:  # mediapipe raises RuntimeError/ValueError with C++ traces
            raise ModelError(
                f"cannot load face detector {self.model_path}: {first_line(exc)}"
            ) from None

    def detect(self, frame: Frame, tiles: int | None = None) -> FaceBoxes:
        """Find faces in a frame (one longer than ``SEARCH_MAX_PX`` is searched shrunk).

        Args:
            frame: The frame (BGR uint8).
            tiles: Tiles across the longer side (1 or None: the whole frame only; N >= 2 also
                N tiles across, the frame searched whole too).

        Returns:
            Boxes (N, 4) as pixel xyxy clipped to the image, with scores (N,), best first.
        """
        rgb = _aligned_rgb(fit_for_search(frame.image))
        # LiteRT may still log its one-time input-copy warning on one of the first real frames
        # (seen on some runs, not others, after the muted warm-up): mute those frames too.
        muted = self._muted_frames > 0
        self._muted_frames -= muted
        with quiet_native_stderr() if muted else contextlib.nullcontext():
            xyxy, score = self._detect_rgb(rgb)
            if tiles is not None and tiles > 1:
                xyxy, score = self._add_tiles(rgb, xyxy, score, tiles)
        h, w = frame.image.shape[:2]
        xyxy = scale_boxes(xyxy, rgb.shape[:2], (h, w))
        xyxy = np.clip(xyxy, 0, [w, h, w, h]).astype(np.float32)
        valid = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        xyxy, score = xyxy[valid], score[valid]
        order = np.argsort(-score, kind="stable")[: self.max_faces]
        return FaceBoxes(xyxy[order], score[order].astype(np.float32))

    def _detect_rgb(self, rgb: np.ndarray, graph: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Run mediapipe once; unclipped xyxy (N, 4) float64 and scores (N,)."""
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        result = (graph or self._detector).detect(image)
        boxes, scores = [], []
        for det in result.detections:
            bb = det.bounding_box
            x0, y0 = float(bb.origin_x), float(bb.origin_y)
            boxes.append((x0, y0, x0 + float(bb.width), y0 + float(bb.height)))
            scores.append(float(det.categories[0].score) if det.categories else 0.0)
        return np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64)

    def _add_tiles(
        self, rgb: np.ndarray, xyxy: np.ndarray, score: np.ndarray, tiles: int
    ) -> tuple[np.ndarray, np.ndarray]:
        trusted = max(self.min_score, TILE_MIN_SCORE)
        boxes, scores = [xyxy], [score]
        for tile in tile_grid(rgb.shape[0], rgb.shape[1], tiles):
            found, found_scores = self._detect_rgb(_cut(rgb, tile), self._weak)
            boxes.append(found + np.asarray(tile[:2] * 2, np.float64))
            scores.append(found_scores)
        # The whole-frame boxes passed min_score already; tile hits must be trusted or confirmed.
        strong = np.concatenate([np.ones(len(xyxy), bool), *(s >= trusted for s in scores[1:])])
        xyxy, score = np.concatenate(boxes), np.concatenate(scores)
        if self._weak is not None:
            xyxy, score, strong = self._confirm(rgb, xyxy, score, strong, trusted)
        keep = nms(xyxy[strong], score[strong], NMS_IOU)
        return xyxy[strong][keep], score[strong][keep]

    def _confirm(
        self,
        rgb: np.ndarray,
        xyxy: np.ndarray,
        score: np.ndarray,
        strong: np.ndarray,
        trusted: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Recheck weak hits, best first, that no trusted box already covers (a face cut by a
        tile border scores weak in one tile and strong in another: no second look needed)."""
        xyxy, score, strong = xyxy.copy(), score.copy(), strong.copy()
        for i in np.argsort(-score, kind="stable"):
            if strong[i]:
                continue
            if not self.recheck_covered and strong.any() and _covered(xyxy[i], xyxy[strong]):
                continue
            xyxy[i], score[i] = self._recheck(rgb, xyxy[i])
            strong[i] = score[i] >= trusted
        return xyxy, score, strong

    def _recheck(self, rgb: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, float]:
        """The best box matching ``box`` in a crop RECHECK_ZOOM x its size, and its score."""
        centre, side = (box[:2] + box[2:]) / 2.0, RECHECK_ZOOM * float(np.max(box[2:] - box[:2]))
        h, w = rgb.shape[:2]
        x0, y0 = np.maximum(np.round(centre - side / 2.0), 0).astype(int)
        x1, y1 = np.minimum(np.round(centre + side / 2.0), [w, h]).astype(int)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return box, 0.0
        boxes, scores = self._detect_rgb(_cut(rgb, (x0, y0, x1, y1)), self._weak)
        boxes += [x0, y0, x0, y0]
        match = box_iou(box[None], boxes)[0] >= RECHECK_IOU if len(boxes) else np.zeros(0, bool)
        if not match.any():
            return box, 0.0
        best = int(np.flatnonzero(match)[np.argmax(scores[match])])
        return boxes[best], float(scores[best])

    def close(self) -> None:
        """Release the mediapipe graph."""
        for name in ("_detector", "_weak"):
            detector = self.__dict__.pop(name, None)
            if detector is not None:
                with quiet_native_stderr():
                    detector.close()

    def __enter__(self) -> MediapipeDetector:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # At interpreter shutdown mediapipe may already be torn down.
        with contextlib.suppress(Exception):
            self.close()
