"""Temporal smoothing of per-track class probabilities: the smoother registry.

EMA is a ``WindowedSmoother`` (``fer_live.smooth.window``): one window per track id, eviction of
unseen tracks and a time-constant EMA on the output. GUS-T (``fer_live.smooth.gus_t``) runs a
graph over each face's recent frames, vectorised over the frame's tracks on preallocated ring
buffers; ``auto`` (the default) picks it whenever the model has a head. New smoothers plug in by
adding an entry to ``SMOOTHERS`` (and their name to ``fer_live.smooth.names``), so the pipeline
only ever calls ``make_smoother(name, **kw)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from fer_live.errors import ConfigError
from fer_live.infer.card import ModelCard
from fer_live.infer.decision import DecisionRule
from fer_live.smooth.gus_head import head_path_for
from fer_live.smooth.gus_t import GraphSmoother, card_beside
from fer_live.smooth.names import MODEL_AWARE
from fer_live.smooth.window import TrackWindow, WindowedSmoother
from fer_live.types import Predictions

logger = logging.getLogger(__name__)


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


def graph_or_ema(
    model: Path | None = None, decision: DecisionRule | None = None, card: ModelCard | None = None
) -> Smoother:
    """GUS-T whenever the model has a head, else EMA (``--smooth auto``, the default).

    A model has a head when a ``.gus.npz`` ships beside it (or its card names one folded into
    it) and it outputs an ``embedding``. GUS-T beats EMA on accuracy, switch latency and
    real-clip flicker (``benchmarks/results/temporal.md``).
    """
    if model is None:
        return EmaSmoother()
    model = Path(model)
    card = card or card_beside(model)
    has_embedding = card is None or "embedding" in card.outputs
    if has_embedding and head_path_for(model).is_file():
        return GraphSmoother(model=model, card=card, decision=decision)
    if card is not None and card.gus_head is not None:
        logger.warning("%s has a folded GUS head but no %s beside it: EMA smoothing",
                       model.name, head_path_for(model).name)  # fmt: skip
    return EmaSmoother()


SMOOTHERS: dict[str, Callable[..., Smoother]] = {
    "auto": graph_or_ema,
    "none": NoSmoother,
    "ema": EmaSmoother,
    "graph": GraphSmoother,
}
# config.py validates --smooth against names.SMOOTHER_NAMES without importing this module;
# tests/realtime/test_smooth.py checks that both list the same names.


def make_smoother(
    name: str,
    model: Path | None = None,
    decision: DecisionRule | None = None,
    card: ModelCard | None = None,
    **kw: object,
) -> Smoother:
    """Build a registered smoother by name.

    Args:
        name: A key of ``SMOOTHERS``.
        model: The model file of the run; passed on to the smoothers in ``MODEL_AWARE``.
        decision: The decision rule GUS-T applies to its head's logits (None: the card's).
        card: The model's card (a folded head, the outputs, the decision rule).
        **kw: Smoother settings.

    Raises:
        ConfigError: Unknown name (the message lists the valid ones) or bad arguments.
    """
    factory = SMOOTHERS.get(name)
    if factory is None:
        raise ConfigError(f"unknown smoother {name!r}; valid: {', '.join(sorted(SMOOTHERS))}")
    if name in MODEL_AWARE:
        kw.update(model=model, decision=decision, card=card)
    try:
        return factory(**kw)
    except TypeError as exc:
        raise ConfigError(f"bad arguments for smoother {name!r}: {exc}") from None
