"""Temporal smoothing of per-track class probabilities: the smoother registry.

Every smoother but ``none`` is a ``WindowedSmoother`` (``realtime.smooth_window``): one window per
track id with the last W probability rows, embeddings and timestamps, eviction of unseen tracks
and a time-constant EMA on the output. EMA reads only the newest row; GUS-T
(``realtime.smooth_graph``) runs a graph over each face's recent frames. New smoothers plug in by
adding an entry to ``SMOOTHERS`` (and their name to ``realtime.smooth_names``), so the pipeline
only ever calls ``make_smoother(name, **kw)``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from realtime.decision import DecisionRule
from realtime.errors import ConfigError
from realtime.smooth_graph import GraphSmoother, head_path_for
from realtime.smooth_names import MODEL_AWARE
from realtime.smooth_window import TrackWindow, WindowedSmoother
from realtime.types import Predictions


class Smoother(Protocol):
    """A stateful stage: per-frame predictions in, smoothed predictions out."""

    def smooth(self, preds: Predictions, t_s: float) -> Predictions:
        """Smooth one frame's predictions taken at time ``t_s`` (seconds)."""
        ...

    def reset(self) -> None:
        """Forget every track."""
        ...


class NoSmoother:
    """Returns predictions unchanged."""

    def smooth(self, preds: Predictions, t_s: float) -> Predictions:
        return preds

    def reset(self) -> None:
        return None


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
# config.py validates --smooth against smooth_names.SMOOTHER_NAMES without importing this module;
# tests/realtime/test_smooth.py checks that both list the same names.


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
