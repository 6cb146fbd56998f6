"""Expression events from one track's smoothed probabilities, with hysteresis.

An event is a stretch of a track's frames where one non-neutral expression holds:

- **Entry.** A class *qualifies* on a frame when it is the frame's top class, is not neutral and
  has probability >= ``enter``. A class that qualifies on every frame for ``min_s`` seconds
  (first to last of those frames) opens an event; its onset is the first of those frames, so
  the onset is not delayed by the wait, only the moment the event is known.
- **Hold.** The event's class *holds* on a frame while its probability is >= ``exit``
  (``exit`` <= ``enter``): a dip below ``exit`` shorter than ``gap_s`` is bridged.
- **Exit.** The event closes once its class has not held for ``gap_s`` seconds (since the
  last frame it held), or when another class qualifies for ``min_s`` (it takes over: the old
  event ends before the new one's onset), or when the track ends. Its offset is the last frame
  its class held, so a close is never later than the data, only known ``gap_s`` later.
- **Minimum duration.** Entry needs ``min_s`` of qualifying frames, so no event lasts less
  than ``min_s`` (``duration_s`` = offset time - onset time).

The apex is the frame of the highest probability of the event's class (the first on a tie); the
mean is over every frame of the track from onset to offset, dips included. The frames not yet
settled (a dip, a class that may take over) wait in a list that never spans more than about
``max(min_s, gap_s)`` of the track, so memory stays flat on long videos.

Defaults: chosen on Valid-derived sequences (``benchmarks/events.py --split valid``); see
docs/events.md for the numbers and the delay they add.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fer_live.errors import ConfigError

# Times are compared with this slack: 6 frames at 30 fps are 0.19999999999999998 s.
_EPS_S = 1e-6


@dataclass(frozen=True)
class EventSettings:
    """Hysteresis and minimum duration of expression events.

    Attributes:
        enter: A class qualifies on a frame when it is the top class with at least this
            probability.
        exit: An open event's class holds while its probability is at least this (<= enter).
        min_s: A class must qualify this long (seconds) to open an event: the shortest event.
        gap_s: An event closes once its class has not held for this long (seconds).
        neutral: Classes that never form an event.

    Raises:
        ConfigError: A value out of range (the message names it).
    """

    # chosen on Valid-derived sequences (benchmarks/results/events_valid.md); docs/events.md
    enter: float = 0.6
    exit: float = 0.5
    min_s: float = 0.5
    gap_s: float = 0.3
    neutral: tuple[str, ...] = ("neutral",)

    def __post_init__(self) -> None:
        for name in ("enter", "exit"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 < value <= 1.0):
                raise ConfigError(f"events {name} must be in (0, 1], got {value}")
        if self.exit > self.enter:
            raise ConfigError(f"events exit ({self.exit}) must be <= enter ({self.enter})")
        for name in ("min_s", "gap_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ConfigError(f"events {name} must be >= 0 seconds, got {value}")


@dataclass(frozen=True)
class Event:
    """One expression event of one track.

    Attributes:
        track_id: The tracker's id.
        label: The expression.
        onset_frame: First frame of the event.
        onset_t_s: Its time in seconds.
        apex_frame: The frame of the highest probability of ``label`` within the event.
        apex_t_s: Its time in seconds.
        offset_frame: Last frame of the event (the last one ``label`` held).
        offset_t_s: Its time in seconds.
        apex_prob: The probability of ``label`` at the apex.
        mean_prob: Its mean over the event's frames.
        frames: Frames of the track from onset to offset (frames without the face not counted).
    """

    track_id: int
    label: str
    onset_frame: int
    onset_t_s: float
    apex_frame: int
    apex_t_s: float
    offset_frame: int
    offset_t_s: float
    apex_prob: float
    mean_prob: float
    frames: int

    @property
    def duration_s(self) -> float:
        """Seconds from onset to offset."""
        return self.offset_t_s - self.onset_t_s


@dataclass(frozen=True)
class _Row:
    frame: int
    t_s: float
    probs: np.ndarray
    qualifies: int  # the class that qualifies on this frame, else -1


@dataclass
class _Open:
    """An open event's running figures (its frames themselves are not kept)."""

    label: int
    onset: _Row
    apex: _Row
    last: _Row
    total: float = 0.0
    count: int = 0

    def fold(self, rows: Sequence[_Row]) -> None:
        for row in rows:
            p = float(row.probs[self.label])
            self.total += p
            self.count += 1
            if p > float(self.apex.probs[self.label]):
                self.apex = row
            self.last = row


class TrackEvents:
    """The event state machine of one track: push its frames in order, get the closed events.

    Args:
        track_id: The track's id (copied into its events).
        labels: Class names, in probability order.
        settings: Hysteresis and minimum duration.
    """

    def __init__(
        self, track_id: int, labels: Sequence[str], settings: EventSettings | None = None
    ) -> None:
        self.track_id = int(track_id)
        self.labels = tuple(labels)
        self.settings = settings or EventSettings()
        self._eligible = np.array([name not in self.settings.neutral for name in self.labels])
        self._open: _Open | None = None
        self._pending: list[_Row] = []

    @property
    def open_label(self) -> str | None:
        """The expression of the open event, or None."""
        return None if self._open is None else self.labels[self._open.label]

    def push(self, frame: int, t_s: float, probs: np.ndarray) -> list[Event]:
        """Add the track's next frame; returns the events it closed (none, one, rarely two).

        Raises:
            ValueError: ``probs`` is not one probability per class.
        """
        probs = np.asarray(probs, np.float64)
        if probs.shape != (len(self.labels),):
            raise ValueError(f"probs must have shape ({len(self.labels)},), got {probs.shape}")
        top = int(np.argmax(probs))
        qualifies = top if self._eligible[top] and probs[top] >= self.settings.enter else -1
        self._pending.append(_Row(int(frame), float(t_s), probs, qualifies))
        return self._step()

    def close(self) -> list[Event]:
        """End the track: close its open event (if any) at the last frame its class held."""
        closed = [] if self._open is None else [self._close_before(len(self._pending))]
        self._pending = []
        return closed

    def _step(self) -> list[Event]:
        if self._open is None:
            self._try_open()
            return []
        label, pending, settings = self._open.label, self._pending, self.settings
        run = self._run_start(exclude=label)
        if run is not None and self._span(run) >= settings.min_s - _EPS_S:
            closed = self._close_before(run)
            self._pending = pending[run:]
            self._try_open()
            return [closed]
        if pending[-1].probs[label] >= settings.exit:
            if run is None:  # it holds and nothing is taking over: the frames are its own
                self._open.fold(pending)
                self._pending = []
            return []
        streak = len(pending)
        while streak > 0 and pending[streak - 1].probs[label] < settings.exit:
            streak -= 1
        held_t = pending[streak - 1].t_s if streak > 0 else self._open.last.t_s
        if pending[-1].t_s - held_t < settings.gap_s - _EPS_S:
            return []
        closed = self._close_before(streak)
        self._pending = pending[streak:]
        self._try_open()
        return [closed]

    def _run_start(self, exclude: int = -1) -> int | None:
        """Where the trailing run of frames on which one class (not ``exclude``) qualifies
        starts in the pending frames, or None when the newest frame has no such class."""
        pending = self._pending
        label = pending[-1].qualifies
        if label < 0 or label == exclude:
            return None
        start = len(pending) - 1
        while start > 0 and pending[start - 1].qualifies == label:
            start -= 1
        return start

    def _span(self, start: int) -> float:
        return self._pending[-1].t_s - self._pending[start].t_s

    def _try_open(self) -> None:
        """No open event: keep only the trailing qualifying run, and open it once it is long
        enough."""
        start = self._run_start()
        if start is None:
            self._pending = []
            return
        self._pending = self._pending[start:]
        if self._span(0) < self.settings.min_s - _EPS_S:
            return
        first = self._pending[0]
        self._open = _Open(first.qualifies, first, first, first)
        self._open.fold(self._pending)
        self._pending = []

    def _close_before(self, end: int) -> Event:
        """Close the open event with the pending frames before ``end`` up to the last one on
        which its class held."""
        assert self._open is not None
        event, exit_p = self._open, self.settings.exit
        held = end
        while held > 0 and self._pending[held - 1].probs[event.label] < exit_p:
            held -= 1
        event.fold(self._pending[:held])
        self._open = None
        return Event(
            track_id=self.track_id,
            label=self.labels[event.label],
            onset_frame=event.onset.frame,
            onset_t_s=event.onset.t_s,
            apex_frame=event.apex.frame,
            apex_t_s=event.apex.t_s,
            offset_frame=event.last.frame,
            offset_t_s=event.last.t_s,
            apex_prob=float(event.apex.probs[event.label]),
            mean_prob=event.total / event.count,
            frames=event.count,
        )


class EventDetector:
    """Events of every track of a stream: feed each frame's tracks, get the closed events.

    A track missing from a frame has ended (the tracker lost it; ids are never reused): its
    open event closes then.

    Args:
        labels: Class names, in probability order.
        settings: Hysteresis and minimum duration (None: the defaults).

    Example:
        >>> detector = EventDetector(["neutral", "happiness"])
        >>> for i in range(10):
        ...     closed = detector.update(i, i / 30, {1: np.array([0.1, 0.9])})
        >>> [(e.label, e.onset_frame, e.offset_frame) for e in detector.close()]
        [('happiness', 0, 9)]
    """

    def __init__(self, labels: Sequence[str], settings: EventSettings | None = None) -> None:
        self.labels = tuple(labels)
        self.settings = settings or EventSettings()
        self._tracks: dict[int, TrackEvents] = {}

    def update(self, frame: int, t_s: float, rows: Mapping[int, np.ndarray]) -> list[Event]:
        """One frame: each present track's probabilities (C,) by track id.

        Returns:
            The events closed by this frame: tracks that ended first, then in track order.
        """
        closed: list[Event] = []
        for track_id in sorted(set(self._tracks) - set(rows)):
            closed += self._tracks.pop(track_id).close()
        for track_id in sorted(rows):
            track = self._tracks.get(track_id)
            if track is None:
                track = self._tracks[track_id] = TrackEvents(track_id, self.labels, self.settings)
            closed += track.push(frame, t_s, rows[track_id])
        return closed

    def close(self) -> list[Event]:
        """End of the stream: close every open event (in track order) and forget the tracks."""
        closed = [event for tid in sorted(self._tracks) for event in self._tracks[tid].close()]
        self._tracks.clear()
        return closed


def events_of_series(
    track_id: int,
    frames: Sequence[int] | np.ndarray,
    t_s: Sequence[float] | np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    settings: EventSettings | None = None,
) -> list[Event]:
    """The events of one whole track, (T,) frames and times and (T, C) probabilities."""
    track = TrackEvents(track_id, labels, settings)
    events: list[Event] = []
    for frame, t, row in zip(frames, t_s, probs, strict=True):
        events += track.push(int(frame), float(t), row)
    return events + track.close()
