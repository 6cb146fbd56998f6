"""A teacher's probabilities as training targets: distillation by mixing targets.

The student trains against ``(1 - w) * votes + w * teacher``, soft-target cross-entropy, which
is the usual distillation loss (KL to the teacher) up to a constant. The teacher is an exported
ONNX model of any input size (an ensemble graph too): it reads every Train face the way the
student reads it (the stored image or the product's crop, see ``split_images``) but at its own
input size, unaugmented, with the flip. Its probabilities are ``softmax(logits / T)`` with the
temperature of its card's decision rule (fit on Valid, so they are calibrated); the rule's class
offsets are left out, as the student gets its own rule fit on Valid after training.

Reading 25k faces twice with an ensemble takes minutes, so the probabilities are cached under
``.cache/`` keyed by the teacher file's bytes and the faces' pixels.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from fer_live.errors import ConfigError
from fer_live.infer.card import ModelCard, read_sidecar
from fer_live.numeric import softmax
from fer_live.trainer.config import TrainConfig
from fer_live.trainer.data.cache import DEFAULT_CACHE_DIR
from fer_live.trainer.data.ferplus import label_columns
from fer_live.trainer.data.tensors import split_images
from fer_live.trainer.export import read_onnx_card
from fer_live.trainer.model_file_eval import onnx_logits

logger = logging.getLogger(__name__)


def teacher_card(path: Path) -> ModelCard:
    """The teacher's card (its sidecar JSON, which carries the decision rule, else the ONNX one).

    Raises:
        ConfigError: The teacher file is missing or not an exported model.
    """
    if path.suffix != ".onnx" or not path.is_file():
        raise ConfigError(f"teacher must be an exported .onnx model, got {path}")
    return read_sidecar(path) or read_onnx_card(path)


def teacher_probs(
    cfg: TrainConfig, split: str = "train", cache_dir: Path = DEFAULT_CACHE_DIR
) -> np.ndarray:
    """The teacher's probabilities (N, K) for ``split``'s faces, rows and classes as trained.

    Args:
        cfg: The run's config; ``cfg.teacher`` names the model.
        split: The split to read (the run's own ``limit`` and ``crops`` apply).
        cache_dir: Where the faces and the teacher's logits are cached.

    Raises:
        ConfigError: No teacher, or one that is not an exported model.
        ModelError: The teacher's labels do not cover the data's classes.
    """
    if not cfg.teacher:
        raise ConfigError("the config names no teacher")
    path = Path(cfg.teacher)
    card = teacher_card(path)
    limit = cfg.max_train if split == "train" else cfg.max_eval
    packed = split_images(
        cfg.dataset, Path(cfg.data_root), split, card.input_size, limit, cache_dir, cfg.crops
    )
    digest = hashlib.sha256(path.read_bytes())
    digest.update(packed.images.tobytes())
    cache_file = Path(cache_dir) / f"teacher-{digest.hexdigest()[:16]}.npz"
    if cache_file.is_file():
        with np.load(cache_file, allow_pickle=False) as data:
            logits = np.asarray(data["logits"])
    else:
        logger.info("teacher %s reads %d %s faces", path.name, len(packed), split)
        logits = onnx_logits(path, card, packed.images, tta=True, threads=cfg.num_threads)
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, logits=logits)
        tmp.replace(cache_file)
    if tuple(card.labels) != tuple(packed.classes):
        logits = logits[:, label_columns(card.labels, packed.classes)]
    return softmax(logits / card.decision.temperature)
