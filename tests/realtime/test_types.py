"""Core types: shape and dtype validation with clear messages."""

from __future__ import annotations

from contextlib import nullcontext as does_not_raise

import numpy as np
import pytest

from fer_live.types import (
    CropBatch,
    FaceBoxes,
    Frame,
    ModelOutput,
    Predictions,
    Tracks,
    check_shape,
)


@pytest.mark.parametrize(
    ("shape", "want", "expectation"),
    [
        ((3, 4), (None, 4), does_not_raise()),
        ((3, 5), (None, 4), pytest.raises(ValueError, match=r"shape \(\*, 4\), got \(3, 5\)")),
        ((3,), (None, 4), pytest.raises(ValueError, match=r"got \(3,\)")),
        ((2, 3, 3), (None, None, 3), does_not_raise()),
    ],
)
def test_check_shape_names_expected_and_actual(shape, want, expectation):
    with expectation:
        check_shape("x", np.zeros(shape), want)


def test_frame_requires_bgr_uint8():
    Frame(0, 0.0, np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="Frame.image"):
        Frame(0, 0.0, np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        Frame(0, 0.0, np.zeros((4, 4, 3), np.float32))


def test_boxes_and_tracks_check_parallel_arrays():
    with pytest.raises(ValueError, match="FaceBoxes.score"):
        FaceBoxes(np.zeros((2, 4)), np.zeros(3))
    with pytest.raises(ValueError, match="Tracks.track_id"):
        Tracks(np.zeros((2, 4)), np.zeros(1), np.zeros(2), np.zeros(2, bool))
    assert len(FaceBoxes.empty()) == 0 and len(Tracks.empty()) == 0


def test_batch_output_and_predictions_shapes():
    with pytest.raises(ValueError, match="CropBatch.pixels"):
        CropBatch(np.zeros((2, 1, 4, 4), np.float32), ((0, 1),))
    with pytest.raises(ValueError, match="float32"):
        CropBatch(np.zeros((1, 1, 4, 4), np.float64), ((0, 1),))
    with pytest.raises(ValueError, match="ModelOutput.embedding"):
        ModelOutput(np.zeros((2, 8)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="Predictions.probs"):
        Predictions(np.zeros(2, np.int64), np.zeros((3, 8)))
    assert Predictions.empty(8).probs.shape == (0, 8)
