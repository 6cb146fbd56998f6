"""Evaluate merging (S1/S2 or free weights) and correcting of trained members on FERPlus.

Members are exported models (``.onnx``: softmax of their logits, or of the sharpened logits
when a temperature is given, spec §3.3) or GUS heads (``.gus.npz``: isolated-mode softmax on the
embeddings of the model file beside them). Correcting uses the first ONNX member's embeddings
as features and is transductive.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from fer_live.smooth.gus_head import GusHeadWeights
from fer_live.trainer.data.cache import DEFAULT_CACHE_DIR, pack
from fer_live.trainer.data.tensors import read_items
from fer_live.trainer.methods.merge import correct_predictions, merge_probs, softmax
from fer_live.trainer.methods.train_gus_head import infer_batches


def member_outputs(
    spec: Path, images: np.ndarray, tau: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (N, C) and the embeddings used (N, D) of one member."""
    if spec.name.endswith(".gus.npz"):
        head = GusHeadWeights.load(spec)
        base = spec.with_name(str(head.meta.get("base_name", "")))
        _, emb, _ = infer_batches(base, images)
        h = emb @ head.w1
        logits = (np.where(h > 0, h, 0.2 * h) @ head.w2) @ head.fc_w.T + head.fc_b
        return softmax(logits, tau), emb
    logits, emb, _ = infer_batches(spec, images)
    return softmax(logits, tau), emb


def evaluate_merge(
    members: dict[str, Path],
    weights: str,
    data_root: Path,
    tau: float | None = None,
    threshold: float = 0.93,
) -> dict[str, Any]:
    """Accuracy of every member, of the merge and of merge + correcting on FERPlus test.

    Args:
        members: Member name -> model or head file.
        weights: ``S1``, ``S2`` or a JSON object of member weights.
        data_root: FERPlus root.
        tau: Sharpening temperature for the members' softmax (None = plain softmax).
        threshold: Cosine threshold of the correcting groups.
    """
    items = read_items("ferplus", data_root, "test")
    images = pack(items, cache_dir=DEFAULT_CACHE_DIR).images
    labels = items.labels
    outputs = {name: member_outputs(path, images, tau) for name, path in members.items()}
    results: dict[str, Any] = {
        f"{name}_acc": float((p.argmax(1) == labels).mean()) for name, (p, _) in outputs.items()
    }
    table = json.loads(weights) if weights.lstrip().startswith("{") else weights
    merged = merge_probs({name: p for name, (p, _) in outputs.items()}, table).argmax(1)
    results["merged_acc"] = float((merged == labels).mean())
    features = next(iter(outputs.values()))[1]
    corrected = correct_predictions(merged, features, threshold)
    results["merged_corrected_acc_transductive"] = float((corrected == labels).mean())
    results["corrected_changed"] = int((corrected != merged).sum())
    return results
