"""The overlay never mutates its input and draws boxes, bars and the HUD where expected."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_live.outputs.render import PALETTE, Hud, OverlayRenderer, hud_text
from fer_live.types import Frame, Predictions, Tracks

LABELS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")


@pytest.fixture
def photo(shared_dir: Path) -> Frame:
    image = cv2.imread(str(shared_dir / "images" / "public-domain" / "obama-240p.jpg"))
    return Frame(index=0, t_s=0.0, image=image, source_id="obama-240p.jpg")


def _tracks(boxes: list[list[float]], ids: list[int]) -> Tracks:
    n = len(ids)
    return Tracks(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(ids, np.int64),
        np.ones(n, np.float32),
        np.ones(n, bool),
    )


def _one_hot(ids: list[int], classes: list[int]) -> Predictions:
    probs = np.zeros((len(ids), len(LABELS)), np.float32)
    probs[np.arange(len(ids)), classes] = 1.0
    return Predictions(np.asarray(ids, np.int64), probs)


def test_draw_returns_an_annotated_copy(photo: Frame) -> None:
    # given
    before = photo.image.copy()
    tracks = _tracks([[100, 60, 180, 150]], [3])
    # when
    out = OverlayRenderer(LABELS).draw(photo, tracks, _one_hot([3], [1]), Hud(30.0, {"infer": 2}))
    # then
    assert out.shape == photo.image.shape and out.dtype == np.uint8
    assert out is not photo.image and np.array_equal(photo.image, before)
    assert not np.array_equal(out, before)


def test_box_and_full_bar_use_the_track_colour(photo: Frame) -> None:
    # given one face, certain of "happiness" (row 1 of the bar chart)
    tracks = _tracks([[60, 60, 140, 160]], [2])
    colour = np.array(PALETTE[2 % len(PALETTE)], np.uint8)
    # when
    out = OverlayRenderer(LABELS).draw(photo, tracks, _one_hot([2], [1]))
    # then: the box's left edge and the full-width bar beside the box carry the colour
    assert np.array_equal(out[110, 60], colour)
    right_of_box = out[60:160, 145:]
    assert (np.abs(right_of_box.astype(int) - colour).sum(axis=2) == 0).sum() > 100


def test_track_without_prediction_gets_a_box_only(photo: Frame) -> None:
    tracks = _tracks([[60, 60, 140, 160]], [0])
    with_probs = OverlayRenderer(LABELS).draw(photo, tracks, _one_hot([0], [0]))
    box_only = OverlayRenderer(LABELS).draw(photo, tracks, Predictions.empty(len(LABELS)))
    changed = np.any(box_only != photo.image, axis=2)
    assert changed.sum() > 0 and changed.sum() < np.any(with_probs != photo.image, axis=2).sum()


def test_no_faces_and_a_hud_changes_only_the_top_left(photo: Frame) -> None:
    # when
    out = OverlayRenderer(LABELS).draw(
        photo, Tracks.empty(), Predictions.empty(len(LABELS)), Hud(29.5, {"decode": 1.2}, 3)
    )
    # then
    rows, cols = np.nonzero(np.any(out != photo.image, axis=2))
    assert rows.size > 0 and rows.max() < 60 and cols.max() < photo.image.shape[1] * 0.75


def test_layers_without_and_with_the_hud_differ_only_inside_it(photo: Frame) -> None:
    # given a face near the top-left corner, where the HUD goes
    renderer = OverlayRenderer(LABELS)
    tracks, probs = _tracks([[20, 20, 110, 120]], [1]), _one_hot([1], [2])
    hud = Hud(29.5, {"decode": 1.2, "detect": 4.5, "infer": 3.4}, 0)
    # when
    plain, with_hud = renderer.draw_layers(photo, tracks, probs, hud)
    # then: the window's layer is draw()'s; the file's differs from it only inside the HUD
    assert np.array_equal(with_hud, renderer.draw(photo, tracks, probs, hud))
    h, w = photo.image.shape[:2]
    x0, y0, x1, y1 = renderer.plan(w, h, tracks, probs, hud).hud_rect
    rows, cols = np.nonzero(np.any(plain != with_hud, axis=2))
    assert rows.size > 0 and rows.min() >= y0 and rows.max() <= y1 and cols.max() <= x1
    # and the face is drawn in both
    face = np.any(plain != photo.image, axis=2)
    face[y0 : y1 + 1, x0 : x1 + 1] = False
    assert face.sum() > 100


def test_box_at_the_right_border_puts_bars_on_the_left(photo: Frame) -> None:
    # given a box touching the right border
    h, w = photo.image.shape[:2]
    tracks = _tracks([[w - 80, 40, w - 1, 130]], [1])
    # when
    out = OverlayRenderer(LABELS).draw(photo, tracks, _one_hot([1], [4]))
    # then the chart lands left of the box
    assert np.any(out[40:130, : w - 85] != photo.image[40:130, : w - 85])


@pytest.mark.parametrize(
    ("fps", "first_line"), [(None, "faces 2"), (12.5, "FPS 12.5  faces 2  dropped 0")]
)
def test_a_still_gets_no_frame_rate_on_the_hud(fps: float | None, first_line: str) -> None:
    # when
    lines = hud_text(Hud(fps, {"detect": 3.0}), 2, 640, 1.0)
    # then: a photo has no rate (it showed "FPS 0.0"); a video keeps its rate
    assert lines[0] == first_line
    assert lines[1] == "ms detect 3.0"
