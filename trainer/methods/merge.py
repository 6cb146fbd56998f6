"""Predictions merging and correcting (METHODS.md §4.1, §4.2). numpy only.

Merging: ``R = sum_m w_m softmax_m`` over the members present (weights renormalized), with the
paper's S1/S2 weight sets or free weights. Correcting: samples whose features are connected by
cosine similarity above a threshold form groups (connected components); in a group of n >= 3
whose most frequent prediction holds more than 2/3 of the votes, every member takes it.
Correcting is transductive: report numbers obtained with it as such.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from fer_live.errors import ConfigError

WEIGHT_SETS: dict[str, dict[str, float]] = {
    "S1": {"gus": 0.6, "mre": 0.2, "dmue": 0.2},
    "S2": {"gus": 0.4, "mre": 0.3, "dmue": 0.3},
}


def softmax(logits: np.ndarray, tau: float | None = None) -> np.ndarray:
    """Row softmax of (N, C) logits; with ``tau`` the logits are first sharpened as in §3.

    ``tau`` given: ``softmax(z / (tau ||z||))``, the distribution a mixed-loss model trained on.
    """
    z = np.asarray(logits, np.float64)
    if tau is not None:
        z = z / (tau * np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12))
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def merge_probs(
    probs: Mapping[str, np.ndarray], weights: Mapping[str, float] | str = "S1"
) -> np.ndarray:
    """Weighted sum of the members' probabilities (N, C), weights renormalized over members.

    Args:
        probs: Member name -> probabilities (N, C); members absent here are skipped.
        weights: A weight-set name (``S1``, ``S2``) or free weights per member name.

    Returns:
        Merged probabilities (N, C); rows sum to 1.

    Raises:
        ConfigError: Unknown weight set, a member without weight, shape mismatch, or no weight.
    """
    if isinstance(weights, str):
        if weights not in WEIGHT_SETS:
            raise ConfigError(f"unknown weight set {weights!r}; valid: {', '.join(WEIGHT_SETS)}")
        weights = WEIGHT_SETS[weights]
    missing = [name for name in probs if name not in weights]
    if missing:
        raise ConfigError(f"no merge weight for member(s) {missing}; weights: {dict(weights)}")
    total = sum(float(weights[name]) for name in probs)
    if not probs or total <= 0:
        raise ConfigError("merging needs at least one member with a positive weight")
    shapes = {np.asarray(p).shape for p in probs.values()}
    if len(shapes) != 1:
        raise ConfigError(f"members disagree on the probability shape: {sorted(shapes)}")
    merged = sum(float(weights[name]) * np.asarray(p, np.float64) for name, p in probs.items())
    return np.asarray(merged / total)


def similarity_components(
    features: np.ndarray,
    threshold: float = 0.93,
    groups: np.ndarray | None = None,
    block: int = 2048,
) -> np.ndarray:
    """Connected components of the graph with edges where cos(f_i, f_j) > threshold.

    Args:
        features: (N, D) features (L2-normalized here).
        threshold: Cosine threshold of an edge.
        groups: Optional source id per sample (N,); edges only join samples of one source.
        block: Rows per block of the similarity computation (bounds memory).

    Returns:
        Component label per sample (N,).
    """
    feats = np.asarray(features, np.float32)
    unit = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    n = unit.shape[0]
    rows, cols = [], []
    for start in range(0, n, block):
        sim = unit[start : start + block] @ unit.T
        if groups is not None:
            sim = np.where(groups[start : start + block, None] == groups[None, :], sim, -1.0)
        r, c = np.nonzero(sim > threshold)
        rows.append(r + start)
        cols.append(c)
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def correct_predictions(
    preds: np.ndarray,
    features: np.ndarray,
    threshold: float = 0.93,
    min_size: int = 3,
    vote: float = 2.0 / 3.0,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """The correcting step: unify the predictions of strongly similar samples.

    Args:
        preds: Predicted class per sample (N,).
        features: Features (N, D) used for similarity (spec: VGG-19 fc7; any embedding works).
        threshold: Cosine threshold of an edge (spec: 0.93).
        min_size: Smallest group that votes (spec: n >= 3).
        vote: A class must hold more than this fraction of a group (spec: 2/3).
        groups: Optional source id per sample; groups never span two sources.

    Returns:
        Corrected predictions (N,) (a new array).
    """
    preds = np.asarray(preds)
    out = preds.copy()
    labels = similarity_components(features, threshold, groups)
    for comp in np.unique(labels):
        members = np.flatnonzero(labels == comp)
        if len(members) < min_size:
            continue
        classes, counts = np.unique(preds[members], return_counts=True)
        best = int(np.argmax(counts))
        if counts[best] > vote * len(members):
            out[members] = classes[best]
    return out
