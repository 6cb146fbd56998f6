"""collate/route: keys, multi-frame batches, empty frames, padding never leaking."""

from __future__ import annotations

import numpy as np
import pytest

from fer_live.errors import ModelError
from fer_live.infer.batch import collate, pad_rows, route
from fer_live.infer.preprocess import crop_faces, to_model_input
from fer_live.numeric import softmax
from fer_live.types import ModelOutput, Tracks


def test_softmax_rows_sum_to_one_and_are_stable():
    logits = np.array([[1000.0, 1000.0, -1000.0], [0.0, 0.0, 0.0]], np.float32)
    probs = softmax(logits)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probs[0], [0.5, 0.5, 0.0], atol=1e-6)
    assert np.isfinite(probs).all()


def test_collate_keys_and_pixels_match_the_shared_preprocessing(
    make_frame, make_tracks, tiny_model_card
):
    # given two frames with faces and one without
    f0, f1, f2 = make_frame(0), make_frame(1), make_frame(2)
    t0 = make_tracks([[10, 10, 50, 50], [60, 20, 100, 60]], [3, 7])
    t2 = make_tracks([[-10, -10, 30, 30]], [7])
    # when
    batch = collate([(f0, t0), (f1, Tracks.empty()), (f2, t2)], tiny_model_card)
    # then
    assert batch.keys == ((0, 3), (0, 7), (2, 7))
    assert batch.pixels.shape == (3, 1, 32, 32)
    expected = to_model_input(crop_faces(f2.image, t2.xyxy, tiny_model_card), tiny_model_card)
    np.testing.assert_array_equal(batch.pixels[2:], expected)


def test_collate_of_no_faces_is_an_empty_batch(make_frame, tiny_model_card):
    batch = collate([(make_frame(0), Tracks.empty())], tiny_model_card)
    assert batch.pixels.shape == (0, 1, 32, 32)
    assert batch.keys == ()


def _output(rows: int, classes: int = 8, dim: int | None = 4) -> ModelOutput:
    logits = np.arange(rows * classes, dtype=np.float32).reshape(rows, classes) % 5
    emb = None if dim is None else np.arange(rows * dim, dtype=np.float32).reshape(rows, dim)
    return ModelOutput(logits, emb)


def test_route_round_trips_keys_over_frames_with_empty_ones(
    make_frame, make_tracks, tiny_model_card
):
    # given a batch over frames 0 (2 faces), 1 (none), 2 (1 face)
    t0 = make_tracks([[10, 10, 50, 50], [60, 20, 100, 60]], [3, 7])
    t2 = make_tracks([[20, 20, 60, 60]], [9])
    items = [(make_frame(0), t0), (make_frame(1), Tracks.empty()), (make_frame(2), t2)]
    batch = collate(items, tiny_model_card)
    output = _output(3)
    # when
    routed = route(batch, output, [0, 1, 2], num_classes=8)
    # then
    assert sorted(routed) == [0, 1, 2]
    assert routed[0].track_id.tolist() == [3, 7]
    assert routed[2].track_id.tolist() == [9]
    assert len(routed[1]) == 0 and routed[1].probs.shape == (0, 8)
    np.testing.assert_allclose(routed[0].probs, softmax(output.logits[:2]))
    np.testing.assert_array_equal(routed[2].embedding, output.embedding[2:3])


def test_padding_rows_never_reach_predictions(make_frame, make_tracks, tiny_model_card):
    t0 = make_tracks([[10, 10, 50, 50]], [1])
    batch = collate([(make_frame(0), t0)], tiny_model_card)
    padded = pad_rows(batch.pixels, 8)
    assert padded.shape == (8, 1, 32, 32)
    np.testing.assert_array_equal(padded[1:], 0.0)
    routed = route(batch, _output(8), [0], num_classes=8)
    assert routed[0].track_id.tolist() == [1]
    assert routed[0].probs.shape == (1, 8)
    assert routed[0].embedding.shape == (1, 4)


def test_pad_rows_refuses_to_shrink():
    with pytest.raises(ValueError, match="cannot pad"):
        pad_rows(np.zeros((3, 1, 4, 4), np.float32), 2)


@pytest.mark.parametrize(
    ("rows", "classes", "frames", "raises", "match"),
    [
        (1, 8, [0], ModelError, "rows"),
        (2, 5, [0], ModelError, "classes"),
        (2, 8, [5], ValueError, "not in frame_indices"),
    ],
)
def test_route_rejects_mismatched_output(
    make_frame, make_tracks, tiny_model_card, rows, classes, frames, raises, match
):
    t0 = make_tracks([[10, 10, 50, 50], [60, 20, 100, 60]], [3, 7])
    batch = collate([(make_frame(0), t0)], tiny_model_card)
    with pytest.raises(raises, match=match):
        route(batch, _output(rows, classes), frames, num_classes=8)
