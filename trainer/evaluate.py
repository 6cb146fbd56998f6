"""Classification metrics, the confusion-matrix plot and checkpoint evaluation."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from fer_live.errors import ModelError
from fer_live.infer.card import ModelCard
from fer_live.infer.decision import DecisionRule
from fer_live.trainer.calibrate import score
from fer_live.trainer.checkpoint_io import read_checkpoint
from fer_live.trainer.config import TrainConfig
from fer_live.trainer.data.ferplus import label_columns
from fer_live.trainer.data.tensors import load_split
from fer_live.trainer.engine import predict_logits
from fer_live.trainer.models.base import FerNet
from fer_live.trainer.models.registry import create_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Metrics:
    """Accuracy, macro-F1, per-class F1 and recall, balanced accuracy, confusion (rows = truth)."""

    accuracy: float
    macro_f1: float
    per_class_f1: dict[str, float]
    confusion: list[list[int]]
    count: int
    balanced_accuracy: float = 0.0
    per_class_recall: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (K, K) with truth on rows and prediction on columns."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, preds), 1)
    return matrix


def compute_metrics(labels: np.ndarray, preds: np.ndarray, classes: tuple[str, ...]) -> Metrics:
    """Metrics of predictions ``preds`` against ``labels`` (both int (N,))."""
    matrix = confusion_matrix(labels, preds, len(classes))
    scores = score(labels, preds, len(classes))
    tp = np.diag(matrix).astype(np.float64)
    precision = tp / np.maximum(matrix.sum(axis=0), 1)
    recall = np.asarray(scores.recall)
    f1 = np.where(
        precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0
    )
    return Metrics(
        accuracy=scores.accuracy,
        macro_f1=scores.macro_f1,
        per_class_f1={name: round(float(v), 4) for name, v in zip(classes, f1, strict=True)},
        confusion=matrix.tolist(),
        count=int(len(labels)),
        balanced_accuracy=scores.balanced_accuracy,
        per_class_recall={n: round(float(v), 4) for n, v in zip(classes, recall, strict=True)},
    )


def plot_confusion(metrics: Metrics, path: Path, title: str) -> Path:
    """Save the row-normalized confusion matrix of ``metrics`` as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = list(metrics.per_class_f1)
    matrix = np.asarray(metrics.confusion, np.float64)
    normalized = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(normalized, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for i in range(len(classes)):
        for j in range(len(classes)):
            color = "white" if normalized[i, j] > 0.5 else "black"
            ax.text(
                j, i, f"{normalized[i, j]:.2f}", ha="center", va="center", fontsize=7, color=color
            )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title} (acc {metrics.accuracy:.4f})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def load_checkpoint(path: Path) -> tuple[FerNet, ModelCard, TrainConfig]:
    """Rebuild the model saved in a ``best.pt``/``last.pt`` checkpoint (CPU, eval mode).

    Raises:
        ModelError: The file is missing or not a fer-train checkpoint.
    """
    path = Path(path)
    ckpt = read_checkpoint(path)
    if "model" not in ckpt or "config" not in ckpt:
        raise ModelError(f"{path} is not a fer-train checkpoint")
    cfg = TrainConfig.from_dict(json.loads(ckpt["config"]))
    num_classes = ckpt["model"]["fc.weight"].shape[0]
    model = create_model(
        cfg.arch, num_classes, cfg.channels, cfg.input_size, None, **cfg.model_kwargs
    )
    model.load_state_dict(ckpt["model"])
    if "card" in ckpt:
        card = ModelCard.from_json(ckpt["card"])
    else:
        from fer_live.trainer.train import training_card

        card = training_card(cfg, tuple(str(i) for i in range(num_classes)), model.num_features)
    if "valid_acc" in ckpt:
        metrics = dict(card.metrics, valid_acc=round(float(ckpt["valid_acc"]), 4))
        card = replace(card, metrics=metrics, training=dict(card.training, epoch=ckpt.get("epoch")))
    return model.eval(), card, cfg


def evaluate_split(
    model: FerNet,
    card: ModelCard,
    dataset: str,
    data_root: Path,
    split: str,
    tta: bool = True,
    limit: int = 0,
    decision: DecisionRule | None = None,
) -> Metrics:
    """Evaluate ``model`` on one split of ``dataset`` (ferplus, fer2013 or a folder).

    ``decision`` (a model card's rule) is applied to the logits before the argmax, as the
    product applies it.
    """
    data = load_split(dataset, data_root, split, card, limit=limit)
    logits = predict_logits(model, data.x, tta=tta)
    if decision is not None:
        decision.check_classes(logits.shape[1])
        logits = decision.adjust(logits)
    if tuple(card.labels) != tuple(data.classes):
        logits = logits[:, label_columns(card.labels, data.classes)]
    preds = logits.argmax(axis=1)
    metrics = compute_metrics(data.labels.numpy(), preds, data.classes)
    logger.info("%s/%s: acc %.4f macro-F1 %.4f", dataset, split, metrics.accuracy, metrics.macro_f1)
    return metrics
