"""The per-track window of the deque-based smoothers (EMA).

A ``WindowedSmoother`` keeps one ``TrackWindow`` per track id (the last W probability rows,
embeddings, timestamps and whatever the smoother derived from them), clears a window on a gap
or an identity break, evicts tracks that stay unseen, and puts a time-constant EMA on its
output. Subclasses only say how a window becomes one probability row (``_combine``), and
optionally what to cache per frame (``_derive``) and when a window must restart (``_breaks``).

``EmaSmoother`` is one; ``NoSmoother`` (``--smooth none``) lives here too. GUS-T
(``fer_live.smooth.gus_t``) keeps its windows in preallocated ring buffers instead
(``fer_live.smooth.rings``), with the same gap, identity-break and output-EMA rules.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from fer_live.errors import ConfigError
from fer_live.types import Predictions


def ema_keep(dt_s: float, time_constant_s: float) -> float:
    """Weight of the previous output after a gap of ``dt_s`` seconds: ``exp(-dt / tau)``.

    A time constant, unlike a per-frame factor, gives the same smoothing at any frame rate.
    """
    return math.exp(-max(dt_s, 0.0) / time_constant_s)


def check_window_settings(window: int, **seconds: float | None) -> None:
    """Check a smoother's window length and its time settings, named as the caller names them.

    ``seconds`` are durations that must be > 0 (None: not set), except names ending in
    ``_constant_s`` or equal to ``ema_s``, which may be 0 (off).

    Raises:
        ConfigError: A value out of range; the message names it.
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ConfigError(f"window must be an integer >= 1, got {window!r}")
    for name, value in seconds.items():
        if value is None:
            continue
        may_be_zero = name == "ema_s" or name.endswith("_constant_s")
        if not (value >= 0 if may_be_zero else value > 0):
            raise ConfigError(f"{name} must be {'>=' if may_be_zero else '>'} 0, got {value}")


@dataclass
class TrackWindow:
    """The recent history of one track.

    Attributes:
        probs: The last W raw probability rows (C,), oldest first.
        embeddings: The matching embeddings (D,), or None where the model has none.
        derived: The matching per-frame values the smoother cached (None when it caches none).
        t_s: The matching timestamps in seconds.
        smoothed: The smoother's previous output row (C,), None before the first.
    """

    size: int
    probs: deque[np.ndarray] = field(init=False)
    embeddings: deque[np.ndarray | None] = field(init=False)
    derived: deque[Any] = field(init=False)
    t_s: deque[float] = field(init=False)
    smoothed: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.probs = deque(maxlen=self.size)
        self.embeddings = deque(maxlen=self.size)
        self.derived = deque(maxlen=self.size)
        self.t_s = deque(maxlen=self.size)

    def push(
        self, probs: np.ndarray, embedding: np.ndarray | None, derived: Any, t_s: float
    ) -> None:
        self.probs.append(probs)
        self.embeddings.append(embedding)
        self.derived.append(derived)
        self.t_s.append(t_s)

    def clear(self) -> None:
        """Restart the window (a gap or an identity break): history and output are dropped."""
        for values in (self.probs, self.embeddings, self.derived, self.t_s):
            values.clear()
        self.smoothed = None

    @property
    def last_t_s(self) -> float:
        return self.t_s[-1]


class WindowedSmoother(ABC):
    """Keeps one ``TrackWindow`` per track, evicts stale tracks, and smooths row by row.

    Args:
        window: How many recent frames each track keeps (W >= 1).
        evict_after_s: A track unseen for longer than this is forgotten.
        time_constant_s: Time constant of the EMA on the output; the previous output keeps
            weight ``exp(-dt / time_constant_s)``. 0 turns it off.
        max_gap_s: Clear a track's window after a gap longer than this (None: never).

    Raises:
        ConfigError: An argument out of range (the message names it).
    """

    def __init__(
        self,
        window: int = 16,
        evict_after_s: float = 2.0,
        time_constant_s: float = 0.0,
        max_gap_s: float | None = None,
    ) -> None:
        check_window_settings(
            window, evict_after_s=evict_after_s, time_constant_s=time_constant_s,
            max_gap_s=max_gap_s,
        )  # fmt: skip
        self.window = window
        self.evict_after_s = float(evict_after_s)
        self.time_constant_s = float(time_constant_s)
        self.max_gap_s = max_gap_s
        self._windows: dict[int, TrackWindow] = {}

    @property
    def windows(self) -> Mapping[int, TrackWindow]:
        """Read-only view of the per-track windows, keyed by track id."""
        return self._windows

    def reset(self) -> None:
        """Forget every track."""
        self._windows.clear()

    def smooth(self, preds: Predictions, t_s: float) -> Predictions:
        """Append each track's row to its window and return the smoothed rows."""
        self._evict(t_s)
        if len(preds) == 0:
            return preds
        derived = self._derive(preds)
        rows = []
        for i, track_id in enumerate(preds.track_id.tolist()):
            cached = None if derived is None else derived[i]
            window = self._window_for(int(track_id), cached, float(t_s))
            embedding = None if preds.embedding is None else preds.embedding[i]
            window.push(preds.probs[i].astype(np.float32), embedding, cached, float(t_s))
            window.smoothed = self._ema(window, self._combine(window))
            rows.append(window.smoothed)
        probs = np.stack(rows).astype(np.float32)
        return replace(preds, probs=probs)

    def _derive(self, preds: Predictions) -> Sequence[Any] | None:
        """Per-row values to cache in the windows, computed for the whole frame at once."""
        return None

    def _breaks(self, window: TrackWindow, derived: Any) -> bool:
        """Whether the new frame cannot continue the window (an identity switch, a cut)."""
        return False

    @abstractmethod
    def _combine(self, window: TrackWindow) -> np.ndarray:
        """The probability row (C,) for a window whose newest frame was just pushed."""

    def _window_for(self, track_id: int, derived: Any, t_s: float) -> TrackWindow:
        window = self._windows.get(track_id)
        if window is None:
            window = self._windows[track_id] = TrackWindow(self.window)
        elif window.t_s and (self._gap(window, t_s) or self._breaks(window, derived)):
            window.clear()
        return window

    def _gap(self, window: TrackWindow, t_s: float) -> bool:
        return self.max_gap_s is not None and t_s - window.last_t_s > self.max_gap_s

    def _ema(self, window: TrackWindow, probs: np.ndarray) -> np.ndarray:
        """``probs`` mixed with the previous output (a new or cleared window starts afresh)."""
        if not self.time_constant_s or window.smoothed is None or len(window.t_s) < 2:
            return probs
        keep = ema_keep(window.t_s[-1] - window.t_s[-2], self.time_constant_s)
        mixed = keep * window.smoothed + (1.0 - keep) * probs
        return mixed / mixed.sum()

    def _evict(self, t_s: float) -> None:
        stale = [k for k, w in self._windows.items() if t_s - w.last_t_s > self.evict_after_s]
        for track_id in stale:
            del self._windows[track_id]


class EmaSmoother(WindowedSmoother):
    """Exponential moving average with a time constant, so it is frame-rate independent.

    For a gap ``dt`` since the track's previous frame the new row gets weight
    ``alpha = 1 - exp(-dt / time_constant_s)``; a new track starts from its first row. The
    average itself is the window's output EMA; this smoother only feeds it the newest row.

    Args:
        time_constant_s: Time constant in seconds; 0 disables smoothing.
        window: Frames kept per track (for smoothers that read the window).
        evict_after_s: A track unseen for longer than this is forgotten (and restarts).
    """

    def __init__(
        self, time_constant_s: float = 0.3, window: int = 16, evict_after_s: float = 2.0
    ) -> None:
        super().__init__(window, evict_after_s, time_constant_s)

    def _combine(self, window: TrackWindow) -> np.ndarray:
        return window.probs[-1]


class NoSmoother:
    """Returns predictions unchanged."""

    def smooth(self, preds: Predictions, t_s: float) -> Predictions:
        return preds

    def reset(self) -> None:
        return None
