"""GUS-T's per-track ring buffers: slots, wrap-around, edges kept across frames, resets."""

from __future__ import annotations

import numpy as np
import pytest

from fer_live.smooth.gus_kernel import NORMS, smooth_step
from fer_live.smooth.rings import TrackRings

W, D, H, C = 4, 6, 3, 2


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, D)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _push(
    rings: TrackRings, track_ids: list[int], unit: np.ndarray, t_s: float, threshold: float
) -> np.ndarray:
    """Write one frame per track through the smoother's compiled step (no resets, no EMA)."""
    slots, _ = rings.slots_for(track_ids)
    k = len(slots)
    proj, probs = np.zeros((k, H), np.float32), np.empty((k, C), np.float32)
    base = np.full((k, C), 1.0 / C, np.float32)
    smooth_step(
        slots, unit.astype(np.float32), proj, base, t_s, rings.unit, rings.proj, rings.base,
        rings.edges, rings.t_s, rings.valid, rings.newest, rings.last_t_s, rings.smoothed,
        threshold, -2.0, NORMS["mlgcn"], 0.5, 0.0, 1.0, 0.0, np.zeros((H, C), np.float32),
        np.zeros(C, np.float32), probs,
    )  # fmt: skip
    rings.seen(t_s)
    np.testing.assert_allclose(probs, 1.0 / C, atol=1e-6)  # zero head, uniform base: uniform
    return rings.newest[slots]


def test_window_wraps_and_edges_match_the_cosines_of_the_last_w_frames() -> None:
    # given one track pushed W + 3 times
    rng = np.random.default_rng(0)
    rings, frames = TrackRings(W, D, H, C), _unit(rng, W + 3)
    for t, u in enumerate(frames):
        _push(rings, [5], u[None], t / 30, 0.1)
    # then the ring holds the last W frames, and its graph is 1[cos > t] among them
    slot = rings.slots_for([5])[0][0]
    assert rings.length(5) == W and rings.valid[slot].all()
    kept = rings.unit[slot]
    for t in range(3, W + 3):  # frame t sits in entry t mod W, over the oldest one
        np.testing.assert_allclose(kept[t % W], frames[t], atol=1e-6)  # re-scaled to unit
    expected = kept @ kept.T > 0.1
    np.fill_diagonal(expected, True)
    np.testing.assert_array_equal(rings.edges[slot], expected)
    assert rings.t_s[slot, rings.newest[slot]] == pytest.approx((W + 2) / 30)


def test_cleared_slot_restarts_with_only_its_new_frame() -> None:
    rng = np.random.default_rng(1)
    rings = TrackRings(W, D, H, C)
    for t in range(3):
        _push(rings, [1], _unit(rng, 1), t / 30, -1.0)  # every pair is an edge
    slots, _ = rings.slots_for([1])
    rings.clear(slots)
    assert np.isneginf(rings.last_t_s[slots[0]])  # an output EMA gives the old output no weight
    newest = _push(rings, [1], _unit(rng, 1), 3 / 30, -1.0)
    assert rings.length(1) == 1
    only = np.zeros(W, bool)
    only[newest[0]] = True
    np.testing.assert_array_equal(rings.valid[slots[0]], only)


def test_slots_are_reused_after_eviction_and_grow_past_the_preallocated_count() -> None:
    rng = np.random.default_rng(2)
    rings = TrackRings(W, D, H, C)
    many = list(range(20))  # more live tracks than the 8 preallocated slots
    _push(rings, many, _unit(rng, 20), 0.0, 0.5)
    assert len(rings) == 20 and len(rings.live) >= 20
    _push(rings, many[:2], _unit(rng, 2), 1.0, 0.5)
    rings.evict(1.0, after_s=0.5)  # tracks 2..19 were last seen 1 s ago
    assert sorted(t for t in many if t in rings) == [0, 1]
    slots, new = rings.slots_for([100])
    assert new[0] and rings.length(100) == 0 and slots[0] < 20  # a freed slot, cleared


def test_track_ids_must_be_unique_within_a_frame() -> None:
    rings = TrackRings(W, D, H, C)
    with pytest.raises(ValueError, match="unique"):
        rings.slots_for([3, 3])


def test_reset_forgets_every_track() -> None:
    rings = TrackRings(W, D, H, C)
    _push(rings, [1, 2], _unit(np.random.default_rng(3), 2), 0.0, 0.5)
    rings.reset()
    assert len(rings) == 0 and 1 not in rings
    assert rings.slots_for([1])[1][0]  # comes back as a new track
