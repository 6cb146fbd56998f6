"""The one table of temporal smoothers; every list of smoother names is derived from it.

Adding a smoother is one ``SmootherEntry`` in ``SMOOTHERS`` plus its class, which follows
``Smoother``. What ``--smooth`` and ``--vs-smooth`` accept, their help and the pipeline's
``make_smoother`` all read this table. As in the backend table (``fer_live.infer.backends.table``),
factories are named by import path (``"module:attribute"``) and imported only when a smoother is
built, so the CLI checks the flag and writes its help without loading GUS-T (its head loader and
compiled kernel).

EMA (``fer_live.smooth.window``) keeps one window per track id, evicts unseen tracks and puts a
time-constant EMA on its output; GUS-T (``fer_live.smooth.gus_t``) runs a graph over each face's
recent frames on preallocated ring buffers; ``auto`` (the default) picks GUS-T whenever the model
has a head.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fer_live.errors import ConfigError
from fer_live.types import Predictions

if TYPE_CHECKING:  # typing only: the card machinery is not needed to check a name
    from fer_live.infer.card import ModelCard
    from fer_live.infer.decision import DecisionRule


class Smoother(Protocol):
    """A stateful stage: per-frame predictions in, smoothed predictions out."""

    def smooth(self, preds: Predictions, t_s: float) -> Predictions:
        """Smooth one frame's predictions taken at time ``t_s`` (seconds)."""
        ...

    def reset(self) -> None:
        """Forget every track."""
        ...


@dataclass(frozen=True)
class SmootherEntry:
    """One temporal smoother.

    Attributes:
        name: The ``--smooth`` value.
        factory: Builds the smoother from keyword settings, or its ``"module:attribute"`` path.
        help: A few words for ``--smooth``'s help.
        model_aware: The factory also takes the run's ``model``, ``decision`` and ``card`` (it
            reads weights that ship beside the model file).
    """

    name: str
    factory: Callable[..., Smoother] | str
    help: str
    model_aware: bool = False

    def load_factory(self) -> Callable[..., Smoother]:
        """The factory (imported now when the entry names it by path)."""
        if not isinstance(self.factory, str):
            return self.factory
        module, _, attribute = self.factory.partition(":")
        factory: Callable[..., Smoother] = getattr(importlib.import_module(module), attribute)
        return factory


# Order is the order of the ``--smooth`` choices in its help and errors.
SMOOTHERS: dict[str, SmootherEntry] = {
    "auto": SmootherEntry(
        "auto",
        "fer_live.smooth.gus_t:graph_or_ema",
        "graph when the model ships a GUS head, else ema",
        model_aware=True,
    ),
    "ema": SmootherEntry("ema", "fer_live.smooth.window:EmaSmoother", "exponential moving average"),
    "graph": SmootherEntry(
        "graph",
        "fer_live.smooth.gus_t:GraphSmoother",
        "GUS-T, the model's graph head over each face's recent frames",
        model_aware=True,
    ),
    "none": SmootherEntry("none", "fer_live.smooth.window:NoSmoother", "no smoothing"),
}


def smoother_entry(name: str, flag: str = "--smooth") -> SmootherEntry:
    """The table's entry for a smoother name, as ``flag`` gave it.

    Raises:
        ConfigError: No smoother of that name (the message names the flag and lists them).
    """
    entry = SMOOTHERS.get(name)
    if entry is None:
        raise ConfigError(f"{flag} must be one of {', '.join(SMOOTHERS)}, got {name!r}")
    return entry


def smoother_help() -> str:
    """The ``--smooth`` help text."""
    return "Temporal smoother: " + ", ".join(f"{e.name} ({e.help})" for e in SMOOTHERS.values())


def make_smoother(
    name: str,
    model: Path | None = None,
    decision: DecisionRule | None = None,
    card: ModelCard | None = None,
    **kw: Any,
) -> Smoother:
    """Build a registered smoother by name.

    Args:
        name: A key of ``SMOOTHERS``.
        model: The model file of the run; passed on to the model-aware smoothers.
        decision: The decision rule GUS-T applies to its head's logits (None: the card's).
        card: The model's card (a folded head, the outputs, the decision rule).
        **kw: Smoother settings.

    Raises:
        ConfigError: Unknown name (the message lists the valid ones) or bad arguments.
    """
    entry = smoother_entry(name)
    if entry.model_aware:
        kw.update(model=model, decision=decision, card=card)
    try:
        return entry.load_factory()(**kw)
    except TypeError as exc:
        raise ConfigError(f"bad arguments for smoother {name!r}: {exc}") from None
