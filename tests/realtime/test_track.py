"""IouTracker: lifecycle, id stability and order invariance (unit and property tests)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fer_live.errors import ConfigError
from fer_live.track.iou import IouTracker
from fer_live.types import FaceBoxes

A = [10, 10, 60, 60]
B = [200, 50, 260, 110]
C = [100, 150, 150, 200]


def boxes(*xyxy: list[float]) -> FaceBoxes:
    arr = np.asarray(xyxy, np.float32).reshape(-1, 4)
    return FaceBoxes(arr, np.full(len(arr), 0.9, np.float32))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"iou_threshold": 0.0}, "iou_threshold"),
        ({"iou_threshold": 1.5}, "iou_threshold"),
        ({"max_age": 0}, "max_age"),
        ({"max_age": 2.5}, "max_age"),
        ({"min_hits": 0}, "min_hits"),
    ],
)
def test_bad_arguments_raise_config_error_naming_them(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        IouTracker(**kwargs)


def test_min_hits_one_reports_at_once():
    # given / when
    tracks = IouTracker(min_hits=1).update(boxes(A, B), 0)
    # then
    assert tracks.track_id.tolist() == [0, 1]
    assert tracks.detected.all()


def test_new_track_on_first_frames_is_reported_once_it_has_min_hits():
    tracker = IouTracker(min_hits=3)
    assert len(tracker.update(boxes(A), 0)) == 0
    assert len(tracker.update(boxes(A), 1)) == 0
    third = tracker.update(boxes(A), 2)
    assert third.track_id.tolist() == [0]


def test_static_face_keeps_its_id():
    tracker = IouTracker(min_hits=1)
    seen = {int(tracker.update(boxes(A), i).track_id[0]) for i in range(50)}
    assert seen == {0}


def test_moving_face_keeps_its_id_with_skipped_frames():
    # given a face moving 6 px per frame, detected every 3rd frame
    tracker = IouTracker(min_hits=1)
    ids = set()
    for i in range(60):
        box = [10 + 6 * i, 20, 60 + 6 * i, 70]
        tracks = tracker.update(boxes(box) if i % 3 == 0 else None, i)
        ids.update(tracks.track_id.tolist())
        # then carried boxes follow the face (constant-velocity prediction)
        if i > 24:
            assert abs(float(tracks.xyxy[0, 0]) - box[0]) < 1.0
    assert ids == {0}


def test_skipped_frames_carry_boxes_without_ageing():
    tracker = IouTracker(min_hits=1, max_age=2)
    tracker.update(boxes(A), 0)
    for i in range(1, 30):
        carried = tracker.update(None, i)
        assert carried.track_id.tolist() == [0]
        assert not carried.detected.any()
        np.testing.assert_allclose(carried.xyxy[0], A)
    assert tracker.update(boxes(A), 30).detected.tolist() == [True]


@pytest.mark.parametrize("max_age", [1, 2, 5])
def test_track_dies_exactly_after_max_age_misses(max_age):
    # given a confirmed track that then misses max_age - 1 detection frames
    tracker = IouTracker(min_hits=1, max_age=max_age)
    tracker.update(boxes(A), 0)
    frame = 1
    for _ in range(max_age - 1):
        assert len(tracker.update(boxes(), frame)) == 0  # not visible while missing
        frame += 1
    # then it is still alive and keeps its id
    assert tracker.update(boxes(A), frame).track_id.tolist() == [0]
    frame += 1
    # when it misses max_age frames in a row, a return gets a new id
    for _ in range(max_age):
        tracker.update(boxes(), frame)
        frame += 1
    assert tracker.update(boxes(A), frame).track_id.tolist() == [1]


def test_ids_are_never_reused_after_reset():
    tracker = IouTracker(min_hits=1)
    tracker.update(boxes(A, B), 0)
    tracker.reset()
    assert tracker.update(boxes(A), 0).track_id.tolist() == [2]


def test_frame_index_must_increase():
    tracker = IouTracker()
    tracker.update(boxes(A), 5)
    with pytest.raises(ValueError, match="frame_index must increase"):
        tracker.update(boxes(A), 5)


def test_tentative_track_that_misses_is_dropped():
    tracker = IouTracker(min_hits=2)
    tracker.update(boxes(A), 0)  # tentative
    tracker.update(boxes(), 1)  # miss: dropped
    tracker.update(boxes(A), 2)
    assert tracker.update(boxes(A), 3).track_id.tolist() == [1]


# --- property tests ---------------------------------------------------------------------------

box_strategy = st.tuples(
    st.integers(0, 600), st.integers(0, 400), st.integers(20, 120), st.integers(20, 120)
).map(lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])
sequence_strategy = st.lists(
    st.one_of(st.none(), st.lists(box_strategy, min_size=0, max_size=5)), min_size=1, max_size=25
)


def run(tracker: IouTracker, sequence, permute_seed: int | None = None):
    rng = np.random.default_rng(permute_seed)
    out = []
    for i, dets in enumerate(sequence):
        if dets is not None and permute_seed is not None:
            dets = [dets[j] for j in rng.permutation(len(dets))]
        out.append(tracker.update(None if dets is None else boxes(*dets), i))
    return out


@settings(max_examples=60, deadline=None)
@given(sequence_strategy, st.integers(1, 3), st.integers(1, 5))
def test_ids_unique_within_frame_and_never_reused(sequence, min_hits, max_age):
    # given a tracker fed random detections and skipped frames
    tracker = IouTracker(min_hits=min_hits, max_age=max_age)
    reported: set[int] = set()
    issued: set[int] = set()
    dead: set[int] = set()
    for i, dets in enumerate(sequence):
        # when it advances one frame
        id_list = tracker.update(None if dets is None else boxes(*dets), i).track_id.tolist()
        ids = set(id_list)
        # then ids are unique within the frame, dead ids never come back, new ids only grow
        assert len(id_list) == len(ids)
        assert not dead & ids
        assert all(tid > max(reported, default=-1) for tid in ids - reported)
        reported |= ids
        alive = {t.track_id for t in tracker._tracks}
        dead |= issued - alive
        issued |= alive


@settings(max_examples=60, deadline=None)
@given(sequence_strategy, st.integers(0, 10_000))
def test_permuting_detection_order_keeps_the_id_mapping(sequence, seed):
    plain = run(IouTracker(min_hits=1), sequence)
    permuted = run(IouTracker(min_hits=1), sequence, permute_seed=seed)
    for a, b in zip(plain, permuted, strict=True):
        np.testing.assert_array_equal(a.track_id, b.track_id)
        np.testing.assert_allclose(a.xyxy, b.xyxy)
        np.testing.assert_array_equal(a.detected, b.detected)


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 6),
    column=st.booleans(),
    values=st.lists(st.sampled_from([0.0, 0.3, 0.5, 0.7, 0.71, 1.0]), min_size=6, max_size=6),
)
def test_one_track_or_one_detection_pairs_as_scipy_does(n, column, values):
    """The shortcut for a single row or column picks scipy's pair, ties included."""
    from scipy.optimize import linear_sum_assignment

    from fer_live.track.iou import _assign

    iou = np.asarray(values[:n], np.float64).reshape((n, 1) if column else (1, n))
    rows, cols = _assign(iou)
    want_rows, want_cols = linear_sum_assignment(-iou)
    assert rows.tolist() == want_rows.tolist()
    assert cols.tolist() == want_cols.tolist()
