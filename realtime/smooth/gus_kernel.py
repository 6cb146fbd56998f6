"""GUS-T's per-frame step as one compiled call (numba): push each track's frame, run its graph.

In the live loop every numpy call costs several microseconds (the caches are cold after the
model and the detector ran), and the step takes about forty of them, so the smoother's cost was
call overhead, not arithmetic. One compiled call per frame does the same work, with no BLAS
threads woken. ``fer_live.smooth.gus_head``'s numpy operators stay the reference; the tests check
this kernel against them.

Per track slot it: scales the embedding to unit length, takes its cosines with the window's
entries, restarts the window on an embedding jump, writes the new entry over the oldest (one row
and column of first-layer edges), runs both GUS layers for the newest node, applies the head's
affine map with the decision rule folded in, adds the weighted log of the model's own
probabilities averaged over the newest node's neighbours, a softmax, and the output EMA.
"""

from __future__ import annotations

import math

import numba
import numpy as np

NORMS = {"mlgcn": 0, "kipf": 1}
# Reassociation lets LLVM vectorise the dot products (a few ulps of difference); no flag that
# assumes finite values, since -inf marks a restarted window.
_FAST = {"reassoc", "contract"}


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _normalize(adj: np.ndarray, norm: int, p: float, scale: np.ndarray, inv: np.ndarray) -> None:
    """Fill ``scale`` (column factors, mlgcn) and ``inv`` (D^-1/2) of the operator over ``adj``.

    mlgcn: ``M[a, b] = (adj[b, a] * scale[a] + 1[a == b]) inv[a] inv[b]`` with
    ``scale = p / (colsum + 1e-6)`` and ``inv[b] = (sum_a adj[b, a] scale[a] + 1)^-1/2``.
    kipf: ``M[a, b] = (adj[a, b] + 1[a == b]) inv[a] inv[b]``, ``inv = (rowsum + 1)^-1/2``.
    """
    n = adj.shape[0]
    if norm == 0:
        for a in range(n):
            col = 0.0
            for b in range(n):
                col += adj[b, a]
            scale[a] = p / (col + 1e-6)
        for b in range(n):
            total = 1.0
            for a in range(n):
                total += adj[b, a] * scale[a]
            inv[b] = 1.0 / math.sqrt(total)
    else:
        for a in range(n):
            total = 1.0
            for b in range(n):
                total += adj[a, b]
            inv[a] = 1.0 / math.sqrt(total)


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _operator_entry(
    adj: np.ndarray, norm: int, scale: np.ndarray, inv: np.ndarray, a: int, b: int
) -> float:
    """``M[a, b]`` of the normalized operator (see ``_normalize``)."""
    eye = 1.0 if a == b else 0.0
    if norm == 0:
        return (adj[b, a] * scale[a] + eye) * inv[a] * inv[b]
    return (adj[a, b] + eye) * inv[a] * inv[b]


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _complete_layer(x: np.ndarray, norm: int, p: float, out: np.ndarray) -> None:
    """``out = M x`` for the operator over a complete graph of N nodes (self-loops included):
    ``M = c 11^T + d I``; mlgcn: ``c = s d``, ``d = 1 / (1 + N s)``, ``s = p / (N + 1e-6)``;
    kipf: ``c = d = 1 / (N + 1)``."""
    n, hidden = x.shape
    if norm == 0:
        share = p / (n + 1e-6)
        d = 1.0 / (1.0 + n * share)
        c = share * d
    else:
        c = d = 1.0 / (n + 1)
    total = np.zeros(hidden, np.float32)
    for a in range(n):
        for h in range(hidden):
            total[h] += x[a, h]
    cf, df = np.float32(c), np.float32(d)
    for a in range(n):
        for h in range(hidden):
            out[a, h] = cf * total[h] + df * x[a, h]


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def newest_features(
    edges: np.ndarray, proj: np.ndarray, valid: np.ndarray, times: np.ndarray, newest: int,
    threshold: float, norm: int, p: float, decay_s: float,
) -> np.ndarray:  # fmt: skip
    """Both GUS layers' aggregate (H,) of one window's ``newest`` node.

    Args:
        edges: (W, W) bool first-layer edges ``cos > threshold``, unit diagonal; only entries
            that are ``valid`` count (the others get no edges, not even a self-loop).
        proj: (W, H) first-layer projections ``f W1``.
        valid: (W,) entries that hold frames.
        times: (W,) their times, for the edges' decay ``exp(-|t_a - t_b| / decay_s)``.
        newest: The node whose row is wanted.
        threshold: Cosine threshold of a second-layer edge.
        norm: ``NORMS`` code of the graph operator; ``p`` its ML-GCN factor.
        decay_s: Time constant of the edges' decay; 0 = none.
    """
    w, hidden = proj.shape
    adj = np.zeros((w, w), np.float32)
    h1 = np.zeros((w, hidden), np.float32)
    norms = np.empty(w, np.float32)
    scale = np.empty(w, np.float32)
    inv = np.empty(w, np.float32)
    complete = decay_s <= 0.0
    for a in range(w):
        for b in range(w):
            linked = valid[a] and valid[b] and edges[a, b]
            complete = complete and linked
            adj[a, b] = _weight(linked, times, a, b, decay_s)
    if complete:  # a steady face: every pair linked, so M = c 11^T + d I (M h = c sum(h) + d h)
        _complete_layer(proj, norm, p, h1)
    else:
        _normalize(adj, norm, p, scale, inv)
        for a in range(w):
            for b in range(w):
                m = np.float32(_operator_entry(adj, norm, scale, inv, a, b))
                if m != 0.0:
                    for h in range(hidden):
                        h1[a, h] += m * proj[b, h]
    for a in range(w):
        for h in range(hidden):
            if h1[a, h] < 0.0:
                h1[a, h] *= np.float32(0.2)  # LeakyReLU(0.2)
    for a in range(w):
        squared = np.float32(0.0)
        for h in range(hidden):
            squared += h1[a, h] * h1[a, h]
        norms[a] = math.sqrt(squared)
    # Layer 2: edges where cos(h_a, h_b) > threshold, unit diagonal on valid entries.
    for a in range(w):
        adj[a, a] = 1.0 if valid[a] else 0.0
        for b in range(a + 1, w):
            linked = False
            if valid[a] and valid[b]:
                dot = np.float32(0.0)
                for h in range(hidden):
                    dot += h1[a, h] * h1[b, h]
                linked = dot > threshold * norms[a] * norms[b]
            adj[a, b] = adj[b, a] = _weight(linked, times, a, b, decay_s)
    _normalize(adj, norm, p, scale, inv)
    feat = np.zeros(hidden, np.float32)
    for b in range(w):
        m = np.float32(_operator_entry(adj, norm, scale, inv, newest, b))
        if m != 0.0:
            for h in range(hidden):
                feat[h] += m * h1[b, h]
    return feat


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def smooth_step(
    slots, embedding, proj, base, t_s, rings_unit, rings_proj, rings_base, rings_edges, rings_t,
    rings_valid, rings_newest, rings_last_t, rings_smoothed, threshold, reset_cos, norm, p,
    decay_s, base_weight, neg_rate, out_w, out_b, probs,
) -> None:  # fmt: skip
    """One frame of GUS-T for K tracks; writes their probabilities (K, C) into ``probs``.

    Args:
        slots: (K,) distinct ring slots of the frame's tracks.
        embedding: (K, D) the model's embeddings.
        proj: (K, H) their first-layer projections ``f W1``.
        base: (K, C) the model's own probabilities for these faces (decision rule applied).
        t_s: The frame's time (s).
        rings_*: ``TrackRings`` arrays, updated in place (see its attributes).
        threshold: Cosine threshold of an edge (both layers).
        reset_cos: Restart a window when cos(f_t, f_t-1) is below this.
        norm, p, decay_s: As ``newest_features``.
        base_weight: Weight of the log of the newest frame's neighbourhood-mean ``base``
            probabilities added to the head's logits (0 = the head alone); see ``_base_prior``.
        neg_rate: ``-1 / ema_s`` of the output EMA; 0 = none.
        out_w, out_b: (H, C), (C,) the head's last affine map, decision rule folded in.
        probs: (K, C) float32 output.
    """
    w, dim = rings_unit.shape[1], embedding.shape[1]
    unit = np.empty(dim, np.float32)
    cos = np.empty(w, np.float32)
    prior = np.zeros(out_b.shape[0], np.float32)
    for k in range(slots.shape[0]):
        s = slots[k]
        squared = np.float32(0.0)
        for d in range(dim):
            squared += embedding[k, d] * embedding[k, d]
        length = max(math.sqrt(squared), 1e-12)
        for d in range(dim):
            unit[d] = embedding[k, d] / length
        for j in range(w):
            dot = np.float32(0.0)
            for d in range(dim):
                dot += rings_unit[s, j, d] * unit[d]
            cos[j] = dot
        prev = rings_newest[s]
        if cos[prev] < reset_cos:  # identity switch or cut (a new slot's entry is stale: harmless)
            rings_valid[s, :] = False
            rings_last_t[s] = -np.inf
        dt = t_s - rings_last_t[s]  # inf after a restart
        pos = (prev + 1) % w  # over the oldest entry
        for j in range(w):
            bit = cos[j] > threshold or j == pos
            rings_edges[s, pos, j] = bit
            rings_edges[s, j, pos] = bit
        rings_unit[s, pos, :] = unit
        rings_proj[s, pos, :] = proj[k]
        rings_base[s, pos, :] = base[k]
        rings_t[s, pos] = t_s
        rings_valid[s, pos] = True
        rings_newest[s] = pos
        rings_last_t[s] = t_s
        feat = newest_features(
            rings_edges[s], rings_proj[s], rings_valid[s], rings_t[s], pos, threshold, norm, p,
            decay_s,
        )  # fmt: skip
        if base_weight != 0.0:
            _base_prior(
                rings_base[s], rings_edges[s], rings_valid[s], rings_t[s], pos, decay_s,
                base_weight, prior,
            )  # fmt: skip
        decay = dt * neg_rate if neg_rate != 0.0 else -np.inf
        _softmax_ema(feat, out_w, out_b, prior, decay, rings_smoothed[s], probs[k])


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _base_prior(
    base: np.ndarray, edges: np.ndarray, valid: np.ndarray, times: np.ndarray, newest: int,
    decay_s: float, weight: float, out: np.ndarray,
) -> None:  # fmt: skip
    """``out = weight * log(mean of base over the newest frame's neighbours)``.

    The neighbours are the newest entry and the valid entries it shares a first-layer edge with
    (cos > threshold; decay-weighted like the edges). The model's own classifier is stronger
    per frame than the head's, and averaging it only over frames of the same face and
    expression steadies it without lagging a change: the head's logits plus this term chose
    best on jittered FERPlus Valid sequences (``benchmarks/temporal.py``).
    """
    total = 0.0
    out[:] = 0.0
    for j in range(base.shape[0]):
        if valid[j] and edges[newest, j]:
            share = _weight(True, times, newest, j, decay_s)
            total += share
            for c in range(out.shape[0]):
                out[c] += share * base[j, c]
    for c in range(out.shape[0]):
        out[c] = weight * math.log(max(out[c] / total, 1e-12))


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _softmax_ema(
    feat: np.ndarray, out_w: np.ndarray, out_b: np.ndarray, prior: np.ndarray, decay: float,
    previous: np.ndarray, out: np.ndarray,
) -> None:  # fmt: skip
    """``out = softmax(feat out_w + out_b + prior)`` mixed with ``previous``, which keeps
    ``exp(min(decay, 0))`` (decay = -dt / ema_s; -inf after a restart or with no EMA);
    then ``previous = out``."""
    classes, hidden = out_b.shape[0], feat.shape[0]
    top = -np.inf
    for c in range(classes):
        z = out_b[c] + prior[c]
        for h in range(hidden):
            z += feat[h] * out_w[h, c]
        out[c] = z
        top = max(top, z)
    total = 0.0
    for c in range(classes):
        out[c] = math.exp(out[c] - top)
        total += out[c]
    keep = math.exp(min(decay, 0.0))
    for c in range(classes):
        fresh = out[c] / total
        out[c] = fresh + keep * (previous[c] - fresh)
        previous[c] = out[c]


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _weight(linked: bool, times: np.ndarray, a: int, b: int, decay_s: float) -> float:
    """An edge's weight: 1, or ``exp(-|t_a - t_b| / decay_s)`` with a decay; 0 if unlinked."""
    if not linked:
        return 0.0
    if decay_s > 0.0:
        return math.exp(-abs(times[a] - times[b]) / decay_s)
    return 1.0
