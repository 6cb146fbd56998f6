"""Preallocated ring buffers of every live track's recent frames, for GUS-T.

One slot per live track holds its last W frames: unit embeddings (W, D), first-layer
projections (W, H), timestamps and a valid mask, plus the first GUS layer's edges between its
entries (W, W): 1[cos > threshold], unit diagonal (only valid entries count). A new frame
overwrites the oldest entry and adds one row and column of edges; the rest of the matrix is what
the previous frames' graphs already computed. The output EMA's state lives here too. Slots of
evicted tracks are reused, and the arrays double when more tracks are live than there are
slots, so a frame allocates only its own small results. ``fer_live.smooth.gus_kernel`` writes the
frames in; this class keeps the slots.
"""

from __future__ import annotations

import numpy as np

_START_SLOTS = 8
_PER_SLOT = ("unit", "proj", "base", "edges", "t_s", "valid", "newest", "last_t_s", "smoothed",
             "track_of", "live")  # fmt: skip


class TrackRings:
    """Per-track windows in preallocated arrays (S slots, W entries each).

    Args:
        window: W, entries per track.
        dim: D, embedding size.
        hidden: H, projection size.
        classes: C, size of a probability row (the EMA state).

    Attributes:
        unit: (S, W, D) unit embeddings.
        proj: (S, W, H) first-layer projections.
        base: (S, W, C) the model's own probability rows.
        edges: (S, W, W) bool, 1[cos > threshold] between a slot's entries, unit diagonal;
            rows and columns of entries that are not ``valid`` are stale.
        t_s: (S, W) timestamps.
        valid: (S, W) entries that hold frames.
        newest: (S,) index of each slot's newest entry; ``last_t_s`` (S,) its time, -inf for a
            window that restarted since (so an output EMA gives its previous row no weight).
        smoothed: (S, C) the previous output row of each slot.
    """

    def __init__(self, window: int, dim: int, hidden: int, classes: int) -> None:
        self.window = window
        self._slot_of: dict[int, int] = {}
        # The last frame's ids and their (slots, none new): most frames show the same faces.
        self._last_ids: list[int] | None = None
        self._last_slots = (np.zeros(0, np.int64), np.zeros(0, bool))
        self._oldest_t_s = np.inf  # a lower bound of the live tracks' last times
        self.unit = np.zeros((0, window, dim), np.float32)
        self.proj = np.zeros((0, window, hidden), np.float32)
        self.base = np.zeros((0, window, classes), np.float32)
        self.edges = np.zeros((0, window, window), bool)
        self.t_s = np.zeros((0, window), np.float64)
        self.valid = np.zeros((0, window), bool)
        self.newest = np.zeros(0, np.int64)
        self.last_t_s = np.zeros(0, np.float64)
        self.smoothed = np.zeros((0, classes), np.float32)
        self.track_of = np.zeros(0, np.int64)
        self.live = np.zeros(0, bool)
        self._grow(_START_SLOTS)

    def _grow(self, slots: int) -> None:
        """Reallocate every array with ``slots`` slots, keeping the existing slots' contents."""
        for name in _PER_SLOT:
            setattr(self, name, _grown(getattr(self, name), slots))

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, track_id: object) -> bool:
        return track_id in self._slot_of

    def length(self, track_id: int) -> int:
        """Frames in a track's window (0 for an unknown track)."""
        slot = self._slot_of.get(track_id)
        return 0 if slot is None else int(self.valid[slot].sum())

    def slots_for(self, track_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Each track's slot (K,), and which of them were just created (K,) (cold start).

        Raises:
            ValueError: A track id appears twice in one frame.
        """
        if track_ids == self._last_ids:  # the usual frame: the same faces as the last one
            return self._last_slots
        if len(set(track_ids)) != len(track_ids):
            raise ValueError(f"track ids must be unique within a frame, got {track_ids}")
        slots = [self._slot_of.get(track_id, -1) for track_id in track_ids]
        new = [slot < 0 for slot in slots]
        for i, track_id in enumerate(track_ids):
            if new[i]:
                slots[i] = self._new_slot(track_id)
        self._last_ids = list(track_ids)
        self._last_slots = (np.array(slots, np.int64), np.zeros(len(slots), bool))  # not to write
        return np.array(slots, np.int64), np.array(new, bool)

    def _new_slot(self, track_id: int) -> int:
        free = np.flatnonzero(~self.live)
        if not len(free):
            free = np.array([len(self.live)])
            self._grow(2 * len(self.live))
        slot = int(free[0])
        self.live[slot], self.track_of[slot] = True, track_id
        self._slot_of[track_id] = slot
        self.clear(np.array([slot]))
        return slot

    def clear(self, slots: np.ndarray) -> None:
        """Restart these slots' windows (new track, identity break): history and output."""
        self.valid[slots] = False
        self.last_t_s[slots] = -np.inf
        self.newest[slots] = self.window - 1  # the next push writes entry 0

    def evict(self, t_s: float, after_s: float) -> None:
        """Forget tracks whose newest frame is more than ``after_s`` seconds before ``t_s``."""
        if t_s - self._oldest_t_s <= after_s:  # last times only grow: nobody is stale yet
            return
        stale = np.flatnonzero(self.live & (t_s - self.last_t_s > after_s))
        if len(stale):
            self._last_ids = None
        for slot in stale.tolist():
            del self._slot_of[int(self.track_of[slot])]
        self.live[stale] = False
        self._oldest_t_s = float(self.last_t_s[self.live].min()) if self._slot_of else np.inf

    def reset(self) -> None:
        """Forget every track."""
        self._slot_of.clear()
        self._last_ids = None
        self.live[:] = False
        self._oldest_t_s = np.inf

    def seen(self, t_s: float) -> None:
        """Note that the live tracks' windows were written at ``t_s`` (for ``evict``)."""
        self._oldest_t_s = min(self._oldest_t_s, t_s)


def _grown(array: np.ndarray, slots: int) -> np.ndarray:
    """A zeroed copy of ``array`` with ``slots`` rows, the existing rows copied over."""
    out = np.zeros((slots, *array.shape[1:]), array.dtype)
    out[: len(array)] = array
    return out
