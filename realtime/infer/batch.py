"""Batching: face crops of one or more frames into one model batch, and results back per frame.

``collate`` cuts and normalizes every track's face with the shared preprocessing and records a
``(frame_index, track_id)`` key per row; ``route`` turns the model output back into one
``Predictions`` per frame, in the order of that frame's tracks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fer_live.errors import ModelError
from fer_live.infer.card import ModelCard
from fer_live.infer.decision import DecisionRule
from fer_live.infer.preprocess import crop_faces, to_model_input
from fer_live.types import CropBatch, Frame, ModelOutput, Predictions, Tracks


def collate(items: Sequence[tuple[Frame, Tracks]], card: ModelCard) -> CropBatch:
    """Cut every track's face from its frame and stack them into one model batch.

    Args:
        items: (frame, tracks) pairs; several frames may share one batch.
        card: Model card (input size, channels, normalization, crop framing).

    Returns:
        float32 pixels (B, C, S, S), one row per track in item order, keyed by
        (frame.index, track_id).
    """
    size = card.input_size
    crops: list[np.ndarray] = []
    keys: list[tuple[int, int]] = []
    for frame, tracks in items:
        if len(tracks) == 0:
            continue
        crops.append(crop_faces(frame.image, tracks.xyxy, card))
        keys.extend((frame.index, int(tid)) for tid in tracks.track_id)
    if not crops:
        return CropBatch(np.zeros((0, card.channels, size, size), np.float32), ())
    pixels = to_model_input(np.concatenate(crops), card)
    return CropBatch(pixels, tuple(keys))


def pad_rows(pixels: np.ndarray, rows: int) -> np.ndarray:
    """Zero-pad a batch to ``rows`` rows (for fixed-batch engines); ``route`` drops the padding.

    Raises:
        ValueError: The batch already has more than ``rows`` rows.
    """
    if pixels.shape[0] > rows:
        raise ValueError(f"cannot pad a batch of {pixels.shape[0]} rows down to {rows}")
    if pixels.shape[0] == rows:
        return pixels
    pad = np.zeros((rows - pixels.shape[0], *pixels.shape[1:]), pixels.dtype)
    return np.ascontiguousarray(np.concatenate([pixels, pad]))


def route(
    batch: CropBatch,
    output: ModelOutput,
    frame_indices: Sequence[int],
    num_classes: int,
    decision: DecisionRule | None = None,
) -> dict[int, Predictions]:
    """Split a batch's model output back into per-frame predictions.

    Args:
        batch: The batch that was inferred (its keys say which row belongs where).
        output: The model output; rows beyond ``len(batch.keys)`` are padding and ignored.
        frame_indices: Every frame of the batch, including frames without faces.
        num_classes: Number of classes, for the empty predictions of frames without faces.
        decision: The card's decision rule (temperature, offsets); None is plain softmax.

    Returns:
        frame_index -> Predictions (softmax probs and embedding rows in the frame's track order).

    Raises:
        ModelError: The output has fewer rows than the batch or the wrong number of classes.
        ValueError: A key names a frame that is not in ``frame_indices``.
    """
    n = len(batch.keys)
    if output.logits.shape[0] < n:
        raise ModelError(f"model returned {output.logits.shape[0]} rows for {n} faces")
    if n and output.logits.shape[1] != num_classes:
        raise ModelError(f"model returned {output.logits.shape[1]} classes, expected {num_classes}")
    rows_of: dict[int, list[int]] = {int(index): [] for index in frame_indices}
    for row, (frame_index, _) in enumerate(batch.keys):
        if frame_index not in rows_of:
            raise ValueError(f"batch key names frame {frame_index}, not in frame_indices")
        rows_of[frame_index].append(row)
    probs = (decision or DecisionRule()).probs(output.logits[:n])
    track_ids = np.asarray([tid for _, tid in batch.keys], np.int64)
    routed: dict[int, Predictions] = {}
    for frame_index, rows in rows_of.items():
        if not rows:
            routed[frame_index] = Predictions.empty(num_classes)
            continue
        embedding = None if output.embedding is None else output.embedding[rows]
        projection = None if output.projection is None else output.projection[rows]
        routed[frame_index] = Predictions(track_ids[rows], probs[rows], embedding, projection)
    return routed
