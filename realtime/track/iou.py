"""IoU tracking: stable face ids across frames, carried through frames without detection.

Detections are matched to tracks by Hungarian assignment on IoU with each track's
constant-velocity prediction. ``update(None, i)`` means detection was skipped on frame ``i``: the
tracks advance on their prediction and do not age. Ages count only frames where detection ran.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_live.errors import ConfigError
from fer_live.numeric import box_iou
from fer_live.types import FaceBoxes, Tracks

# Weight of the newest displacement in the velocity estimate (the rest is the old estimate).
VELOCITY_GAIN = 0.5


@dataclass
class _TrackState:
    """Mutable state of one track, private to the tracker."""

    track_id: int
    xyxy: np.ndarray  # last matched detection (4,)
    frame: int  # frame index of the last matched detection
    score: float
    velocity: np.ndarray  # box centre motion in pixels per frame (2,)
    hits: int = 1
    misses: int = 0  # consecutive detection frames without a match
    confirmed: bool = False  # reported: min_hits reached, or a confident first detection

    def predict(self, frame_index: int) -> np.ndarray:
        """The last box moved by the centre velocity (its size is kept)."""
        shift = self.velocity * float(frame_index - self.frame)
        return self.xyxy + np.concatenate([shift, shift])

    def match(self, xyxy: np.ndarray, score: float, frame_index: int) -> None:
        moved = (xyxy[:2] + xyxy[2:] - self.xyxy[:2] - self.xyxy[2:]) / 2.0
        step = moved / float(max(frame_index - self.frame, 1))
        self.velocity = (1 - VELOCITY_GAIN) * self.velocity + VELOCITY_GAIN * step
        self.xyxy, self.frame, self.score = xyxy, frame_index, score
        self.hits += 1
        self.misses = 0


def _canonical_order(xyxy: np.ndarray, score: np.ndarray) -> np.ndarray:
    """A detection order that does not depend on the detector's output order."""
    return np.lexsort((-score, xyxy[:, 3], xyxy[:, 2], xyxy[:, 1], xyxy[:, 0]))


def _assign(iou: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (rows, cols) of highest total IoU, as ``linear_sum_assignment(-iou)`` finds them.

    With one track or one detection (most frames) that is its best entry, the first one on ties
    as scipy picks it; only larger frames import scipy.optimize (about 0.5 s of start-up).
    """
    if iou.shape[0] == 1:
        return np.zeros(1, np.intp), np.asarray([np.argmax(iou[0])], np.intp)
    if iou.shape[1] == 1:
        return np.asarray([np.argmax(iou[:, 0])], np.intp), np.zeros(1, np.intp)
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-iou)
    return rows, cols


class IouTracker:
    """Assigns stable ids to face boxes.

    Args:
        iou_threshold: Minimum IoU in (0, 1] between a track's prediction and a detection.
        max_age: A track dies on its ``max_age``-th consecutive detection frame without a match.
        min_hits: Matched detections needed before a track is reported (1 reports at once).
        confirm_score: A new track whose first detection scores at least this is reported at
            once (None: always wait for ``min_hits``). A face is then recorded from its first
            frame, while the weak one-frame detections that ``min_hits`` filters stay filtered.

    Raises:
        ConfigError: An argument is out of range (the message names it).

    Example:
        >>> tracker = IouTracker()
        >>> tracks = tracker.update(detector.detect(frame), frame.index)  # doctest: +SKIP
    """

    def __init__(
        self,
        iou_threshold: float = 0.3,
        max_age: int = 15,
        min_hits: int = 2,
        confirm_score: float | None = None,
    ) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ConfigError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 1:
            raise ConfigError(f"max_age must be an integer >= 1, got {max_age!r}")
        if isinstance(min_hits, bool) or not isinstance(min_hits, int) or min_hits < 1:
            raise ConfigError(f"min_hits must be an integer >= 1, got {min_hits!r}")
        if confirm_score is not None and not 0.0 <= confirm_score <= 1.0:
            raise ConfigError(f"confirm_score must be in [0, 1], got {confirm_score}")
        self.confirm_score = confirm_score
        self.iou_threshold = float(iou_threshold)
        self.max_age = max_age
        self.min_hits = min_hits
        self._tracks: list[_TrackState] = []
        self._next_id = 0
        self._last_frame: int | None = None

    def reset(self) -> None:
        """Forget all tracks and the frame counter; ids keep increasing (never reused)."""
        self._tracks = []
        self._last_frame = None

    def update(self, boxes: FaceBoxes | None, frame_index: int) -> Tracks:
        """Advance the tracks to ``frame_index``.

        Args:
            boxes: This frame's detections, or None when detection was skipped.
            frame_index: Frame number; must increase from call to call.

        Returns:
            The confirmed tracks visible on this frame, ordered by id.

        Raises:
            ValueError: ``frame_index`` did not increase.
        """
        if self._last_frame is not None and frame_index <= self._last_frame:
            raise ValueError(
                f"frame_index must increase: got {frame_index} after {self._last_frame}"
            )
        self._last_frame = frame_index
        if boxes is None:
            return self._report(frame_index, detected=set())
        matched = self._associate(boxes, frame_index)
        return self._report(frame_index, detected=matched)

    def _associate(self, boxes: FaceBoxes, frame_index: int) -> set[int]:
        """Match detections to tracks, age the rest, start new tracks; returns matched ids."""
        order = _canonical_order(boxes.xyxy, boxes.score)
        xyxy = boxes.xyxy[order].astype(np.float64)
        score = boxes.score[order].astype(np.float64)
        pairs: list[tuple[int, int]] = []
        if self._tracks and len(xyxy):
            predicted = np.stack([t.predict(frame_index) for t in self._tracks])
            iou = box_iou(predicted, xyxy)
            iou = np.where(iou >= self.iou_threshold, iou, 0.0)  # weak overlaps never compete
            rows, cols = _assign(iou)
            pairs = [(r, c) for r, c in zip(rows, cols, strict=True) if iou[r, c] > 0.0]
        for r, c in pairs:
            self._tracks[r].match(xyxy[c], float(score[c]), frame_index)
            self._tracks[r].confirmed |= self._tracks[r].hits >= self.min_hits
        matched_ids = {self._tracks[r].track_id for r, _ in pairs}
        for track in self._tracks:
            if track.track_id not in matched_ids:
                track.misses += 1
        self._tracks = [t for t in self._tracks if self._alive(t)]
        used = {c for _, c in pairs}
        for c in range(len(xyxy)):
            if c not in used:
                matched_ids.add(self._start(xyxy[c], float(score[c]), frame_index))
        return matched_ids

    def _alive(self, track: _TrackState) -> bool:
        if track.misses == 0:
            return True
        return track.confirmed and track.misses < self.max_age

    def _start(self, xyxy: np.ndarray, score: float, frame_index: int) -> int:
        confident = self.confirm_score is not None and score >= self.confirm_score
        track = _TrackState(self._next_id, xyxy, frame_index, score, np.zeros(2))
        track.confirmed = confident or self.min_hits <= 1
        self._next_id += 1
        self._tracks.append(track)
        return track.track_id

    def _report(self, frame_index: int, detected: set[int]) -> Tracks:
        visible = [t for t in self._tracks if t.misses == 0 and t.confirmed]
        if not visible:
            return Tracks.empty()
        visible.sort(key=lambda t: t.track_id)
        return Tracks(
            xyxy=np.stack([t.predict(frame_index) for t in visible]).astype(np.float32),
            track_id=np.asarray([t.track_id for t in visible], np.int64),
            score=np.asarray([t.score for t in visible], np.float32),
            detected=np.asarray([t.track_id in detected for t in visible], bool),
        )
