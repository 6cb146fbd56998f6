"""The decision rule: how a model's logits become the probabilities and label users see.

``probs = softmax(logits / temperature + offsets)``. The temperature calibrates confidence
(fit on Valid by NLL); the per-class offsets correct the training prior (FERPlus is 35 %
neutral, 0.5 % disgust), chosen on Valid for macro-F1 within a bounded accuracy cost
(``trainer/calibrate.py``). The rule lives in the model card, so every backend, GUS-T, the
trainer's evaluation and exported files read the same numbers.

``--min-confidence C`` (``min_confidence=`` in the Python API) then labels a face ``uncertain``
when the top of those probabilities (after temporal smoothing, where a run smooths) is below C;
``is_uncertain`` is that test, in one place for the CLI, the API and the benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fer_live.errors import ModelError
from fer_live.infer.json_checks import exceeds_depth, is_number, short
from fer_live.numeric import softmax

_MAX_CLASSES = 1000


@dataclass(frozen=True)
class DecisionRule:
    """Temperature and per-class logit offsets; the identity rule by default.

    Attributes:
        temperature: Divides the logits (> 0); 1 leaves them as they are.
        offsets: Added to the scaled logits, one per class; empty means all zero.
        fit: Provenance of the numbers (split, objective, metrics before/after).
    """

    temperature: float = 1.0
    offsets: tuple[float, ...] = ()
    fit: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and 0.05 <= self.temperature <= 20.0):
            raise ModelError(f"decision temperature must be in [0.05, 20], got {self.temperature}")
        if not all(math.isfinite(v) and abs(v) <= 20.0 for v in self.offsets):
            raise ModelError(
                f"decision offsets must be finite and within ±20, got {short(self.offsets)}"
            )

    @property
    def is_identity(self) -> bool:
        return self.temperature == 1.0 and not any(self.offsets)

    def check_classes(self, num_classes: int) -> None:
        """Raises ModelError when the offsets do not match the class count."""
        if self.offsets and len(self.offsets) != num_classes:
            raise ModelError(f"decision offsets need {num_classes} values, got {len(self.offsets)}")

    def adjust(self, logits: np.ndarray) -> np.ndarray:
        """The rule's logits: ``logits / temperature + offsets`` (float32)."""
        out = np.asarray(logits, np.float32)
        if self.temperature != 1.0:
            out = out / np.float32(self.temperature)
        if self.offsets:
            out = out + np.asarray(self.offsets, np.float32)
        return out

    def probs(self, logits: np.ndarray) -> np.ndarray:
        """Probabilities users see for raw model logits (..., C)."""
        return softmax(self.adjust(logits))

    @staticmethod
    def from_dict(data: dict[str, Any] | None) -> DecisionRule:
        """The rule from a card's ``decision`` object; None or ``{}`` is the identity rule.

        Raises:
            ModelError: The object is malformed (wrong types, non-finite numbers, out of range).
        """
        if data is None or (isinstance(data, dict) and not data):
            return DecisionRule()
        if not isinstance(data, dict):
            raise ModelError("card decision must be a JSON object")
        offsets, fit = data.get("offsets", []), data.get("fit")
        if not isinstance(offsets, (list, tuple)) or len(offsets) > _MAX_CLASSES:
            raise ModelError(
                f"card decision is malformed: offsets must be a list, got {short(offsets)}"
            )
        if fit is not None and (not isinstance(fit, dict) or exceeds_depth(fit)):
            raise ModelError("card decision is malformed: fit must be a shallow JSON object")
        try:
            return DecisionRule(
                temperature=_to_float(data.get("temperature", 1.0)),
                offsets=tuple(_to_float(v) for v in offsets),
                fit=fit,
            )
        except (TypeError, ValueError) as exc:
            raise ModelError(f"card decision is malformed: {exc}") from None


def _to_float(value: Any) -> float:
    """``float(value)`` for numbers and numeric strings; TypeError/ValueError otherwise."""
    if isinstance(value, bool) or (isinstance(value, int) and not is_number(value)):
        raise ValueError(f"not a usable number: {short(value)}")
    if not isinstance(value, (int, float, str)):
        raise TypeError(f"expected a number, got {short(value)}")
    return float(value)  # "nan"/"inf" pass here and are refused by __post_init__


# --- "uncertain" instead of a guess ------------------------------------------------------------

UNCERTAIN = "uncertain"
# Records write probabilities with this many decimals; the threshold compares the confidence as
# written, so a record's label always agrees with its own ``confidence`` field.
CONFIDENCE_DIGITS = 5


def is_uncertain(confidence: np.ndarray | float, min_confidence: float | None) -> np.ndarray:
    """Where the top probability is below the threshold: those faces are labelled ``uncertain``.

    The one place the threshold is applied: records, the overlay, the Python API and
    ``benchmarks/risk_coverage.py`` all call it. A confidence equal to ``min_confidence`` is
    answered; with ``min_confidence`` 1 only a face at probability 1 is.

    Args:
        confidence: Top probabilities (any shape), as records write them (5 decimals).
        min_confidence: The threshold C in (0, 1], or None (off: nothing is uncertain).

    Returns:
        A bool array of ``confidence``'s shape.
    """
    values = np.asarray(confidence, np.float64)
    if min_confidence is None:
        return np.zeros(values.shape, bool)
    return values < min_confidence


def decide_label(
    probs: np.ndarray, labels: Sequence[str], min_confidence: float | None = None
) -> tuple[str, float]:
    """The label users see for one face's probabilities (C,), and its confidence.

    The confidence is the top probability rounded to ``CONFIDENCE_DIGITS``; the label is that
    class, or ``UNCERTAIN`` when the confidence is below ``min_confidence``.
    """
    top = int(np.argmax(probs))
    confidence = round(float(probs[top]), CONFIDENCE_DIGITS)
    if is_uncertain(confidence, min_confidence):
        return UNCERTAIN, confidence
    return labels[top], confidence
