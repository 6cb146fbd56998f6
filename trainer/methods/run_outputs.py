"""Score finished method runs from their saved outputs, and merge or correct them.

A run directory written by ``fer_live.trainer.methods.runner`` holds ``outputs_{valid,test}.npz``
(``probs_<mode>``, ``embedding``, ``labels``) and ``result.json``; everything here works from
those files, so tables are rebuilt without re-running any model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_live.errors import ConfigError
from fer_live.trainer.data.ferplus import FERPLUS_LABELS
from fer_live.trainer.evaluate import compute_metrics
from fer_live.trainer.methods.merge import correct_predictions, merge_probs


@dataclass(frozen=True)
class RunOutputs:
    """One run's probabilities in one inference mode on one split."""

    probs: np.ndarray
    embedding: np.ndarray
    labels: np.ndarray


def load_outputs(run_dir: Path, split: str = "test", mode: str | None = None) -> RunOutputs:
    """Outputs of ``run_dir`` on ``split`` in ``mode`` (default: the run's primary mode).

    Raises:
        ConfigError: The run has not finished or lacks the mode.
    """
    path = Path(run_dir) / f"outputs_{split}.npz"
    if not path.is_file():
        raise ConfigError(f"no {path.name} in {run_dir}: the run has not finished")
    if mode is None:
        mode = json.loads((Path(run_dir) / "result.json").read_text())["primary_mode"]
    with np.load(path, allow_pickle=False) as data:
        key = f"probs_{mode}"
        if key not in data:
            modes = [k.removeprefix("probs_") for k in data if k.startswith("probs_")]
            raise ConfigError(f"{run_dir} has no mode {mode!r}; modes: {modes}")
        # Kept runs (fer_live.trainer.methods.keep) may carry no embeddings: an empty (N, 0) array.
        labels = data["labels"]
        emb = data["embedding"] if "embedding" in data else np.zeros((len(labels), 0))
        return RunOutputs(data[key], emb.astype(np.float32), labels)


def score(preds: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 in percent."""
    metrics = compute_metrics(labels, preds, FERPLUS_LABELS)
    return {"acc": round(100 * metrics.accuracy, 2), "macro_f1": round(100 * metrics.macro_f1, 2)}


def merged_scores(
    members: dict[str, RunOutputs], weights: dict[str, float] | str, threshold: float
) -> dict[str, Any]:
    """Scores of the weighted merge and of merge + correcting (transductive).

    Correcting groups samples by the cosine similarity of the first member's embeddings.
    """
    labels = next(iter(members.values())).labels
    merged = merge_probs({k: m.probs for k, m in members.items()}, weights).argmax(1)
    features = next(iter(members.values())).embedding
    if features.shape[1] == 0:
        raise ConfigError("correcting needs the first member's embeddings (keep --embeddings)")
    corrected = correct_predictions(merged, features, threshold)
    return {
        "merged": score(merged, labels),
        "corrected": score(corrected, labels),
        "corrected_changed": int((corrected != merged).sum()),
    }
