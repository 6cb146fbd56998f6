"""Temporal smoothing of per-track class probabilities.

Every smoother keeps a ``TrackWindow`` per track id: the last W probability rows, embeddings and
timestamps, plus its own previous output. Smoothers that need more than the last output (a graph
over each face's recent frames, for instance) read the window; new ones plug in by adding an
entry to ``SMOOTHERS``, so the pipeline only ever calls ``make_smoother(name, **kw)``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from realtime.decision import DecisionRule
from realtime.errors import ConfigError
from realtime.smooth_graph import GraphSmoother, head_path_for
from realtime.types import Predictions


class Smoother(Protocol):
    """A stateful stage: per-frame predictions in, smoothed predictions out."""

    def smooth(self, preds: Predictions, t_s: float) -> Predictions:
        """Smooth one frame's predictions taken at time ``t_s`` (seconds)."""
        ...

    def reset(self) -> None:
        """Forget every track."""
        ...


@dataclass
class TrackWindow:
    """The recent history of one track.

    Attributes:
        probs: The last W raw probability rows (C,), oldest first.
        embeddings: The matching embeddings (D,), or None where the model has none.
        t_s: The matching timestamps in seconds.
        smoothed: The smoother's previous output row (C,), None before the first.
    """

    size: int
    probs: deque[np.ndarray] = field(init=False)
    embeddings: deque[np.ndarray | None] = field(init=False)
    t_s: deque[float] = field(init=False)
    smoothed: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.probs = deque(maxlen=self.size)
        self.embeddings = deque(maxlen=self.size)
        self.t_s = deque(maxlen=self.size)

    def push(self, probs: np.ndarray, embedding: np.ndarray | None, t_s: float) -> None:
        self.probs.append(probs)
        self.embeddings.append(embedding)
        self.t_s.append(t_s)

    @property
    def last_t_s(self) -> float:
        return self.t_s[-1]


class WindowedSmoother(ABC):
    """Keeps one ``TrackWindow`` per track, evicts stale tracks, and smooths row by row.

    Args:
        window: How many recent frames each track keeps (W >= 1).
        evict_after_s: A track unseen for longer than this is forgotten.
    """

    def __init__(self, window: int = 16, evict_after_s: float = 2.0) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ConfigError(f"window must be an integer >= 1, got {window!r}")
        if not evict_after_s > 0:
            raise ConfigError(f"evict_after_s must be > 0, got {evict_after_s}")
        self.window = window
        self.evict_after_s = float(evict_after_s)
        self._windows: dict[int, TrackWindow] = {}

    @property
    def windows(self) -> Mapping[int, TrackWindow]:
        """Read-only view of the per-track windows, keyed by track id."""
        return self._windows

    def reset(self) -> None:
        self._windows.clear()

    def smooth(self, preds: Predictions, t_s: float) -> Predictions:
        """Append each track's row to its window and return the smoothed rows."""
        self._evict(t_s)
        if len(preds) == 0:
            return preds
        rows = []
        for i, track_id in enumerate(preds.track_id.tolist()):
            window = self._windows.get(track_id)
            if window is None:
                window = self._windows[track_id] = TrackWindow(self.window)
            embedding = None if preds.embedding is None else preds.embedding[i]
            window.push(preds.probs[i].astype(np.float32), embedding, float(t_s))
            window.smoothed = self._combine(window)
            rows.append(window.smoothed)
        probs = np.stack(rows).astype(np.float32)
        return Predictions(preds.track_id, probs, preds.embedding)

    def _evict(self, t_s: float) -> None:
        stale = [k for k, w in self._windows.items() if t_s - w.last_t_s > self.evict_after_s]
        for track_id in stale:
            del self._windows[track_id]

    @abstractmethod
    def _combine(self, window: TrackWindow) -> np.ndarray:
        """The smoothed probability row (C,) for a window whose newest row was just pushed."""


class NoSmoother:
    """Returns predictions unchanged."""

    def smooth(self, preds: Predictions, t_s: float) -> Predictions:
        return preds

    def reset(self) -> None:
        return None


class EmaSmoother(WindowedSmoother):
    """Exponential moving average with a time constant, so it is frame-rate independent.

    For a gap ``dt`` since the track's previous frame the new row gets weight
    ``alpha = 1 - exp(-dt / time_constant_s)``; a new track starts from its first row.

    Args:
        time_constant_s: Time constant in seconds; 0 disables smoothing.
        window: Frames kept per track (for smoothers that read the window).
        evict_after_s: A track unseen for longer than this is forgotten (and restarts).
    """

    def __init__(
        self, time_constant_s: float = 0.3, window: int = 16, evict_after_s: float = 2.0
    ) -> None:
        super().__init__(window=window, evict_after_s=evict_after_s)
        if not time_constant_s >= 0:
            raise ConfigError(f"time_constant_s must be >= 0, got {time_constant_s}")
        self.time_constant_s = float(time_constant_s)

    def alpha(self, dt_s: float) -> float:
        """Weight of a new row after a gap of ``dt_s`` seconds."""
        if self.time_constant_s == 0.0:
            return 1.0
        return 1.0 - math.exp(-max(dt_s, 0.0) / self.time_constant_s)

    def _combine(self, window: TrackWindow) -> np.ndarray:
        newest = window.probs[-1]
        if window.smoothed is None or len(window.t_s) < 2:
            return newest
        alpha = self.alpha(window.t_s[-1] - window.t_s[-2])
        mixed = (1.0 - alpha) * window.smoothed + alpha * newest
        return mixed / mixed.sum()


def graph_or_ema(model: Path | None = None, decision: DecisionRule | None = None) -> Smoother:
    """GUS-T when a trained graph head ships beside the model, else EMA.

    GUS-T beats EMA on accuracy, switch latency and real-clip flicker
    (``benchmarks/results/temporal.md``), but only a model with a ``.gus.npz`` head can use it.
    """
    if model is not None and head_path_for(Path(model)).is_file():
        return GraphSmoother(model=model, decision=decision)
    return EmaSmoother()


SMOOTHERS: dict[str, Callable[..., Smoother]] = {
    "auto": graph_or_ema,
    "none": NoSmoother,
    "ema": EmaSmoother,
    "graph": GraphSmoother,
}
# Smoothers built from the model file (they read weights that ship beside it).
MODEL_AWARE = frozenset({"auto", "graph"})


def make_smoother(
    name: str, model: Path | None = None, decision: DecisionRule | None = None, **kw: object
) -> Smoother:
    """Build a registered smoother by name.

    Args:
        name: A key of ``SMOOTHERS``.
        model: The model file of the run; passed on to the smoothers in ``MODEL_AWARE``.
        decision: The model card's decision rule; GUS-T applies it to its head's logits.
        **kw: Smoother settings.

    Raises:
        ConfigError: Unknown name (the message lists the valid ones) or bad arguments.
    """
    factory = SMOOTHERS.get(name)
    if factory is None:
        raise ConfigError(f"unknown smoother {name!r}; valid: {', '.join(sorted(SMOOTHERS))}")
    if name in MODEL_AWARE:
        kw["model"] = model
        kw["decision"] = decision
    try:
        return factory(**kw)
    except TypeError as exc:
        raise ConfigError(f"bad arguments for smoother {name!r}: {exc}") from None
