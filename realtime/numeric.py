"""Small numeric helpers shared by stages that must not import each other."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis; float32, rows sum to 1."""
    logits = np.asarray(logits, np.float32)
    if logits.size == 0:
        return logits.copy()
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)
