"""The overlay: boxes, track ids, top label, a bar chart of all classes and a HUD.

Drawing works on a copy at the source resolution and uses only cheap OpenCV primitives
(rectangles and Hershey text), so it costs well under a millisecond per face. Labels and panels
are laid out clear of each other and of other faces (``fer_live.outputs.layout``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from fer_live.infer.decision import UNCERTAIN, decide_label
from fer_live.outputs.layout import FaceLayout, place
from fer_live.types import Frame, Predictions, Tracks

# BGR colours, distinct and readable on both light and dark backgrounds; no grey, which marks
# an uncertain face.
PALETTE = (
    (86, 180, 233),
    (0, 158, 115),
    (230, 159, 0),
    (204, 121, 167),
    (240, 228, 66),
    (0, 114, 178),
    (213, 94, 0),
    (80, 80, 230),
)
# A face below --min-confidence: box, label and bars in grey, whatever its track.
UNCERTAIN_COLOUR = (170, 170, 170)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
# "mesh" only in runs with --face-mesh (a stage missing from a frame's timings is left out)
_HUD_STAGES = (
    "decode",
    "detect",
    "track",
    "mesh",
    "preprocess",
    "infer",
    "smooth",
    "render",
    "write",
)
_SHORT = {"preprocess": "prep"}
# Smallest overlay scale (text still readable); the frame's scale is height / 720.
MIN_SCALE = 0.55
# A face this many px tall gets scale 1: its 8-row panel (18 px a row) is about as tall.
FACE_PX_PER_SCALE = 150.0
COMPACT_ROWS = 3
HUD_MIN_FONT = 0.45
# Timing lines wrap at this share of the frame's width.
HUD_MAX_WIDTH = 0.6


@dataclass(frozen=True)
class Hud:
    """What the heads-up display shows: frame rate (None for a still) and stage latency in ms."""

    fps: float | None = 0.0
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    dropped: int = 0


class OverlayRenderer:
    """Draws results onto a copy of the frame.

    Each face's label and panel are laid out so that they cover no other face, label or panel
    and stay clear of the HUD (``fer_live.outputs.layout``); their size follows the face's size
    (capped by the frame's), so a crowd of small faces gets small panels.

    Args:
        labels: Class names in probability order.
        bars: Draw the per-class bar chart beside each box.
        min_confidence: A face whose top probability is below it is drawn in grey and labelled
            ``uncertain`` (its bars still show every class); None: off.
    """

    def __init__(
        self, labels: Sequence[str], bars: bool = True, min_confidence: float | None = None
    ) -> None:
        self.labels = tuple(labels)
        self.bars = bars
        self.min_confidence = min_confidence
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
        canvas, plan = self._draw_faces(frame, tracks, predictions, hud)
        if plan.hud_lines:
            _draw_hud(canvas, plan.hud_lines, plan.hud_rect, frame_scale_of(canvas.shape[0]))
        return canvas

    def draw_layers(
        self, frame: Frame, tracks: Tracks, predictions: Predictions, hud: Hud
    ) -> tuple[np.ndarray, np.ndarray]:
        """The overlay without and with the HUD, for a window and a file at once.

        Both are laid out as if the HUD were there, so they differ only inside its rectangle.

        Returns:
            (without the HUD, with it): BGR uint8 images shaped like ``frame.image``.
        """
        canvas, plan = self._draw_faces(frame, tracks, predictions, hud)
        with_hud = canvas.copy()
        if plan.hud_lines:
            _draw_hud(with_hud, plan.hud_lines, plan.hud_rect, frame_scale_of(canvas.shape[0]))
        return canvas, with_hud

    def _draw_faces(
        self, frame: Frame, tracks: Tracks, predictions: Predictions, hud: Hud | None
    ) -> tuple[np.ndarray, OverlayPlan]:
        """A copy of the frame with every face drawn, laid out clear of ``hud``'s corner."""
        canvas = frame.image.copy()
        plan = self.plan(canvas.shape[1], canvas.shape[0], tracks, predictions, hud)
        for face in plan.faces:
            thick = max(1, int(round(2 * face.scale)))
            cv2.rectangle(canvas, face.box[:2], face.box[2:], face.colour, thick)
        for face, layout in zip(plan.faces, plan.layouts, strict=True):
            _label(canvas, face.text, layout.label, face.colour, face.scale)
            if layout.panel is not None and face.probs is not None:
                rows = COMPACT_ROWS if layout.compact else len(face.probs)
                self._draw_bars(canvas, layout.panel, face.probs, rows, face.colour, face.scale)
        return canvas, plan

    def plan(
        self,
        width: int,
        height: int,
        tracks: Tracks,
        predictions: Predictions,
        hud: Hud | None = None,
    ) -> OverlayPlan:
        """What ``draw`` draws where on a width x height frame (no pixels touched)."""
        frame_scale = frame_scale_of(height)
        hud_lines = hud_text(hud, len(tracks), width, frame_scale) if hud is not None else []
        hud_rect = _hud_rect(hud_lines, frame_scale)
        faces = self._faces(tracks, predictions, frame_scale)
        layouts = place(
            (width, height),
            [f.box for f in faces],
            [f.label_size for f in faces],
            [f.panel_sizes for f in faces],
            [hud_rect] if hud_lines else [],
        )
        return OverlayPlan(faces, layouts, hud_lines, hud_rect)

    def _faces(
        self, tracks: Tracks, predictions: Predictions, frame_scale: float
    ) -> list[FaceDrawing]:
        """What to draw for each track, in id order (so the layout is stable over frames)."""
        rows = {int(tid): i for i, tid in enumerate(predictions.track_id)}
        faces = []
        for k in np.argsort(tracks.track_id, kind="stable"):
            box, tid = tracks.xyxy[k], tracks.track_id[k]
            row = rows.get(int(tid))
            probs = None if row is None else predictions.probs[row]
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            scale = face_scale(y1 - y0, frame_scale)
            text = f"#{int(tid)}"
            colour = PALETTE[int(tid) % len(PALETTE)]
            if probs is not None:
                label, confidence = decide_label(probs, self.labels, self.min_confidence)
                text += f" {label} {confidence:.2f}"
                colour = UNCERTAIN_COLOUR if label == UNCERTAIN else colour
            (tw, th), base = cv2.getTextSize(text, _FONT, 0.9 * scale, 1)
            panels = []
            if probs is not None and self.bars:
                panels = [
                    self._panel_size(len(probs), scale),
                    self._panel_size(COMPACT_ROWS, scale),
                ]
            faces.append(
                FaceDrawing(
                    (x0, y0, x1, y1),
                    colour,
                    scale,
                    text,
                    (tw + 4, th + base + 4),
                    panels,
                    probs,
                )
            )
        return faces

    def _panel_size(self, rows: int, scale: float) -> tuple[int, int]:
        row_h = max(9, int(round(18 * scale)))
        text_w = max(cv2.getTextSize(n, _FONT, 0.7 * scale, 1)[0][0] for n in self._short) + 4
        return text_w + int(round(70 * scale)) + 4, row_h * rows

    def _draw_bars(
        self,
        canvas: np.ndarray,
        rect: tuple[int, int, int, int],
        probs: np.ndarray,
        rows: int,
        colour: tuple[int, int, int],
        scale: float,
    ) -> None:
        """The classes as bars; a compact panel shows only the ``rows`` most likely ones."""
        x, y = rect[:2]
        row_h = (rect[3] - rect[1]) // rows
        font = 0.7 * scale
        text_w = max(cv2.getTextSize(n, _FONT, font, 1)[0][0] for n in self._short) + 4
        bar_w = rect[2] - x - text_w - 4
        order = range(len(probs)) if rows == len(probs) else np.argsort(-probs)[:rows]
        cv2.rectangle(canvas, rect[:2], rect[2:], (0, 0, 0), -1)
        for i, k in enumerate(order):
            top = y + i * row_h
            name, p = self._short[k], float(probs[k])
            cv2.putText(canvas, name, (x + 2, top + row_h - 3), _FONT, font, (255, 255, 255), 1)
            bx = x + text_w
            cv2.rectangle(canvas, (bx, top + 2), (bx + bar_w, top + row_h - 2), (40, 40, 40), -1)
            fill = int(round(bar_w * float(np.clip(p, 0.0, 1.0))))
            if fill > 0:
                cv2.rectangle(canvas, (bx, top + 2), (bx + fill, top + row_h - 2), colour, -1)


@dataclass(frozen=True)
class FaceDrawing:
    """One face's box, colour, scale, label text and sizes, and probabilities (or None)."""

    box: tuple[int, int, int, int]
    colour: tuple[int, int, int]
    scale: float
    text: str
    label_size: tuple[int, int]
    panel_sizes: list[tuple[int, int]]
    probs: np.ndarray | None


@dataclass(frozen=True)
class OverlayPlan:
    """The overlay of one frame: faces in drawing order, their layouts and the HUD."""

    faces: list[FaceDrawing]
    layouts: list[FaceLayout]
    hud_lines: list[str]
    hud_rect: tuple[int, int, int, int]


def frame_scale_of(height: int) -> float:
    """Size of the overlay's text and lines for a frame of this height (1 at 720 px)."""
    return max(MIN_SCALE, height / 720.0)


def face_scale(box_height: int, frame_scale: float) -> float:
    """A face's decorations follow its size: a panel about as tall as the face, at most the
    frame's scale and at least the smallest readable one."""
    return float(np.clip(box_height / FACE_PX_PER_SCALE, MIN_SCALE, frame_scale))


def hud_font(frame_scale: float) -> float:
    """The HUD's font scale: readable (about 12 px capitals) even on a 360p frame."""
    return max(HUD_MIN_FONT, 0.6 * frame_scale)


def hud_text(hud: Hud, faces: int, width: int, frame_scale: float) -> list[str]:
    """The HUD's lines: rate, faces and drops, then the stage timings wrapped to fit.

    Timing lines are filled up to ``HUD_MAX_WIDTH`` of the frame's width.
    """
    font = hud_font(frame_scale)
    limit = HUD_MAX_WIDTH * width
    if hud.fps is None:  # a photo: no rate, nothing dropped
        lines = [f"faces {faces}"]
    else:
        lines = [f"FPS {hud.fps:.1f}  faces {faces}  dropped {hud.dropped}"]
    line = "ms"
    for key in _HUD_STAGES:
        if key not in hud.timings_ms:
            continue
        item = f"{_SHORT.get(key, key)} {hud.timings_ms[key]:.1f}"
        wider = f"{line} {item}"
        if line != "ms" and cv2.getTextSize(wider, _FONT, font, 1)[0][0] > limit:
            lines.append(line)
            line = "ms " + item
        else:
            line = wider
    if line != "ms":
        lines.append(line)
    return lines


def _hud_rect(lines: Sequence[str], frame_scale: float) -> tuple[int, int, int, int]:
    if not lines:
        return (0, 0, 0, 0)
    font = hud_font(frame_scale)
    line_h = _hud_line_height(font)
    width = max(cv2.getTextSize(line, _FONT, font, 1)[0][0] for line in lines) + 8
    return (0, 0, width, line_h * len(lines) + 6)


def _hud_line_height(font: float) -> int:
    return int(round(font * 100 / 3))


def _draw_hud(
    canvas: np.ndarray, lines: Sequence[str], rect: tuple[int, int, int, int], frame_scale: float
) -> None:
    font = hud_font(frame_scale)
    line_h = _hud_line_height(font)
    cv2.rectangle(canvas, rect[:2], rect[2:], (0, 0, 0), -1)
    for i, line in enumerate(lines):
        org = (4, line_h * (i + 1))
        cv2.putText(canvas, line, org, _FONT, font, (255, 255, 255), 1, cv2.LINE_AA)


def _label(
    canvas: np.ndarray,
    text: str,
    rect: tuple[int, int, int, int],
    colour: tuple[int, int, int],
    scale: float,
) -> None:
    """Text on a filled background filling ``rect`` (sized by ``getTextSize`` + 4 px)."""
    font = 0.9 * scale
    (_, th), _ = cv2.getTextSize(text, _FONT, font, 1)
    x, y = rect[:2]
    cv2.rectangle(canvas, rect[:2], rect[2:], colour, -1)
    cv2.putText(canvas, text, (x + 2, y + th + 2), _FONT, font, (0, 0, 0), 1, cv2.LINE_AA)
