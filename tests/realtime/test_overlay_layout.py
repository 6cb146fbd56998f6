"""Overlay legibility in crowds: labels and panels cover no face, label or panel; HUD readable."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from fer_live.outputs.layout import overlaps, place
from fer_live.outputs.render import Hud, OverlayRenderer, hud_font
from fer_live.types import Predictions, Tracks

LABELS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
HUD = Hud(41.3, {"decode": 6.3, "detect": 8.9, "track": 0.3, "preprocess": 2.4, "infer": 6.1,
                 "smooth": 0.2, "render": 1.1, "write": 3.2}, 2)  # fmt: skip


def crowd(width: int, height: int, cols: int, rows: int, face: int, seed: int = 0):
    """Tracks and predictions of a cols x rows crowd: faces centred in equal cells, jittered."""
    rng = np.random.default_rng(seed)
    cw, ch = width / cols, height / rows
    boxes = []
    for r, c in itertools.product(range(rows), range(cols)):
        cx, cy = (c + 0.5) * cw + rng.uniform(-0.1, 0.1) * cw, (r + 0.5) * ch
        side = face * rng.uniform(0.9, 1.1)
        boxes.append([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])
    n = len(boxes)
    ids = rng.permutation(n).astype(np.int64) + 3
    tracks = Tracks(np.asarray(boxes, np.float32), ids, np.ones(n, np.float32), np.ones(n, bool))
    probs = rng.dirichlet(np.ones(len(LABELS)), n).astype(np.float32)
    return tracks, Predictions(ids, probs)


def decorations(plan) -> list[tuple[int, int, int, int]]:
    rects = [layout.label for layout in plan.layouts]
    return rects + [layout.panel for layout in plan.layouts if layout.panel is not None]


@pytest.mark.parametrize(
    ("width", "height", "cols", "rows", "face"),
    [
        (1920, 1080, 3, 3, 200),  # the 3 x 3 Pexels grid
        (2560, 1440, 4, 4, 200),  # the 4 x 4 grid
        (1920, 1080, 6, 4, 110),  # an audience
        (1280, 720, 5, 3, 120),
        (640, 360, 3, 2, 90),
    ],
)
def test_crowd_labels_and_panels_cover_nothing(width, height, cols, rows, face):
    # given a crowd and a HUD
    tracks, predictions = crowd(width, height, cols, rows, face)
    # when
    plan = OverlayRenderer(LABELS).plan(width, height, tracks, predictions, HUD)
    # then: every decoration is inside the frame, clear of the HUD, of every other decoration
    # and of every face but its own (a label may sit inside its own box's top edge)
    rects = decorations(plan)
    assert all(r[0] >= 0 and r[1] >= 0 and r[2] <= width and r[3] <= height for r in rects)
    assert not any(overlaps(r, plan.hud_rect) for r in rects)
    assert not any(overlaps(a, b) for a, b in itertools.combinations(rects, 2))
    for face, layout in zip(plan.faces, plan.layouts, strict=True):
        for other in plan.faces:
            if other is not face:
                assert not overlaps(layout.label, other.box)
                assert layout.panel is None or not overlaps(layout.panel, other.box)
        assert layout.panel is None or not overlaps(layout.panel, face.box)
    # and most faces keep a panel
    assert sum(layout.panel is not None for layout in plan.layouts) >= 0.75 * len(plan.faces)


def test_a_crowd_with_no_room_drops_panels_not_legibility():
    # given faces edge to edge: no panel fits anywhere
    boxes = [(x, y, x + 100, y + 100) for y in (0, 100) for x in range(0, 400, 100)]
    # when
    layouts = place((400, 200), boxes, [(60, 14)] * 8, [[(80, 120), (80, 45)]] * 8)
    # then: no panel, every label inside its own box, labels apart
    assert all(layout.panel is None for layout in layouts)
    for box, layout in zip(boxes, layouts, strict=True):
        x0, y0, x1, y1 = layout.label
        assert box[0] <= x0 and x1 <= box[2] and box[1] <= y0 and y1 <= box[3]
    assert not any(overlaps(a.label, b.label) for a, b in itertools.combinations(layouts, 2))


def test_panel_falls_back_to_the_compact_one():
    # given a face with room for a short panel on its right only
    layouts = place((300, 200), [(50, 60, 150, 160)], [(60, 14)], [[(80, 300), (80, 45)]])
    # then
    assert layouts[0].compact and layouts[0].panel == (154, 60, 234, 105)


def test_label_near_the_right_edge_stays_in_the_frame():
    tracks, predictions = crowd(640, 360, 1, 1, 90)
    shifted = Tracks(tracks.xyxy + np.float32([270, 0, 270, 0]), tracks.track_id,
                     tracks.score, tracks.detected)  # fmt: skip
    plan = OverlayRenderer(LABELS).plan(640, 360, shifted, predictions)
    assert plan.layouts[0].label[2] <= 640


@pytest.mark.parametrize(("height", "min_text_px"), [(360, 11), (720, 11), (1080, 20)])
def test_hud_is_readable_and_fits(height, min_text_px):
    # given a 16:9 frame with the full HUD
    width = height * 16 // 9
    # when
    plan = OverlayRenderer(LABELS).plan(width, height, Tracks.empty(), Predictions.empty(8), HUD)
    # then: capitals at least min_text_px tall, every stage shown, the HUD within ~60 % width
    text_h = cv2.getTextSize("FPS", cv2.FONT_HERSHEY_SIMPLEX, hud_font(height / 720), 1)[0][1]
    assert text_h >= min_text_px
    text = " ".join(plan.hud_lines)
    for stage in ("decode", "detect", "track", "prep", "infer", "smooth", "render", "write"):
        assert f"{stage} " in text
    assert plan.hud_rect[2] <= 0.6 * width + 8


def test_overlay_draws_in_the_planned_rectangles():
    # given a 3 x 3 crowd on a black 1080p frame
    from fer_live.types import Frame

    tracks, predictions = crowd(1920, 1080, 3, 3, 200)
    frame = Frame(0, 0.0, np.zeros((1080, 1920, 3), np.uint8))
    renderer = OverlayRenderer(LABELS)
    # when
    image = renderer.draw(frame, tracks, predictions, HUD)
    plan = renderer.plan(1920, 1080, tracks, predictions, HUD)
    # then: each label's rectangle is filled with its face's colour
    for face, layout in zip(plan.faces, plan.layouts, strict=True):
        x0, y0, _, _ = layout.label
        assert tuple(image[y0 + 1, x0 + 1]) == face.colour
