"""The contract between the method runner and one training method (MRE, GUS, EAN, ...).

The runner owns data, epochs, the optimizer, evaluation and outputs; a ``Method`` owns only what
differs between papers: how the model is wrapped, the loss of one batch, optional hooks (after
each optimizer step, at epoch start), how the training order is drawn, and its inference modes.
Relabeling methods write into ``Targets`` (the runner's mutable copy of the training labels).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch
from torch import nn

from fer_live.errors import ConfigError
from fer_live.infer.card import ModelCard
from fer_live.trainer.models.base import FerNet


@dataclass
class Targets:
    """The training labels the runner trains on; relabeling methods edit them in place.

    Attributes:
        soft: float32 (N, K) target distributions.
        labels: int64 (N,) hard labels.
        given: int64 (N,) the labels as given (after any injected noise), never edited.
        clean: int64 (N,) the labels before noise injection (for repair statistics only).
    """

    soft: torch.Tensor
    labels: torch.Tensor
    given: torch.Tensor
    clean: torch.Tensor

    def relabel(self, index: torch.Tensor, new_labels: torch.Tensor) -> None:
        """Give the samples ``index`` the hard labels ``new_labels`` (one-hot targets)."""
        self.labels[index] = new_labels
        self.soft[index] = nn.functional.one_hot(new_labels, self.soft.shape[1]).to(self.soft)


@dataclass(frozen=True)
class Batch:
    """One augmented training batch.

    Attributes:
        x: float32 (B, C, S, S) augmented input.
        raw: float32 (B, C, S, S) the same images before augmentation (for extra views).
        soft: (B, K) current targets; labels: (B,) current hard labels.
        index: (B,) positions in the training split (for relabeling).
        progress: Fraction of the whole run done, in [0, 1] (for ramps).
        epoch: Zero-based epoch.
    """

    x: torch.Tensor
    raw: torch.Tensor
    soft: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    progress: float
    epoch: int


class Method:
    """Base method = plain training of the backbone (the baseline row).

    Subclasses set ``name``/``eval_modes`` and override the hooks they need. ``criterion`` is the
    runner's classification loss (CE or a mixed-loss profile) taking (logits, soft targets).
    """

    name: ClassVar[str] = "baseline"
    eval_modes: ClassVar[tuple[str, ...]] = ("H",)
    options_type: ClassVar[type | None] = None

    def __init__(self, options: dict[str, Any], criterion: nn.Module, card: ModelCard) -> None:
        self.options = parse_options(self.options_type, options, self.name)
        self.criterion = criterion
        self.card = card

    def wrap(self, base: FerNet) -> nn.Module:
        """The trainable model built around the backbone."""
        return base

    def new_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        """Parameters created by the method (trained at the head learning rate)."""
        return [*getattr(model, "fc", nn.Identity()).parameters()]

    def loss(self, model: nn.Module, batch: Batch, targets: Targets) -> torch.Tensor:
        """Loss of one batch (the model is in train mode)."""
        logits, _ = model(batch.x)
        return self.criterion(logits, batch.soft)

    def after_step(self, model: nn.Module) -> None:  # noqa: B027 - optional hook
        """Called after every optimizer step (momentum encoders, queues)."""

    def start_epoch(self, model: nn.Module, epoch: int, epochs: int) -> None:  # noqa: B027
        """Called before every epoch (schedules)."""

    def order(self, targets: Targets, gen: torch.Generator) -> torch.Tensor:
        """Indices of one epoch's training order (a sampler may repeat or drop samples)."""
        return torch.randperm(len(targets.labels), generator=gen, device=targets.labels.device)

    def predict(self, model: nn.Module, x: torch.Tensor, mode: str) -> tuple[torch.Tensor, ...]:
        """(logits, embedding) of an eval batch in inference mode ``mode``."""
        return model(x)

    def summary(self) -> dict[str, Any]:
        """Extra figures for the run's result file (e.g. relabeling counts)."""
        return {}


def parse_options(options_type: type | None, options: dict[str, Any], method: str) -> Any:
    """Build the method's frozen options dataclass from ``key=value`` pairs (typed by fields)."""
    if options_type is None:
        if options:
            raise ConfigError(f"method {method!r} takes no options, got {sorted(options)}")
        return None
    names = {f.name: f for f in fields(options_type)}
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown} for {method!r}; valid: {sorted(names)}")
    typed = {}
    for key, value in options.items():
        default = getattr(options_type(), key)
        typed[key] = _coerce(value, default, key)
    return options_type(**typed)


def _coerce(value: Any, default: Any, key: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if isinstance(default, bool):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise ConfigError(f"option {key}={value!r} is not a {type(default).__name__}") from None
    return value
