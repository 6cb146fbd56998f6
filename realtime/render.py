"""The overlay: boxes, track ids, top label, a bar chart of all classes and a HUD.

Drawing works on a copy at the source resolution and uses only cheap OpenCV primitives
(rectangles and Hershey text), so it costs well under a millisecond per face.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from realtime.types import Frame, Predictions, Tracks

# BGR colours, distinct and readable on both light and dark backgrounds.
PALETTE = (
    (86, 180, 233),
    (0, 158, 115),
    (230, 159, 0),
    (204, 121, 167),
    (240, 228, 66),
    (0, 114, 178),
    (213, 94, 0),
    (150, 150, 150),
)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_HUD_STAGES = ("decode", "detect", "track", "preprocess", "infer", "smooth", "render", "write")
_SHORT = {"preprocess": "prep"}


@dataclass(frozen=True)
class Hud:
    """What the heads-up display shows: frame rate and per-stage latency in ms."""

    fps: float = 0.0
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    dropped: int = 0


class OverlayRenderer:
    """Draws results onto a copy of the frame.

    Args:
        labels: Class names in probability order.
        bars: Draw the per-class bar chart beside each box.
    """

    def __init__(self, labels: Sequence[str], bars: bool = True) -> None:
        self.labels = tuple(labels)
        self.bars = bars
        self._short = tuple(label[:4] for label in self.labels)

    def draw(
        self, frame: Frame, tracks: Tracks, predictions: Predictions, hud: Hud | None = None
    ) -> np.ndarray:
        """Return an annotated copy of ``frame.image`` (the input is never modified).

        Args:
            frame: The frame to annotate.
            tracks: Visible tracks (boxes and ids).
            predictions: Per-track probabilities; tracks without a row get only a box.
            hud: Frame rate and timings for the top-left display, or None for no HUD.

        Returns:
            BGR uint8 image with the same shape as ``frame.image``.
        """
        canvas = frame.image.copy()
        scale = max(0.55, canvas.shape[0] / 720.0)
        rows = {int(tid): i for i, tid in enumerate(predictions.track_id)}
        for box, tid in zip(tracks.xyxy, tracks.track_id, strict=True):
            row = rows.get(int(tid))
            probs = None if row is None else predictions.probs[row]
            self._draw_face(canvas, box, int(tid), probs, scale)
        if hud is not None:
            self._draw_hud(canvas, hud, len(tracks), scale)
        return canvas

    def _draw_face(
        self, canvas: np.ndarray, box: np.ndarray, tid: int, probs: np.ndarray | None, scale: float
    ) -> None:
        colour = PALETTE[tid % len(PALETTE)]
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        thick = max(1, int(round(2 * scale)))
        cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, thick)
        text = f"#{tid}"
        if probs is not None:
            top = int(np.argmax(probs))
            text += f" {self.labels[top]} {probs[top]:.2f}"
        _label(canvas, text, (x0, y0), colour, scale)
        if probs is not None and self.bars:
            self._draw_bars(canvas, (x0, y0, x1, y1), probs, colour, scale)

    def _draw_bars(
        self,
        canvas: np.ndarray,
        box: tuple[int, int, int, int],
        probs: np.ndarray,
        colour: tuple[int, int, int],
        scale: float,
    ) -> None:
        h, w = canvas.shape[:2]
        row_h = max(9, int(round(18 * scale)))
        font = 0.7 * scale
        text_w = max(cv2.getTextSize(name, _FONT, font, 1)[0][0] for name in self._short) + 4
        bar_w = int(round(70 * scale))
        chart_w = text_w + bar_w + 4
        x = box[2] + 4 if box[2] + 4 + chart_w <= w else max(0, box[0] - 4 - chart_w)
        y = min(max(0, box[1]), max(0, h - row_h * len(probs)))
        cv2.rectangle(canvas, (x, y), (x + chart_w, y + row_h * len(probs)), (0, 0, 0), -1)
        for i, (name, p) in enumerate(zip(self._short, probs, strict=True)):
            top = y + i * row_h
            cv2.putText(canvas, name, (x + 2, top + row_h - 3), _FONT, font, (255, 255, 255), 1)
            bx = x + text_w
            cv2.rectangle(canvas, (bx, top + 2), (bx + bar_w, top + row_h - 2), (40, 40, 40), -1)
            fill = int(round(bar_w * float(np.clip(p, 0.0, 1.0))))
            if fill > 0:
                cv2.rectangle(canvas, (bx, top + 2), (bx + fill, top + row_h - 2), colour, -1)

    def _draw_hud(self, canvas: np.ndarray, hud: Hud, faces: int, scale: float) -> None:
        parts = [
            f"{_SHORT.get(k, k)} {hud.timings_ms[k]:.1f}"
            for k in _HUD_STAGES
            if k in hud.timings_ms
        ]
        lines = [
            f"FPS {hud.fps:.1f}  faces {faces}  dropped {hud.dropped}",
            "ms " + " ".join(parts),
        ]
        font = 0.6 * scale
        line_h = int(round(20 * scale))
        width = max(cv2.getTextSize(line, _FONT, font, 1)[0][0] for line in lines) + 8
        cv2.rectangle(canvas, (0, 0), (width, line_h * len(lines) + 6), (0, 0, 0), -1)
        for i, line in enumerate(lines):
            org = (4, line_h * (i + 1))
            cv2.putText(canvas, line, org, _FONT, font, (255, 255, 255), 1, cv2.LINE_AA)


def _label(
    canvas: np.ndarray,
    text: str,
    corner: tuple[int, int],
    colour: tuple[int, int, int],
    scale: float,
) -> None:
    """Text on a filled background just above ``corner`` (or inside the box at the top edge)."""
    font = 0.9 * scale
    (tw, th), base = cv2.getTextSize(text, _FONT, font, 1)
    x, y = corner
    top = y - th - base - 4 if y - th - base - 4 >= 0 else y
    cv2.rectangle(canvas, (x, top), (x + tw + 4, top + th + base + 4), colour, -1)
    cv2.putText(canvas, text, (x + 2, top + th + 2), _FONT, font, (0, 0, 0), 1, cv2.LINE_AA)
