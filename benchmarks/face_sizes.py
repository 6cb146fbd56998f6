"""Which face sizes each detector setting finds in a 1920 x 1080 frame, and at what cost.

Frames of the Pexels clip are scaled so that the face (the detector's box on the 640 x 360
frame) is S px wide and tiled edge to edge over a 1080p canvas; a face counts as found when a
detection overlaps its scaled box with IoU >= 0.3. Detector only: no tracking, no classifier.
Used by ``benchmarks/crowd.py``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_live.detect.mediapipe import MediapipeDetector
from fer_live.numeric import box_iou
from fer_live.types import Frame

CANVAS_WH = (1920, 1080)
SIZES_PX = (40, 60, 80, 100, 120, 160, 200, 260)
# (name, detector model, tiles across the longer side, weak tile hits rechecked); the product
# rechecks (``detect.table.open_blazeface``), the rows without it show what the recheck adds.
SETTINGS = (
    ("short, whole frame", "short", 1, False),
    ("short, 2 tiles, no recheck", "short", 2, False),
    ("short, 2 tiles", "short", 2, True),
    ("short, 3 tiles, no recheck", "short", 3, False),
    ("short, 3 tiles", "short", 3, True),
    ("short, 4 tiles, no recheck", "short", 4, False),
    ("short, 4 tiles", "short", 4, True),
    ("full range, whole frame", "full", 1, False),
    ("full range, 2 tiles", "full", 2, True),
)
MATCH_IOU = 0.3


@dataclass(frozen=True)
class Canvas:
    """A 1080p test image and the boxes (N, 4) of the faces on it."""

    image: np.ndarray
    boxes: np.ndarray


def reference_faces(video: Path, count: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` frames spread over the clip, each with its one face box (4,) found whole."""
    import av

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    picks = np.linspace(0, len(frames) - 1, count + 2)[1:-1].astype(int)
    out = []
    with MediapipeDetector(max_faces=1) as detector:
        for i in picks:
            boxes = detector.detect(Frame(int(i), 0.0, frames[i]))
            if len(boxes):
                out.append((frames[i], boxes.xyxy[0].astype(np.float64)))
    return out


def make_canvas(image: np.ndarray, box: np.ndarray, face_px: int) -> Canvas:
    """The frame scaled to a ``face_px`` wide face, repeated edge to edge over 1920 x 1080."""
    scale = face_px / float(box[2] - box[0])
    h, w = image.shape[:2]
    tw, th = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    small = cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA)
    cols, rows = CANVAS_WH[0] // tw, CANVAS_WH[1] // th
    canvas = np.zeros((CANVAS_WH[1], CANVAS_WH[0], 3), np.uint8)
    boxes = []
    for r in range(rows):
        for c in range(cols):
            canvas[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = small
            boxes.append(box * scale + [c * tw, r * th, c * tw, r * th])
    return Canvas(canvas, np.asarray(boxes, np.float64).reshape(-1, 4))


def found_share(canvas: Canvas, found: np.ndarray) -> tuple[int, int]:
    """(faces found, false detections) of detections (M, 4) against the canvas's faces."""
    if not len(found):
        return 0, 0
    iou = box_iou(canvas.boxes, found)
    return int((iou.max(axis=1) >= MATCH_IOU).sum()), int((iou.max(axis=0) < MATCH_IOU).sum())


def measure(
    video: Path, sizes: Sequence[int] = SIZES_PX, on_step: object = None
) -> list[dict[str, object]]:
    """Recall per face size and detector time per 1080p frame, for every setting.

    Args:
        video: The one-face clip the canvases are made of.
        sizes: Face widths in px.
        on_step: Called with no argument after each setting (progress bars).

    Returns:
        One row per setting: name, ``recall`` {size: share}, ``false`` detections in all,
        ``ms_per_frame`` (mean over all canvases).
    """
    refs = reference_faces(video)
    canvases = {px: [make_canvas(im, box, px) for im, box in refs] for px in sizes}
    rows = []
    for name, model, tiles, recheck in SETTINGS:
        recall, false, seconds, calls = {}, 0, 0.0, 0
        options = {"model": model, "recheck": recheck}
        with MediapipeDetector(min_score=0.55, max_faces=1000, **options) as det:
            for px, group in canvases.items():
                hit = total = 0
                for canvas in group:
                    start = time.perf_counter()
                    boxes = det.detect(Frame(0, 0.0, canvas.image), tiles)
                    seconds += time.perf_counter() - start
                    calls += 1
                    got, wrong = found_share(canvas, boxes.xyxy)
                    hit, total, false = hit + got, total + len(canvas.boxes), false + wrong
                recall[px] = hit / total
        rows.append(
            {
                "setting": name,
                "model": model,
                "tiles": tiles,
                "recheck": recheck,
                "recall": recall,
                "false": false,
                "ms_per_frame": 1000.0 * seconds / calls,
            }
        )
        if callable(on_step):
            on_step()
    return rows
